"""Ambiguous digests: no two distinct trees, and no tree and a single file, share a root digest.

The v1 root digest hashed ``digest  size  path`` text lines, so a file name holding a newline and a
forged line (or one text file holding those lines) reproduced another tree's digest. v2 hashes a
tagged, length-prefixed encoding; v1 root digests are no longer accepted as ``--digest``.
"""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import hashing, integrity
from tests.adversarial.integrity.helpers import (
    TREES,
    finding_ids,
    flatten,
    in_memory_manifest,
    materialise,
    run,
)


def _digest(flat, kind="directory"):
    entries, dirs = in_memory_manifest(flat)
    return hashing.root_digest(entries, "sha256", directories=dirs, kind=kind)


@settings(max_examples=120)
@given(st.lists(TREES, min_size=2, max_size=6))
def test_distinct_trees_never_share_a_root_digest(trees):
    by_digest: dict[str, object] = {}
    for tree in trees:
        flat = flatten(tree)
        key = tuple(sorted(flat.items()))
        digest = _digest(flat)
        assert by_digest.setdefault(digest, key) == key


MUTATIONS = ("remove", "retype", "content", "rename", "add_dir", "link_target", "file_to_link_text")


@settings(max_examples=200)
@given(TREES.filter(lambda t: t), st.sampled_from(MUTATIONS), st.data())
def test_any_single_change_changes_the_root_digest(tree, mutation, data):
    flat = flatten(tree)
    original = _digest(flat)
    victim = data.draw(st.sampled_from(sorted(flat)))
    kind, value = flat[victim]
    mutated = dict(flat)
    if mutation == "remove":
        mutated = {p: v for p, v in flat.items() if p != victim and not p.startswith(victim + "/")}
    elif mutation == "retype":
        mutated[victim] = ("symlink", "x") if kind != "symlink" else ("file", b"x")
        mutated = {p: v for p, v in mutated.items() if not p.startswith(victim + "/")}
    elif mutation == "content":
        mutated[victim] = ("file", (value if kind == "file" else b"") + b"!")
        mutated = {p: v for p, v in mutated.items() if not p.startswith(victim + "/")}
    elif mutation == "rename":
        mutated = {(p + "~" if p == victim else p): v for p, v in flat.items() if not p.startswith(victim + "/")}
    elif mutation == "add_dir":
        mutated[victim + "~empty"] = ("dir", None)
    elif mutation == "link_target":
        mutated[victim] = ("symlink", (value if kind == "symlink" else "t") + "2")
        mutated = {p: v for p, v in mutated.items() if not p.startswith(victim + "/")}
    else:  # a file whose bytes are the old link text, or the reverse: same "content", different type
        if kind == "symlink":
            mutated[victim] = ("file", b"symlink:" + value.encode())
        elif kind == "file":
            mutated[victim] = ("symlink", value.decode("latin-1") or "x")
        else:
            mutated[victim] = ("file", b"")
            mutated = {p: v for p, v in mutated.items() if not p.startswith(victim + "/")}
    assert mutated != flat
    assert _digest(mutated) != original
    assert _digest(flat, kind="file") != original  # the kind is part of the encoding


@settings(max_examples=40)
@given(TREES)
def test_the_walk_records_exactly_the_generated_tree(tmp_path_factory, tree):
    root = tmp_path_factory.mktemp("t") / "art"
    materialise(root, tree)
    manifest = hashing.build_manifest(root, workers=1)
    assert manifest["root_digest"] == _digest(flatten(tree))
    parsed = hashing.parse_manifest(hashing.manifest_bytes(manifest), "m")
    assert parsed["root_digest"] == manifest["root_digest"]


