"""Nothing from outside the allowlist gets in: symlinks, '..', absolute names, hard links, boundaries."""

from __future__ import annotations

import os

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from airflow_aisec.core import provenance as prov
from tests.adversarial.integrity.helpers import TREES, flatten, materialise, run

TREES_WITH_FILES = TREES.filter(lambda t: any(k == "file" for k, _ in flatten(t).values()))


def _layout(base):
    allowed = base / "allowed"
    ds = allowed / "ds"
    (ds / "part").mkdir(parents=True)
    (ds / "a.csv").write_bytes(b"1,2\n")
    (ds / "part" / "b.csv").write_bytes(b"3,4\n")
    outside = base / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.csv").write_bytes(b"poison\n")
    (outside / "dir" / "c.csv").write_bytes(b"poison dir\n")
    (allowed / "other.csv").write_bytes(b"inside the allowlist, outside the dataset\n")
    return allowed, ds, outside


def _digest(capsys, path):
    code, report = run(capsys, ["hash", str(path)])
    assert code == 0
    return report["details"]["digest"]


LINK_TARGETS = [
    lambda b: b / "outside" / "secret.csv",  # absolute, outside
    lambda b: "../../../outside/secret.csv",  # relative with '..', outside
    lambda b: b / "outside" / "dir",  # a folder outside
    lambda b: "../other.csv",  # inside the allowlist, outside the dataset: content not hashed as such
    lambda b: "a.csv",  # inside the dataset: still a link the trainer follows
    lambda b: "/etc/hostname",
    lambda b: "nowhere",  # dangling
]


@settings(max_examples=len(LINK_TARGETS) * 4)
@given(
    st.sampled_from(range(len(LINK_TARGETS))), st.sampled_from(["", "part/"]), st.sampled_from(["digest", "manifest"])
)
def test_symlinks_inside_an_allowlisted_dataset_are_refused(tmp_path_factory, capsys, which, where, mode):
    base = tmp_path_factory.mktemp("ln")
    allowed, ds, _ = _layout(base)
    link = ds / f"{where}link.csv"
    link.symlink_to(LINK_TARGETS[which](base))
    # the reference is taken *with* the link, so only the link policy can refuse it
    if mode == "digest":
        ref = ["--digest", _digest(capsys, ds)]
    else:
        assert run(capsys, ["hash", str(ds), "-o", str(base / "m.json")])[0] == 0
        ref = ["--manifest", str(base / "m.json")]
    statement = base / "s.json"
    code, report = run(capsys, ["provenance", str(ds), "--allow-source", str(allowed), *ref, "-o", str(statement)])
    assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-LINK"
    assert report["metrics"]["refused_symlinks"] == 1
    assert not statement.exists()


def test_hard_link_to_a_file_outside_is_refused(tmp_path, capsys):
    allowed, ds, outside = _layout(tmp_path)
    os.link(outside / "secret.csv", ds / "hl.csv")
    code, report = run(capsys, ["provenance", str(ds), "--allow-source", str(allowed), "--digest", _digest(capsys, ds)])
    assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-LINK"
    assert "hard-linked" in report["summary"]
    # a single hard-linked file as the dataset itself, too
    code, report = run(
        capsys,
        ["provenance", str(ds / "hl.csv"), "--allow-source", str(allowed), "--digest", _digest(capsys, ds / "hl.csv")],
    )
    assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-LINK"


def test_special_file_in_a_dataset_is_refused(tmp_path, capsys):
    allowed, ds, _ = _layout(tmp_path)
    digest = _digest(capsys, ds)
    os.mkfifo(ds / "pipe")
    code, report = run(capsys, ["provenance", str(ds), "--allow-source", str(allowed), "--digest", digest])
    assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-SPECIAL"


ESCAPES = [
    "{a}/../outside/secret.csv",
    "{a}/ds/../../outside/secret.csv",
    "{a}/./../outside",
    "{a}/../outside/dir",
    "file://{a}/../outside/secret.csv",
    "{b}/allowed-evil/x.csv",
    "{b}/allowedx.csv",
    "{b}/outside/secret.csv",
]


@settings(max_examples=len(ESCAPES) * 2)
@given(st.sampled_from(ESCAPES), st.booleans())
def test_dot_dot_absolute_and_prefix_tricks_stay_outside(tmp_path_factory, capsys, template, trailing):
    base = tmp_path_factory.mktemp("esc")
    allowed, _, _ = _layout(base)
    (base / "allowed-evil").mkdir()
    (base / "allowed-evil" / "x.csv").write_bytes(b"evil")
    (base / "allowedx.csv").write_bytes(b"evil")
    uri = template.format(a=allowed, b=base)
    allow = str(allowed) + ("/" if trailing else "")
    code, report = run(capsys, ["provenance", uri, "--allow-source", allow, "--digest", "0" * 64])
    assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-SOURCE"


