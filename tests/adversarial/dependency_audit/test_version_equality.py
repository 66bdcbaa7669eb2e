"""Version equality: equivalent PEP 440 spellings and PEP 503 names never hide a known vulnerability.

The oracle is the real PyPA snapshot: every (advisory, listed version) pair and every range bound in
it. A spelling PEP 440 calls equal (``0.5`` / ``0.5.0`` / ``v0.5`` / ``0!0.5`` / ``0.5.0+local``,
``1.0-1`` / ``1.0.post1``, ``1.0RC1`` / ``1.0rc1`` …) must give the same verdict as the canonical one.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from airflow_aisec.core.osv import OsvDatabase, parse_version
from airflow_aisec.core.reqfile import parse_requirement_files
from tests.adversarial.dependency_audit.conftest import name_spelling, run_cli, version_spelling
from tests.osv_helpers import snapshot_path


@functools.cache
def _db() -> OsvDatabase:
    return OsvDatabase.load(snapshot_path())


@functools.cache
def _listed_pairs() -> list[tuple[str, str, str]]:
    """(canonical package, advisory id, listed version) for every PEP 440 listed version (~140k)."""
    out = []
    for name, advisories in sorted(_db().index.items()):
        for adv in advisories:
            if adv.withdrawn:
                continue
            for v in adv.affected.get("versions") or ():
                if parse_version(v) is not None:
                    out.append((name, adv.id, v))
    return out


@functools.cache
def _range_bounds() -> list[tuple[str, str, str]]:
    """(canonical package, advisory id, bound) for every PEP 440 range bound in the snapshot."""
    out = []
    for name, advisories in sorted(_db().index.items()):
        for adv in advisories:
            for rng in adv.ranges:
                for bound, _kind in rng.events:
                    if bound is not None:
                        out.append((name, adv.id, str(bound)))
    return out


def _hits(name: str, version: str | Version) -> set[str]:
    return {m.advisory.id for m in _db().query(name, version)}


def _pin(tmp_path: Path, line: str) -> Version:
    """The version the audit reads from a requirement line (through the real requirements reader)."""
    path = tmp_path / "requirements.txt"
    path.write_text(line + "\n")
    (pin,) = parse_requirement_files([path]).pins
    return pin.version


@settings(max_examples=100)
@given(data=st.data())
def test_every_listed_version_is_found_under_any_equivalent_spelling(data, tmp_path_factory):
    pairs = _listed_pairs()
    name, advisory, listed = pairs[data.draw(st.integers(0, len(pairs) - 1))]
    spelled = data.draw(version_spelling(Version(listed)))
    spelled_name = data.draw(name_spelling(name))
    version = _pin(tmp_path_factory.mktemp("r"), f"{spelled_name} == {spelled}")
    assert advisory in _hits(spelled_name, version), (spelled_name, spelled)


@settings(max_examples=150)
@given(data=st.data())
def test_range_verdicts_do_not_depend_on_the_spelling(data):
    bounds = _range_bounds()
    name, _advisory, bound = bounds[data.draw(st.integers(0, len(bounds) - 1))]
    canonical = Version(bound)
    spelled = data.draw(version_spelling(canonical, add_local=False))
    assert _hits(name, Version(spelled)) == _hits(name, canonical), spelled
    local = Version(f"{canonical.public}+build.7")  # a local build of an affected release is affected
    assert _hits(name, local) >= _hits(name, canonical)


@settings(max_examples=30)
@given(data=st.data())
def test_gratient_malware_is_caught_end_to_end_under_any_spelling(data, tmp_path_factory, capsys):
    """PYSEC-2024-1 (credential-stealing malware) lists only ``0.5``; every spelling of it exits 1."""
    version = data.draw(version_spelling(Version("0.5")))
    name = data.draw(name_spelling("gratient"))
    marker = data.draw(st.sampled_from(["", ' ; python_version < "3"', " ; sys_platform == 'win32'"]))
    req = tmp_path_factory.mktemp("g") / "requirements.txt"
    req.write_text(f"{name}=={version}{marker}\n")
    code, report = run_cli(capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path())])
    assert code == 1, report["summary"]
    assert report["status"] == "fail"
    assert [f["id"] for f in report["findings"]] == ["PYSEC-2024-1"]
    assert report["metrics"]["marker_excluded"] == (1 if marker else 0)


@pytest.mark.parametrize("op", ["==", "==="])
def test_arbitrary_equality_pins_are_audited_too(tmp_path, capsys, op):
    req = tmp_path / "requirements.txt"
    req.write_text(f"gratient{op}0.5.0\n")
    code, report = run_cli(capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (1, "fail")


@settings(max_examples=40)
@given(bad=st.sampled_from(["gratient_", "_gratient", "gratient-", ".gratient", "grat ient", "grаtient", "gratient!"]))
def test_names_that_are_not_pep_508_are_errors_not_other_packages(bad, tmp_path_factory, capsys):
    """A name pip itself refuses (or a homoglyph) cannot be looked up as some other package: exit 2."""
    req = tmp_path_factory.mktemp("n") / "requirements.txt"
    req.write_text(f"{bad}==0.5\n")
    code, report = run_cli(capsys, ["audit", "-r", str(req), "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (2, "error"), report["summary"]


@settings(max_examples=60)
@given(data=st.data())
def test_installed_metadata_names_are_normalised(data):
    """Installed metadata may spell the name oddly, even with a trailing separator pip would refuse."""
    name = data.draw(name_spelling("gratient")) + data.draw(st.sampled_from(["", "_", "-", "."]))
    version = data.draw(version_spelling(Version("0.5"), add_local=False))
    assert "PYSEC-2024-1" in _hits(name, Version(version))


def test_another_environment_with_odd_metadata_names_is_never_a_pass(tmp_path, capsys):
    site = tmp_path / "site-packages"
    for dirname, name in (("GRATIENT-0.5.0.dist-info", "GraTIENT"), ("Gratient_-0.5.0.dist-info", "Gratient_")):
        meta = site / dirname
        meta.mkdir(parents=True)
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.5.0\n")
    argv = ["audit", "--path", str(site), "--osv-db", str(snapshot_path())]
    shutil.rmtree(site / "Gratient_-0.5.0.dist-info")
    code, report = run_cli(capsys, argv)
    assert (code, [f["id"] for f in report["findings"]]) == (1, ["PYSEC-2024-1"]), report["summary"]
    # pip rejects (and so never lists) a distribution whose name is not PEP 508: counted, error
    shutil.rmtree(site / "GRATIENT-0.5.0.dist-info")
    meta = site / "Gratient_-0.5.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: Gratient_\nVersion: 0.5.0\n")
    code, report = run_cli(capsys, argv)
    assert (code, report["status"]) == (2, "error"), report["summary"]
    assert report["metrics"]["unaudited_unversioned"] == 1


@settings(max_examples=25)
@given(data=st.data())
def test_ignore_entries_apply_to_any_spelling_of_the_package(data, tmp_path_factory, capsys):
    name = data.draw(name_spelling("gratient"))
    d = tmp_path_factory.mktemp("i")
    (d / "r.txt").write_text("gratient==0.5\n")
    (d / "ignore.toml").write_text(
        f'[[ignore]]\nid = "pysec-2024-1"\npackage = "{name}"\nreason = "test"\nexpires = 2999-01-01\n'
    )
    argv = ["audit", "-r", str(d / "r.txt"), "--osv-db", str(snapshot_path()), "--ignore-file", str(d / "ignore.toml")]
    code, report = run_cli(capsys, argv)
    assert (code, report["metrics"]["ignored"]) == (0, 1)
    # a misspelt key must not widen (or silently drop) the ignore: it is an error
    (d / "ignore.toml").write_text(
        f'[[ignore]]\nid = "PYSEC-2024-1"\npakage = "{name}"\nreason = "test"\nexpires = 2999-01-01\n'
    )
    code, report = run_cli(capsys, argv)
    assert (code, report["status"]) == (2, "error")
    assert "unknown key" in report["summary"]


def test_every_site_packages_of_a_prefix_is_audited(tmp_path, capsys):
    """A prefix with two interpreters' site-packages: the vulnerable one is not skipped for the other."""
    for pyver, name, version in (("python3.10", "gratient", "0.5"), ("python3.12", "six", "1.16.0")):
        meta = tmp_path / "venv" / "lib" / pyver / "site-packages" / f"{name}-{version}.dist-info"
        meta.mkdir(parents=True)
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    code, report = run_cli(capsys, ["audit", "--path", str(tmp_path / "venv"), "--osv-db", str(snapshot_path())])
    assert (code, [f["id"] for f in report["findings"]]) == (1, ["PYSEC-2024-1"]), report["summary"]
    assert report["metrics"]["packages_audited"] == 2
