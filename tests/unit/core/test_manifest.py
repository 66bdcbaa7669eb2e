"""The manifest as a frozen value: canonical bytes round-trip, strict parsing, v1 still verifies."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import hashing, integrity
from airflow_aisec.core.manifest import MANIFEST_SCHEMA_V1, Entry, Manifest, link_digest, parse_manifest, root_digest
from airflow_aisec.exceptions import AisecInputError


def _tree(base):
    (base / "a" / "b").mkdir(parents=True)
    (base / "empty").mkdir()
    (base / "a" / "w.bin").write_bytes(os.urandom(3000))
    (base / "a" / "b" / "ü ñ.txt").write_bytes(b"hi")
    (base / "z").write_bytes(b"")
    os.symlink("a/w.bin", base / "lnk")
    return base


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "blake2b"])
@pytest.mark.parametrize("single_file", [False, True])
def test_written_manifest_reads_back_to_the_same_bytes(tmp_path, algorithm, single_file):
    root = _tree(tmp_path / "art")
    target = root / "a" / "w.bin" if single_file else root
    out = tmp_path / "m.json"
    report = integrity.hash_artifact(target, algorithm=algorithm, manifest_path=out)
    assert report.status == "pass"
    written = out.read_bytes()
    value = Manifest.from_bytes(written)
    assert value.to_bytes() == written
    assert value.kind == ("file" if single_file else "directory")
    assert value == hashing.hash_manifest(target, algorithm)
    assert hashing.build_manifest(target, algorithm) == json.loads(written)
    assert integrity.verify_artifact(target, manifest_path=out).status == "pass"


def test_manifest_is_frozen_and_typed(tmp_path):
    value = hashing.hash_manifest(_tree(tmp_path / "art"))
    assert isinstance(value.entries, tuple) and all(isinstance(e, Entry) for e in value.entries)
    assert isinstance(value.directories, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        value.root_digest = "0" * 64  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        value.entries[0].digest = "0" * 64  # type: ignore[misc]
    link = next(e for e in value.entries if e.type == "symlink")
    assert link.link == "a/w.bin" and link.digest == link_digest("a/w.bin", "sha256")
    assert value.file_count == len(value.entries) and value.total_bytes == 3002


_names = st.text(alphabet="abcxyz_-.é", min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


@settings(max_examples=60, deadline=None)
@given(
    files=st.dictionaries(_names, st.binary(max_size=40), min_size=1, max_size=6),
    links=st.dictionaries(_names, _names, max_size=3),
    algorithm=st.sampled_from(["sha256", "blake2b"]),
)
def test_any_built_manifest_round_trips(files, links, algorithm):
    entries = [
        Entry(path=f"d/{name}", type="file", size=len(data), digest=hashlib.new(algorithm, data).hexdigest())
        for name, data in files.items()
    ] + [
        Entry(path=f"l/{name}", type="symlink", size=0, digest=link_digest(target, algorithm), link=target)
        for name, target in links.items()
    ]
    dirs = ["d", "l"] if links else ["d"]
    value = Manifest.build(kind="directory", algorithm=algorithm, entries=entries, directories=dirs, root="/x")
    data = value.to_bytes()
    assert Manifest.from_bytes(data) == value
    assert Manifest.from_bytes(data).to_bytes() == data
    assert value.root_digest == root_digest([e.to_dict() for e in entries], algorithm, directories=dirs)


def test_a_v1_manifest_still_parses_and_verifies(tmp_path):
    root = _tree(tmp_path / "art")
    os.remove(root / "lnk")
    v2 = hashing.hash_manifest(root)
    entries = [{"path": e.path, "size": e.size, "digest": e.digest} for e in v2.entries]
    doc = {
        "schema": MANIFEST_SCHEMA_V1,
        "algorithm": "sha256",
        "root": str(root),
        "file_count": len(entries),
        "total_bytes": v2.total_bytes,
        "root_digest": root_digest(entries, "sha256", version=1),
        "entries": entries,
    }
    data = hashing.manifest_bytes(doc)
    value = Manifest.from_bytes(data)
    assert value.version == 1 and value.directories is None and value.kind is None
    assert value.to_bytes() == data
    parsed = parse_manifest(data)
    assert parsed["version"] == 1 and parsed["directories"] is None
    assert all(e["type"] == "file" for e in parsed["entries"])
    out = tmp_path / "v1.json"
    out.write_bytes(data)
    assert integrity.verify_artifact(root, manifest_path=out).status == "pass"
    (root / "z").write_bytes(b"changed")
    assert integrity.verify_artifact(root, manifest_path=out).status == "fail"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(root=7), "root"),
        (lambda d: d.update(extra=1), r"unexpected field\(s\) \['extra'\]"),
        (lambda d: d["entries"][0].update(digest="0" * 64), "root digest does not match"),
        (lambda d: d.update(file_count=99), "file_count 99 does not match"),
        (lambda d: d["entries"].append(dict(d["entries"][0])), "duplicate entry"),
    ],
)
def test_parse_stays_strict(tmp_path, edit, match):
    doc = hashing.hash_manifest(_tree(tmp_path / "art")).document()
    edit(doc)
    with pytest.raises(AisecInputError, match=match):
        Manifest.from_bytes(hashing.manifest_bytes(doc), "m.json")


def test_hashing_keeps_its_public_names():
    for name in ("parse_manifest", "manifest_bytes", "root_digest", "ROOT_DIGEST_TAG", "MANIFEST_SCHEMA", "new_hasher"):
        assert getattr(hashing, name) is not None
    assert hashing.ArtifactChangedError.__module__ == "airflow_aisec.core.walk"
    assert hashing.file_sha256.__module__ == "airflow_aisec.core.hashing"