def test_dataset_root_that_is_a_symlink_to_outside_is_judged_by_its_target(tmp_path, capsys):
    allowed, _, outside = _layout(tmp_path)
    (allowed / "alias").symlink_to(outside)
    code, report = run(
        capsys, ["provenance", str(allowed / "alias"), "--allow-source", str(allowed), "--digest", "0" * 64]
    )
    assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-SOURCE"
    # an allowlisted symlink does not widen the allowlist to wherever it points either way round
    (tmp_path / "allow-alias").symlink_to(allowed)
    ok = prov.allowed_source(prov.parse_uri(str(allowed / "ds")), [str(tmp_path / "allow-alias")])
    assert ok == str(tmp_path / "allow-alias")
    assert prov.allowed_source(prov.parse_uri(str(outside)), [str(tmp_path / "allow-alias")]) is None


@pytest.mark.parametrize(
    ("uri", "allow", "code"),
    [
        ("s3://bucket/data-evil/x.csv", "s3://bucket/data", 1),
        ("s3://bucket/data/../secret.csv", "s3://bucket/data", 2),  # '..' in a key: input error
        ("s3://bucket/data/./x.csv", "s3://bucket/data", 2),
        ("s3://bucket-evil/data/x.csv", "s3://bucket", 1),
        ("s3://other/data/x.csv", "s3://bucket/data", 1),
    ],
)
def test_object_store_prefix_boundaries(capsys, uri, allow, code):
    got, report = run(capsys, ["provenance", uri, "--allow-source", allow, "--digest", "0" * 64])
    assert got == code and report["status"] == ("fail" if code == 1 else "error")
    if code == 1:
        assert report["findings"][0]["id"] == "AISEC-PROV-SOURCE"


def test_mount_point_inside_a_dataset_is_refused(tmp_path, capsys):
    import subprocess

    allowed, ds, _ = _layout(tmp_path)
    mnt = ds / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount here (needs root and CAP_SYS_ADMIN)")
    try:
        (mnt / "x.csv").write_bytes(b"from another filesystem")
        digest = _digest(capsys, ds)
        code, report = run(capsys, ["provenance", str(ds), "--allow-source", str(allowed), "--digest", digest])
        assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-LINK"
        assert "mount" in report["summary"]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_file_holding_the_encoded_dataset_tree_does_not_pass_for_the_dataset(tmp_path, capsys):
    from airflow_aisec.core import hashing

    allowed, ds, _ = _layout(tmp_path)
    m = hashing.build_manifest(ds)
    forged = allowed / "forged.bin"
    forged.write_bytes(hashing.root_digest_encoding(m["entries"], "sha256", directories=m["directories"]))
    code, report = run(
        capsys, ["provenance", str(forged), "--allow-source", str(allowed), "--digest", m["root_digest"]]
    )
    assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-DIGEST"
    assert "root-digest tag" in report["summary"]


SEGMENTS = st.text("abcxyz-_.", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@settings(max_examples=200)
@given(SEGMENTS, st.text("abc-_.", min_size=1, max_size=4), SEGMENTS, st.integers(1, 3))
def test_generated_prefix_and_dot_dot_tricks(tmp_path_factory, name, suffix, other, ups):
    base = tmp_path_factory.getbasetemp() / "gen"
    allow = str(base / name)
    sibling = prov.parse_uri(str(base / (name + suffix)) + "/x.csv")  # /base/<name><suffix>: not under /base/<name>
    assert prov.allowed_source(sibling, [allow]) is None
    assert prov.allowed_source(sibling, [allow + "/"]) is None
    assume(other != name)  # '/base/<name>/../<name>' is legitimately inside
    escaped = prov.parse_uri(str(base / name) + "/" + "/".join([".."] * ups) + f"/{other}/x.csv")
    assert prov.allowed_source(escaped, [allow]) is None
    inside = prov.parse_uri(str(base / name / other / ".." / "x.csv"))
    assert prov.allowed_source(inside, [allow]) == allow


@settings(max_examples=40)
@given(TREES_WITH_FILES)
def test_generated_trees_pass_only_without_links(tmp_path_factory, capsys, tree):
    base = tmp_path_factory.mktemp("gt")
    ds = base / "allowed" / "ds"
    materialise(ds, tree)
    code, report = run(capsys, ["hash", str(ds)])
    assert code == 0
    argv = ["provenance", str(ds), "--allow-source", str(base / "allowed"), "--digest", report["details"]["digest"]]
    code, report = run(capsys, argv)
    has_link = any(kind == "symlink" for kind, _ in flatten(tree).values())
    if has_link:
        assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-LINK"
    else:
        assert code == 0 and report["status"] == "pass"
