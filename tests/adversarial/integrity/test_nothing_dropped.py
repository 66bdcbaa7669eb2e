"""Nothing dropped silently: special files, unreadable files, link loops, hostile manifest entries and JSON."""

from __future__ import annotations

import json
import os
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import hashing
from tests.adversarial.integrity.helpers import finding_ids, no_hang, run


@pytest.fixture
def model(tmp_path):
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "w.bin").write_bytes(b"weights")
    (root / "sub" / "c.json").write_bytes(b"{}")
    return root


def _make_special(path, kind):
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    else:
        import stat

        try:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
        except PermissionError:
            pytest.skip("mknod not permitted here")


@settings(max_examples=30)
@given(st.sampled_from(["fifo", "socket", "char-device"]), st.sampled_from(["", "sub/"]), st.text("abc", min_size=1))
def test_special_files_fail_and_are_never_opened(tmp_path_factory, capsys, kind, where, name):
    base = tmp_path_factory.mktemp("sp")
    root = base / "model"
    (root / "sub").mkdir(parents=True)
    (root / "w.bin").write_bytes(b"weights")
    manifest = base / "m.json"
    assert run(capsys, ["hash", str(root), "-o", str(manifest)])[0] == 0
    digest = json.loads(manifest.read_text())["root_digest"]
    _make_special(root / f"{where}{name}", kind)
    with no_hang():
        code, report = run(capsys, ["hash", str(root), "-o", str(base / "m2.json")])
        assert code == 2 and report["status"] == "error" and "special file" in report["summary"]
        assert not (base / "m2.json").exists()
        code, report = run(capsys, ["verify", str(root), "--manifest", str(manifest)])
        assert code == 1 and "AISEC-INT-SPECIAL" in finding_ids(report)
        assert report["metrics"]["special"] == 1
        code, report = run(capsys, ["verify", str(root), "--digest", digest])
        assert code == 1 and "AISEC-INT-SPECIAL" in finding_ids(report)


def test_a_fifo_given_as_the_artifact_or_the_evidence_never_blocks(tmp_path, capsys, model):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(model), "-o", str(manifest)])[0] == 0
    with no_hang():
        assert run(capsys, ["hash", str(fifo)])[0] == 2
        assert run(capsys, ["verify", str(fifo), "--digest", "0" * 64])[0] == 2
        assert run(capsys, ["verify", str(model), "--manifest", str(fifo)])[0] == 2
        code, _ = run(capsys, ["verify", str(model), "--manifest", str(manifest), "--public-key", str(fifo)])
        assert code == 2
        # a FIFO swapped in after the walk: digest_file refuses it without opening it for reading
        with pytest.raises(hashing.AisecUndecidableError, match="not a regular file"):
            hashing.digest_file(fifo)


def test_unreadable_file_fails_closed(tmp_path, capsys, model, monkeypatch):
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(model), "-o", str(manifest)])[0] == 0
    digest = json.loads(manifest.read_text())["root_digest"]
    target, real_open = str(model / "w.bin"), os.open

    def guarded(path, *a, **k):  # tests run as root, which reads everything: inject EACCES
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", guarded)
    code, report = run(capsys, ["verify", str(model), "--manifest", str(manifest)])
    assert code == 2 and report["status"] == "error" and "AISEC-INT-UNREADABLE" in finding_ids(report)
    assert run(capsys, ["verify", str(model), "--digest", digest])[0] == 2
    assert run(capsys, ["hash", str(model)])[0] == 2


def test_link_loops_and_dangling_links_with_follow_symlinks(tmp_path, capsys, model):
    (model / "sub" / "loop").symlink_to("..")
    with no_hang():
        code, report = run(capsys, ["hash", str(model), "--follow-symlinks"])
    assert code == 2 and "loops" in report["summary"]
    (model / "sub" / "loop").unlink()
    (model / "dangling").symlink_to("nowhere")
    code, report = run(capsys, ["hash", str(model), "--follow-symlinks"])
    assert code == 2 and "dangling" in report["summary"]
    assert run(capsys, ["hash", str(model)])[0] == 0  # recorded (not followed) by default


def test_deep_trees_do_not_recurse(tmp_path, capsys):
    root = tmp_path / "deep"
    p = str(root)
    os.mkdir(p)
    for _ in range(1500):  # iteratively: pathlib's mkdir(parents=True) itself recurses
        p += "/d"
        os.mkdir(p)
    with open(p + "/f", "wb") as fh:
        fh.write(b"x")
    try:
        code, report = run(capsys, ["hash", str(root)])
        assert code == 0 and report["metrics"]["files"] == 1
    finally:  # remove it iteratively too (shutil.rmtree recurses)
        os.unlink(p + "/f")
        while p != str(root):
            os.rmdir(p)
            p = os.path.dirname(p)


