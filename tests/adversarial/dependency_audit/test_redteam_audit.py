"""Red-team round: inputs that made the dependency audit say PASS (or rate a finding too low).

* two installed versions of one project in one site-packages: pip lists one, the other vanished;
* an OSV range the spec sweep calls "never affected" because it has no ``introduced`` event, or an
  unparsable bound beside an *empty* ``versions`` list: silently no match instead of an uncertain one;
* advisories pip-audit merges by a shared alias (PYSEC + GHSA for one CVE): the merged result was
  rated by whichever advisory a set iteration met first, so a critical GHSA could be rated as the
  PYSEC record's lower severity and slip under ``--fail-on critical``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from airflow_aisec.core.osv import OsvDatabase
from tests.adversarial.dependency_audit.conftest import run_cli
from tests.osv_helpers import snapshot_path

CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
LOW = "CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"


def _record(rid: str, name: str, events: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"name": name, "ecosystem": "PyPI"}}
    affected["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if "versions" in extra:
        affected["versions"] = extra.pop("versions")
    return {"id": rid, "modified": "2024-01-02T03:04:05Z", "affected": [affected], **extra}


def _zip(path: Path, records: list[dict[str, Any]]) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for r in records:
            zf.writestr(f"{r['id']}.json", json.dumps(r))
    return str(path)


# ------------------------------------------------------------------ two versions of one installed project
def _dist(site: Path, dirname: str, name: str, version: str) -> None:
    meta = site / dirname
    meta.mkdir(parents=True)
    filename = "PKG-INFO" if dirname.endswith(".egg-info") else "METADATA"
    (meta / filename).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.mark.parametrize(
    "hidden",
    [("requests-1.0.dist-info", "requests", "1.0"), ("Requests-2.0.0.egg-info", "Requests", "2.0.0")],
)
def test_a_second_installed_version_of_a_project_is_never_dropped(tmp_path, capsys, hidden):
    """requests 2.31.0 is clean in the snapshot, 1.0 / 2.0.0 are not: pip lists one, the other must count."""
    site = tmp_path / "site-packages"
    _dist(site, "requests-2.31.0.dist-info", "requests", "2.31.0")
    _dist(site, *hidden)
    code, report = run_cli(capsys, ["audit", "--path", str(site), "--osv-db", str(snapshot_path())])
    # whichever of the two pip lists, the other is an unaudited item: an error, never a pass
    assert (code, report["status"]) == (2, "error"), report["summary"]
    assert report["metrics"]["unaudited_unversioned"] == 1
    (item,) = report["details"]["unaudited"]
    assert item["item"] in (f"{hidden[1]} {hidden[2]}", "requests 2.31.0"), item
    assert "another installed version" in item["reason"]
    # allowed by policy it is reported as warn at best, never a pass
    code, report = run_cli(
        capsys,
        ["audit", "--path", str(site), "--osv-db", str(snapshot_path()), "--allow-unaudited", "unversioned"],
    )
    assert report["status"] in ("warn", "fail"), report["summary"]


# ------------------------------------------------------------------ ranges the sweep cannot evaluate
@pytest.mark.parametrize(
    "events",
    [
        [{"fixed": "2.0"}],
        [{"last_affected": "2.0"}],
        [{"limit": "2.0"}],
        [{"fixed": "2.0"}, {"limit": "3.0"}],
        [{"introduced": "0.5-not+pep440!"}, {"fixed": "2.0"}],
    ],
)
def test_a_range_without_an_introduced_event_is_an_uncertain_match(events):
    db = OsvDatabase.from_records("t", [("a.json", _record("T-NOINTRO-1", "victim", events))])
    matches = db.query("victim", Version("1.0"))
    assert [(m.advisory.id, m.certain) for m in matches] == [("T-NOINTRO-1", False)]


def test_an_empty_versions_list_does_not_decide_an_indeterminate_range(tmp_path, capsys):
    record = _record("T-EMPTY-1", "victim", [{"introduced": "0"}, {"fixed": "2.0-n653"}], versions=[])
    db = OsvDatabase.from_records("t", [("a.json", record)])
    assert [(m.advisory.id, m.certain) for m in db.query("victim", Version("1.0"))] == [("T-EMPTY-1", False)]
    reqs = tmp_path / "r.txt"
    reqs.write_text("victim==1.0\n")
    code, report = run_cli(capsys, ["audit", "-r", str(reqs), "--osv-db", _zip(tmp_path / "db.zip", [record])])
    assert (code, report["metrics"]["uncertain_matches"]) == (1, 1), report["summary"]


# ------------------------------------------------------------------ advisories merged by a shared alias
def test_merged_advisories_are_rated_by_the_most_severe(tmp_path, capsys):
    """Each package has a PYSEC (CVSS low) and a GHSA (CVSS critical) record for the same CVE."""
    records, lines = [], []
    for i in range(12):
        events = [{"introduced": "0"}, {"fixed": "2.0"}]
        cve = f"CVE-2024-{1000 + i}"
        sev_low = [{"type": "CVSS_V3", "score": LOW}]
        sev_crit = [{"type": "CVSS_V3", "score": CRITICAL}]
        records.append(_record(f"PYSEC-2024-{900 + i}", f"victim{i}", events, aliases=[cve], severity=sev_low))
        records.append(_record(f"GHSA-aaaa-bbbb-{i:04d}", f"victim{i}", events, aliases=[cve], severity=sev_crit))
        lines.append(f"victim{i}==1.0\n")
    reqs = tmp_path / "r.txt"
    reqs.write_text("".join(lines))
    db = _zip(tmp_path / "db.zip", records)
    code, report = run_cli(capsys, ["audit", "-r", str(reqs), "--osv-db", db, "--fail-on", "critical"])
    assert code == 1, report["summary"]
    assert len(report["findings"]) == 12  # one merged finding per package …
    assert {f["severity"] for f in report["findings"]} == {"critical"}  # … each rated by its worst advisory


# ------------------------------------------------------------------ a source that rendered to nothing
@pytest.mark.parametrize(
    "argv", [["-r", ""], ["-r", "  "], ["--path", ""], ["--project", " "], ["--path", "", "--project", ""]]
)
def test_an_empty_source_is_an_error_not_an_audit_of_this_environment(capsys, argv):
    """``requirements="{{ … }}"`` rendering to "" used to audit the worker's own environment instead."""
    code, report = run_cli(capsys, ["audit", *argv, "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (2, "error"), report["summary"]
    assert "empty" in report["summary"]


def test_run_audit_refuses_an_empty_requirements_entry():
    from airflow_aisec.core.dependency_audit import run_audit
    from airflow_aisec.exceptions import AisecInputError

    with pytest.raises(AisecInputError, match="requirements: an empty file name"):
        run_audit(requirements=[""], osv_db=str(snapshot_path()))


# ------------------------------------------------------------------ pylock.toml entries pip-audit mis-reads
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "requests "\nversion = "2.0.0"', "invalid project name"),
        ('name = "\\trequests"\nversion = "2.0.0"', "invalid project name"),
        ('name = "requests\\u200b"\nversion = "2.0.0"', "invalid project name"),
        ('name = 3\nversion = "2.0.0"', "invalid project name"),
        ('name = "requests"\nversion = 2', "version must be a string"),
    ],
)
def test_lock_entries_with_odd_names_are_errors_not_a_clean_package(tmp_path, capsys, entry, message):
    """``name = "requests "`` never equals the advisory's name: requests 2.0.0 used to pass clean."""
    (tmp_path / "pylock.toml").write_text(f'lock-version = "1.0"\ncreated-by = "t"\n[[packages]]\n{entry}\n')
    code, report = run_cli(capsys, ["audit", "--project", str(tmp_path), "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (2, "error"), report["summary"]
    assert message in report["summary"]


@pytest.mark.parametrize("packages", ['packages = "abc"', "packages = [1]"])
def test_a_malformed_lock_is_a_named_input_error(tmp_path, capsys, packages):
    (tmp_path / "pylock.toml").write_text(f'lock-version = "1.0"\ncreated-by = "t"\n{packages}\n')
    code, report = run_cli(capsys, ["audit", "--project", str(tmp_path), "--osv-db", str(snapshot_path())])
    assert (code, report["status"]) == (2, "error")
    assert "unexpected" not in report["summary"] and "lock file" in report["summary"]


# ------------------------------------------------------------------ a database directory with a symlinked subdirectory
def test_a_symlinked_subdirectory_of_a_database_is_an_error_not_missing_records(tmp_path, capsys):
    """os.walk lists a symlinked directory but never enters it: the victim's advisory used to vanish."""
    db, elsewhere = tmp_path / "osvdb", tmp_path / "elsewhere"
    db.mkdir()
    elsewhere.mkdir()
    events = [{"introduced": "0"}, {"fixed": "2.0"}]
    (db / "T-OTHER-1.json").write_text(json.dumps(_record("T-OTHER-1", "other", events)))
    (elsewhere / "T-VICTIM-1.json").write_text(json.dumps(_record("T-VICTIM-1", "victim", events)))
    (db / "pypi").symlink_to(elsewhere, target_is_directory=True)
    reqs = tmp_path / "r.txt"
    reqs.write_text("victim==1.0\n")
    code, report = run_cli(capsys, ["audit", "-r", str(reqs), "--osv-db", str(db)])
    assert (code, report["status"]) == (2, "error"), report["summary"]
    assert "'pypi' is a symbolic link to a directory" in report["summary"]


# ------------------------------------------------------------------ a stray dist-info at a virtualenv's root
def test_a_stray_dist_info_at_a_prefix_root_does_not_hide_its_site_packages(tmp_path, capsys):
    """``venv/six-1.16.0.dist-info`` made ``--path venv`` audit only the root: requests 2.0.0 below passed."""
    venv = tmp_path / "venv"
    _dist(venv / "lib" / "python3.11" / "site-packages", "requests-2.0.0.dist-info", "requests", "2.0.0")
    _dist(venv, "six-1.16.0.dist-info", "six", "1.16.0")
    code, report = run_cli(capsys, ["audit", "--path", str(venv), "--osv-db", str(snapshot_path())])
    assert code == 1, report["summary"]
    assert {f["location"] for f in report["findings"]} == {"requests==2.0.0"}
    assert report["metrics"]["packages_audited"] == 2
