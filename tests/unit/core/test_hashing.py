from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc

import pytest

from airflow_aisec.core import hashing
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

ABC = {
    "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "sha512": "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    "blake2b": "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
    "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
    "blake3": "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
}


@pytest.mark.parametrize("algorithm", sorted(ABC))
def test_known_vectors(tmp_path, algorithm):
    if algorithm == "blake3":
        pytest.importorskip("blake3")
    f = tmp_path / "abc"
    f.write_bytes(b"abc")
    assert hashing.hash_file(f, algorithm) == ABC[algorithm]


def test_empty_file_and_unknown_algorithm(tmp_path):
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert hashing.hash_file(f) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(AisecInputError, match="unknown hash algorithm 'md5'"):
        hashing.hash_file(f, "md5")


def test_large_file_is_streamed_in_constant_memory(tmp_path):
    f = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(f, "wb") as fh:
        for _ in range(48):
            fh.write(block)
    tracemalloc.start()
    digest = hashing.hash_file(f)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert digest == hashlib.sha256(block * 48).hexdigest()
    assert peak < 4 * hashing.CHUNK_SIZE  # one read buffer, not the file


def test_missing_file_is_undecidable(tmp_path):
    with pytest.raises(AisecUndecidableError, match="file not found"):
        hashing.hash_file(tmp_path / "nope")


def test_file_changed_while_hashing_is_detected(tmp_path, monkeypatch):
    f = tmp_path / "growing.bin"
    f.write_bytes(b"x" * (3 * hashing.CHUNK_SIZE))
    real = hashing._hash_stream

    def appending(fh, hasher, progress):  # a writer appends while we read
        with open(f, "ab") as other:
            other.write(b"injected")
        return real(fh, hasher, progress)

    monkeypatch.setattr(hashing, "_hash_stream", appending)
    with pytest.raises(AisecUndecidableError, match="changed while it was being hashed"):
        hashing.hash_file(f)


def _tree(root):
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "nested" / "b.bin").write_bytes(b"\x00\x01")
    (root / "nested" / "deeper" / "ünïcødé ✓.txt").write_text("unicode")
    return root


def test_manifest_of_nested_tree_with_unicode_names(tmp_path):
    root = _tree(tmp_path / "art")
    m = hashing.build_manifest(root, workers=2)
    assert [e["path"] for e in m["entries"]] == ["a.txt", "nested/b.bin", "nested/deeper/ünïcødé ✓.txt"]
    assert m["entries"][0] == {
        "path": "a.txt",
        "type": "file",
        "size": 5,
        "digest": hashlib.sha256(b"alpha").hexdigest(),
    }
    assert m["directories"] == ["nested", "nested/deeper"]
    assert m["file_count"] == 3 and m["total_bytes"] == 5 + 2 + 7
    assert m["root_digest"] == hashing.root_digest(
        reversed(m["entries"]), "sha256", directories=reversed(m["directories"])
    )  # order independent
    assert hashing.parse_manifest(hashing.manifest_bytes(m))["root_digest"] == m["root_digest"]