def test_non_utf8_and_backslash_names_cannot_be_recorded(tmp_path, capsys, model):
    (model / "a\\b").write_bytes(b"x")
    code, report = run(capsys, ["hash", str(model)])
    assert code == 2 and "backslash" in report["summary"]
    (model / "a\\b").unlink()
    (tmp_path / "model").joinpath(os.fsdecode(b"bad-\xff")).write_bytes(b"x")
    code, report = run(capsys, ["hash", str(model)])
    assert code == 2 and "not UTF-8" in report["summary"]


BAD_PATHS = st.one_of(
    st.sampled_from(
        ["../x", "a/../../x", "/etc/passwd", "a\\b", "a\x00b", "a//b", "./a", "a/", "", ".", "C:/x", "\ud800"]
    ),
    st.builds(lambda n: f"../{n}", st.text("ab", min_size=1, max_size=4)),
    st.builds(lambda n: f"/{n}", st.text("ab", min_size=1, max_size=4)),
    st.builds(lambda a, b: f"{a}\\{b}", st.text("ab", max_size=3), st.text("ab", max_size=3)),
)


@settings(max_examples=60)
@given(BAD_PATHS, st.sampled_from(["entry", "directory", "v1"]))
def test_manifest_entries_outside_the_root_are_errors(tmp_path_factory, capsys, bad, where):
    base = tmp_path_factory.mktemp("bad")
    root = base / "model"
    root.mkdir()
    (root / "w.bin").write_bytes(b"weights")
    m = hashing.build_manifest(root)
    if where == "entry":
        m["entries"].append({"path": bad, "type": "file", "size": 0, "digest": m["entries"][0]["digest"]})
    elif where == "directory":
        m["directories"].append(bad)
    else:
        m["schema"] = "aisec.manifest/v1"
        m.pop("directories")
        for e in m["entries"]:
            e.pop("type")
        m["entries"].append({"path": bad, "size": 0, "digest": m["entries"][0]["digest"]})
    m["file_count"], m["total_bytes"] = len(m["entries"]), sum(e["size"] for e in m["entries"])
    try:  # make the document self-consistent, so only the path check can refuse it
        if where == "v1":
            m["root_digest"] = hashing.root_digest(m["entries"], "sha256", version=1)
        else:
            m["root_digest"] = hashing.root_digest(m["entries"], "sha256", directories=m["directories"])
    except UnicodeEncodeError:
        pass
    path = base / "m.json"
    path.write_text(json.dumps(m), encoding="utf-8", errors="surrogatepass")
    code, report = run(capsys, ["verify", str(root), "--manifest", str(path)])
    assert code == 2 and report["status"] == "error"


def test_v1_newline_entry_is_refused(tmp_path, capsys, model):
    m = hashing.build_manifest(model)
    v1 = {"schema": "aisec.manifest/v1", "algorithm": "sha256"}
    v1["entries"] = [{"path": "w.bin\nx", "size": 1, "digest": "0" * 64}]
    v1["root_digest"] = hashing.root_digest(v1["entries"], "sha256", version=1)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(v1))
    code, report = run(capsys, ["verify", str(model), "--manifest", str(path)])
    assert code == 2 and "line break" in report["summary"]
    assert m  # the v2 manifest of the same tree is fine
    path.write_text(json.dumps(m))
    assert run(capsys, ["verify", str(model), "--manifest", str(path)])[0] == 0


