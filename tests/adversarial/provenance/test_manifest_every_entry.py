"""Provenance against a (signed) directory manifest checks every entry: any change refuses the dataset."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli import main
from airflow_aisec.core import hashing
from tests.adversarial.integrity.helpers import materialise, run

FILES = st.dictionaries(
    st.sampled_from(["a.csv", "b.csv", "c.csv", "part/d.csv", "part/e.csv", "part/deep/f.csv"]),
    st.binary(min_size=0, max_size=16),
    min_size=3,
    max_size=6,
)
MUTATIONS = [
    "delete_one",
    "delete_all_but_one",
    "add_file",
    "add_empty_dir",
    "change",
    "append",
    "to_symlink",
    "to_dir",
    "dir_to_file",
    "rename",
]


def _tree(files):
    tree: dict = {}
    for rel, data in files.items():
        node = tree
        *parents, name = rel.split("/")
        for p in parents:
            node = node.setdefault(p, ("dir", {}))[1]
        node[name] = ("file", data)
    return tree


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("k")
    priv, pub = base / "k.pem", base / "k.pub"
    assert main(["keygen", str(priv), str(pub)]) == 0
    return priv, pub


def _mutate(root, files, mutation, victim):
    path = root / victim
    if mutation == "delete_one":
        path.unlink()
    elif mutation == "delete_all_but_one":
        for rel in sorted(files)[1:]:
            (root / rel).unlink()
    elif mutation == "add_file":
        (root / "zz-new.csv").write_bytes(b"poison")
    elif mutation == "add_empty_dir":
        (root / "zz-empty").mkdir()
    elif mutation == "change":
        path.write_bytes(bytes([b ^ 1 for b in path.read_bytes()]) or b"x")
    elif mutation == "append":
        with open(path, "ab") as fh:
            fh.write(b"\n1,2,3")
    elif mutation == "to_symlink":
        data = path.read_bytes()
        path.unlink()
        outside = root.parent / "outside.csv"
        outside.write_bytes(data)
        path.symlink_to(outside)
    elif mutation == "to_dir":
        data = path.read_bytes()
        path.unlink()
        path.mkdir()
        (path / path.name).write_bytes(data)
    elif mutation == "dir_to_file":
        parent = path.parent if path.parent != root else None
        if parent is None:  # no sub-folder: replace the whole file by a folder instead
            path.unlink()
            path.mkdir()
        else:
            shutil.rmtree(parent)
            parent.write_bytes(b"")
    else:
        os.rename(path, path.with_name(path.name + ".bak"))


@settings(max_examples=80)
@given(FILES, st.sampled_from(MUTATIONS), st.data(), st.booleans())
def test_every_change_to_a_signed_dataset_is_refused(tmp_path_factory, capsys, keys, files, mutation, data, signed):
    base = tmp_path_factory.mktemp("ds")
    root = base / "allowed" / "ds"
    root.parent.mkdir()
    materialise(root, _tree(files))
    manifest = base / "ds.manifest.json"
    hash_argv = ["hash", str(root), "-o", str(manifest)] + (["--sign-key", str(keys[0])] if signed else [])
    assert run(capsys, hash_argv)[0] == 0
    argv = ["provenance", str(root), "--allow-source", str(base / "allowed"), "--manifest", str(manifest)]
    argv += ["--public-key", str(keys[1])] if signed else []
    statement = base / "s.json"
    code, report = run(capsys, [*argv, "-o", str(statement)])
    assert code == 0 and report["status"] == "pass" and statement.exists()
    statement.unlink()
    victim = data.draw(st.sampled_from(sorted(files)))
    _mutate(root, files, mutation, victim)
    code, report = run(capsys, [*argv, "-o", str(statement)])
    assert code == 1 and report["status"] == "fail", (mutation, report["summary"])
    assert {f["id"] for f in report["findings"]} <= {"AISEC-PROV-MANIFEST", "AISEC-PROV-LINK"}
    assert not statement.exists()  # no statement attests to refused data


def test_single_file_does_not_match_a_directory_manifest_by_name(tmp_path, capsys):
    root = tmp_path / "ds"
    materialise(root, {"a.csv": ("file", b"1"), "b.csv": ("file", b"2"), "c.csv": ("file", b"3")})
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(root), "-o", str(manifest)])[0] == 0
    code, report = run(
        capsys, ["provenance", str(root / "a.csv"), "--allow-source", str(tmp_path), "--manifest", str(manifest)]
    )
    assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-MANIFEST"


def test_v1_manifest_still_verifies_and_still_checks_every_entry(tmp_path, capsys):
    root = tmp_path / "ds"
    materialise(root, {"a.csv": ("file", b"1"), "b.csv": ("file", b"2"), "c.csv": ("file", b"3")})
    m = hashing.build_manifest(root)
    entries = [{k: e[k] for k in ("path", "size", "digest")} for e in m["entries"]]
    v1 = {
        "schema": "aisec.manifest/v1",
        "algorithm": "sha256",
        "kind": "directory",
        "root": str(root),
        "file_count": 3,
        "total_bytes": 3,
        "root_digest": hashing.root_digest(entries, "sha256", version=1),
        "entries": entries,
    }
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps(v1))
    argv = ["provenance", str(root), "--allow-source", str(tmp_path), "--manifest", str(manifest)]
    assert run(capsys, argv)[0] == 0
    (root / "b.csv").unlink()
    (root / "c.csv").unlink()
    code, report = run(capsys, argv)
    assert code == 1 and report["findings"][0]["id"] == "AISEC-PROV-MANIFEST"