@settings(max_examples=40)
@given(st.binary(min_size=1, max_size=40), st.binary(min_size=1, max_size=40))
def test_v1_forgery_by_newline_name_no_longer_verifies(tmp_path_factory, a, b):
    """Two files a, b; the attacker deletes b and renames a to 'a\\n<digest b>  <size b>  b'.

    Same v1 root digest (the demonstration), different v2 digest, and the attack tree fails both
    ``--digest`` (v2 or v1 value) and the v1 manifest of the original.
    """
    base = tmp_path_factory.mktemp("v1")
    original, attack = base / "orig", base / "attack"
    materialise(original, {"a": ("file", a), "b": ("file", b)})
    forged = f"a\n{hashlib.sha256(b).hexdigest()}  {len(b)}  b"
    materialise(attack, {forged: ("file", a)})
    m_orig = hashing.build_manifest(original)
    m_attack = hashing.build_manifest(attack)
    assert hashing.root_digest(m_orig["entries"], "sha256", version=1) == hashing.root_digest(
        m_attack["entries"], "sha256", version=1
    )
    assert m_orig["root_digest"] != m_attack["root_digest"]
    v1_root = hashing.root_digest(m_orig["entries"], "sha256", version=1)
    for digest in (m_orig["root_digest"], v1_root):
        report = integrity.verify_artifact(attack, expected_digest=digest).to_dict()
        assert report["status"] == "fail"
    legacy_hint = integrity.verify_artifact(original, expected_digest=v1_root).to_dict()
    assert legacy_hint["status"] == "fail" and "legacy v1" in legacy_hint["findings"][0]["details"]["hint"]
    # a v1 manifest of the original still verifies the original, and refuses the attack tree
    v1 = {
        "schema": "aisec.manifest/v1",
        "algorithm": "sha256",
        "kind": "directory",
        "root": str(original),
        "file_count": 2,
        "total_bytes": len(a) + len(b),
        "root_digest": v1_root,
        "entries": [{k: e[k] for k in ("path", "size", "digest")} for e in m_orig["entries"]],
    }
    path = base / "v1.json"
    path.write_text(json.dumps(v1))
    assert integrity.verify_artifact(original, manifest_path=path).status == "pass"
    assert integrity.verify_artifact(attack, manifest_path=path).status == "fail"


@settings(max_examples=40)
@given(TREES.filter(lambda t: t))
def test_a_single_file_holding_the_encoded_tree_is_refused(tmp_path_factory, tree):
    """A file whose bytes are the v2 encoding of a tree has that tree's root digest: never a PASS."""
    flat = flatten(tree)
    entries, dirs = in_memory_manifest(flat)
    preimage = hashing.root_digest_encoding(entries, "sha256", directories=dirs)
    digest = hashing.root_digest(entries, "sha256", directories=dirs)
    f = tmp_path_factory.mktemp("f") / "model"
    f.write_bytes(preimage)
    assert hashlib.sha256(preimage).hexdigest() == digest  # the collision this test is about
    report = integrity.verify_artifact(f, expected_digest=digest).to_dict()
    assert report["status"] == "fail"
    assert "AISEC-INT-AMBIGUOUS" in finding_ids(report)


def test_v1_text_lines_in_a_single_file_do_not_match_a_directory(tmp_path, capsys):
    root = tmp_path / "dir"
    materialise(root, {"a": ("file", b"A"), "b": ("file", b"B")})
    m = hashing.build_manifest(root)
    lines = "".join(f"{e['digest']}  {e['size']}  {e['path']}\n" for e in m["entries"]).encode()
    crafted = tmp_path / "crafted.txt"
    crafted.write_bytes(lines)
    code, report = run(capsys, ["verify", str(crafted), "--digest", m["root_digest"]])
    assert code == 1 and report["status"] == "fail"
    code, report = run(capsys, ["verify", str(root), "--digest", m["root_digest"]])
    assert code == 0 and report["status"] == "pass"


def test_directory_holding_a_same_named_file_is_not_the_file(tmp_path, capsys):
    """A manifest of file X must not accept a directory X containing X (same entry path)."""
    f = tmp_path / "x" / "model.bin"
    f.parent.mkdir()
    f.write_bytes(b"weights")
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(f), "-o", str(manifest)])[0] == 0
    f.unlink()
    f.mkdir()
    (f / "model.bin").write_bytes(b"weights")
    code, report = run(capsys, ["verify", str(f), "--manifest", str(manifest)])
    assert code == 1 and "AISEC-INT-KIND-CHANGED" in finding_ids(report)
    code, report = run(capsys, ["verify", str(f), "--digest", hashlib.sha256(b"weights").hexdigest()])
    assert code == 1 and report["status"] == "fail"