HOSTILE_JSON = [
    # duplicate key: a second "entries" the lenient parser would have kept
    lambda text, m: text.replace('"entries": [', '"entries": [], "entries": [', 1),
    lambda text, m: text.replace(f'"size": {m["entries"][0]["size"]}', '"size": NaN', 1),
    lambda text, m: text.replace(f'"size": {m["entries"][0]["size"]}', '"size": ' + "9" * 400, 1),
    lambda text, m: text.replace(f'"size": {m["entries"][0]["size"]}', '"size": "7"', 1),
    lambda text, m: text.replace(f'"size": {m["entries"][0]["size"]}', '"size": true', 1),
    lambda text, m: text.replace(f'"size": {m["entries"][0]["size"]}', '"size": -1', 1),
    lambda text, m: text.replace(f'"size": {m["entries"][0]["size"]}', '"size": 1e400', 1),
    lambda text, m: text.replace('"type": "file"', '"type": "fifo"', 1),
    lambda text, m: text.replace('"type": "file"', '"type": "file", "mode": 1', 1),
    lambda text, m: text.replace('"kind": "directory"', '"kind": "both"', 1),
    lambda text, m: text.replace('"algorithm": "sha256"', '"algorithm": "md5"', 1),
    lambda text, m: text.replace('"file_count": 2', '"file_count": 1', 1),
    lambda text, m: "[" * 100 + "]" * 100,
    lambda text, m: "\ufeff" + text,
    lambda text, m: text.replace('"directories": [', '"directories": ["sub", ', 1),
    lambda text, m: text.replace('"path": "w.bin"', '"path": "sub/c.json"', 1),
    # an unknown top-level field (v2 is exactly what `aisec hash` writes)
    lambda text, m: text.replace('"kind": "directory"', '"kind": "directory", "follow_symlinks": true', 1),
]


@pytest.mark.parametrize("mutate", HOSTILE_JSON)
def test_hostile_manifest_json_is_an_error(tmp_path, capsys, model, mutate):
    path = tmp_path / "m.json"
    assert run(capsys, ["hash", str(model), "-o", str(path)])[0] == 0
    text = path.read_text()
    hostile = mutate(text, json.loads(text))
    assert hostile != text
    path.write_text(hostile)
    code, report = run(capsys, ["verify", str(model), "--manifest", str(path)])
    assert code == 2 and report["status"] == "error"


@pytest.mark.parametrize("bad", ["a" * 256, "/".join(["d"] * 3000), "x/" + "y" * 5000])
def test_absurdly_long_manifest_paths_are_errors(tmp_path, capsys, model, bad):
    m = hashing.build_manifest(model)
    m["entries"].append({"path": bad, "type": "file", "size": 0, "digest": m["entries"][0]["digest"]})
    m["file_count"] = len(m["entries"])
    path = tmp_path / "m.json"
    path.write_text(json.dumps(m))
    code, report = run(capsys, ["verify", str(model), "--manifest", str(path)])
    assert code == 2 and "longer than a file system allows" in report["summary"]


def test_follow_symlinks_on_a_symlinked_single_file(tmp_path, capsys, model):
    link = tmp_path / "alias.bin"
    link.symlink_to(model / "w.bin")
    assert run(capsys, ["hash", str(link)])[0] == 2  # a symlinked root is refused unless followed
    code, report = run(capsys, ["hash", str(link), "--follow-symlinks"])
    assert code == 0 and report["details"]["kind"] == "file"


def test_directory_swapped_for_a_symlink_mid_walk_is_detected(tmp_path, capsys, model, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "c.json").write_bytes(b"{}")  # same name and content as model/sub/c.json
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(model), "-o", str(manifest)])[0] == 0
    real_scandir, sub = os.scandir, str(model / "sub")

    def swapping(path):
        if os.fspath(path) == sub and not os.path.islink(sub):
            os.rename(sub, sub + ".orig")
            os.symlink(outside, sub)  # scandir(path) would now list the outside folder
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", swapping)
    code, report = run(capsys, ["verify", str(model), "--manifest", str(manifest)])
    assert code == 2 and "changed while it was being walked" in report["summary"]


@pytest.mark.parametrize("mode", ["verify", "hash"])
def test_directory_swapped_for_a_symlink_after_the_walk_before_its_files_are_read(
    tmp_path, capsys, model, monkeypatch, mode
):
    # files are opened by path after the walk; O_NOFOLLOW guards only the last component, so a parent
    # swapped for a link in between would be read through the link (outside content, a symlink in the tree)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "c.json").write_bytes(b"{}")  # same name and content as model/sub/c.json
    manifest = tmp_path / "m.json"
    assert run(capsys, ["hash", str(model), "-o", str(manifest)])[0] == 0
    real_digest, sub = hashing.digest_file, str(model / "sub")
    seen: list[str] = []

    def swapping(path, *args, **kwargs):
        if not os.path.islink(sub):
            os.rename(sub, sub + ".orig")
            os.symlink(outside, sub)
        seen.append(os.fspath(path))
        return real_digest(path, *args, **kwargs)

    monkeypatch.setattr(hashing, "digest_file", swapping)
    argv = ["verify", str(model), "--manifest", str(manifest)] if mode == "verify" else ["hash", str(model)]
    code, report = run(capsys, [*argv, "--workers", "1"])
    assert seen and code == 2 and "changed while it was being hashed" in report["summary"]