def test_manifest_is_identical_for_one_and_many_workers(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(40):
        (root / f"f{i:02d}").write_bytes(os.urandom(1000 + i))
    assert hashing.build_manifest(root, workers=1) == hashing.build_manifest(root, workers=4)


def test_empty_directory(tmp_path):
    m = hashing.build_manifest(tmp_path)
    assert m["entries"] == [] and m["file_count"] == 0 and m["kind"] == "directory"
    # v2: even an empty tree hashes a tagged, length-prefixed encoding (never the digest of b"")
    assert m["root_digest"] != hashlib.sha256(b"").hexdigest()
    assert m["root_digest"] == hashing.root_digest([], "sha256")


def test_symlinks_are_recorded_not_followed(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the root")
    root = tmp_path / "art"
    root.mkdir()
    (root / "inside.txt").write_text("in")
    (root / "escape").symlink_to(outside)
    m = hashing.build_manifest(root)
    link = next(e for e in m["entries"] if e["path"] == "escape")
    assert link["link"] == str(outside) and link["size"] == 0
    assert link["digest"] != hashlib.sha256(b"outside the root").hexdigest()
    with pytest.raises(AisecInputError, match="points outside the root"):
        hashing.build_manifest(root, follow_symlinks=True)


def test_symlink_inside_root_followed_on_request(tmp_path):
    root = tmp_path / "art"
    (root / "real").mkdir(parents=True)
    (root / "real" / "w").write_bytes(b"w")
    (root / "alias").symlink_to(root / "real")
    m = hashing.build_manifest(root, follow_symlinks=True)
    assert [e["path"] for e in m["entries"]] == ["alias/w", "real/w"]


def test_unreadable_file_is_never_silently_omitted(tmp_path, monkeypatch):
    # Tests run as root, which reads any file; so the permission error is injected for one path.
    root = _tree(tmp_path / "art")
    target = str(root / "a.txt")
    real_open = os.open

    def guarded_open(path, *args, **kwargs):
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    with pytest.raises(AisecUndecidableError, match="not readable"):
        hashing.build_manifest(root)
    seen = {}
    m = hashing.build_manifest(root, on_unreadable=lambda rel, exc: seen.setdefault(rel, str(exc)))
    assert list(seen) == ["a.txt"] and "a.txt" not in [e["path"] for e in m["entries"]]


def test_progress_is_logged_on_long_runs(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(hashing, "PROGRESS_INTERVAL_SECONDS", 0.0)
    f = tmp_path / "f"
    f.write_bytes(b"z" * (3 * hashing.CHUNK_SIZE))
    caplog.set_level("INFO", logger=hashing.__name__)
    hashing.build_manifest(f)
    assert any("MiB/s" in r.getMessage() for r in caplog.records)


def test_object_storage_paths(tmp_path):
    upath = pytest.importorskip("upath")
    root = upath.UPath("memory://aisec-test/model")
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "w.bin").write_bytes(b"weights")
    (root / "sub" / "c.json").write_bytes(b"{}")
    m = hashing.build_manifest(root)
    assert [e["path"] for e in m["entries"]] == ["sub/c.json", "w.bin"]
    assert m["entries"][1]["digest"] == hashlib.sha256(b"weights").hexdigest()
    assert hashing.hash_file("memory://aisec-test/model/w.bin") == hashlib.sha256(b"weights").hexdigest()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda m: m.update(schema="x"), r"is not an aisec.manifest/v2 \(or aisec.manifest/v1\)"),
        (lambda m: m["entries"][0].update(path="../../etc/passwd"), "outside its root"),
        (lambda m: m["entries"][0].update(digest="0" * 64), "root digest does not match"),
        (lambda m: m.pop("entries"), "malformed entries"),
    ],
)
def test_parse_manifest_rejects_tampered_documents(tmp_path, mutate, match):
    m = hashing.build_manifest(_tree(tmp_path / "art"))
    mutate(m)
    with pytest.raises(AisecInputError, match=match):
        hashing.parse_manifest(hashing.manifest_bytes(m), "test manifest")
    with pytest.raises(AisecInputError, match="invalid JSON"):
        hashing.parse_manifest(b"{", "test manifest")


def test_parallel_hashing_uses_threads_concurrently(tmp_path, monkeypatch):
    root = tmp_path / "p"
    root.mkdir()
    for i in range(4):
        (root / str(i)).write_bytes(b"x" * 10)
    active, peak, lock = [0], [0], threading.Lock()
    real = hashing.digest_file

    def tracking(*a, **k):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            import time

            time.sleep(0.05)
            return real(*a, **k)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(hashing, "digest_file", tracking)
    hashing.build_manifest(root, workers=2)
    assert peak[0] == 2  # bounded by workers, and really parallel
