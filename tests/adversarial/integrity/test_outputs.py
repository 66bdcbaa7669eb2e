"""Outputs are attack surface: -o onto a directory, through a symlink or under a file writes nothing.

Artifacts respect the umask (a serving process under another uid can read a manifest); private keys
are 0600 whatever the umask.
"""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli import main
from tests.adversarial.integrity.helpers import run, tree_snapshot


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _setup(base):
    model = base / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    victim = base / "victim.txt"
    victim.write_bytes(b"do not overwrite")
    (base / "outdir").mkdir()
    (base / "plainfile").write_bytes(b"a file, not a folder")
    (base / "link").symlink_to(victim)
    (base / "dangling").symlink_to(base / "created-through-link")
    (base / "dirlink").symlink_to(base / "outdir")
    os.mkfifo(base / "fifo")
    return model


DESTS = ["outdir", "link", "dangling", "dirlink", "plainfile/m.json", "plainfile/sub/m.json", "outdir/..", "fifo"]


@settings(max_examples=len(DESTS) * 3)
@given(st.sampled_from(DESTS), st.sampled_from(["hash", "hash-signed", "provenance"]))
def test_bad_output_paths_exit_2_and_write_nothing(tmp_path_factory, capsys, dest, command):
    base = tmp_path_factory.mktemp("out")
    model = _setup(base)
    priv, pub = base / "keys" / "k.pem", base / "keys" / "k.pub"
    priv.parent.mkdir()
    assert main(["keygen", str(priv), str(pub)]) == 0
    before = tree_snapshot(base)
    target = str(base / dest)
    if command == "hash":
        argv = ["hash", str(model), "-o", target]
    elif command == "hash-signed":
        argv = ["hash", str(model), "-o", target, "--sign-key", str(priv)]
    else:
        digest = run(capsys, ["hash", str(model)])[1]["details"]["digest"]
        argv = ["provenance", str(model), "--allow-source", str(model), "--digest", digest, "-o", target]
        argv += ["--sign-key", str(priv)]
    code, report = run(capsys, argv)
    assert code == 2 and report["status"] == "error"
    assert tree_snapshot(base) == before  # nothing written, nothing replaced, no temp file left
    assert not (base / "created-through-link").exists()


def test_artifacts_respect_the_umask_and_keys_stay_private(tmp_path, capsys, umask_022):
    model = _setup(tmp_path)
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    assert main(["keygen", str(priv), str(pub)]) == 0
    manifest, statement = tmp_path / "m.json", tmp_path / "s.intoto.json"
    assert run(capsys, ["hash", str(model), "-o", str(manifest), "--sign-key", str(priv)])[0] == 0
    digest = run(capsys, ["hash", str(model)])[1]["details"]["digest"]
    argv = ["provenance", str(model), "--allow-source", str(model), "--digest", digest]
    assert run(capsys, [*argv, "-o", str(statement), "--sign-key", str(priv)])[0] == 0
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in (priv, pub, manifest, statement)}
    modes["m.json.sig"] = stat.S_IMODE(os.stat(f"{manifest}.sig").st_mode)
    modes["s.intoto.json.sig"] = stat.S_IMODE(os.stat(f"{statement}.sig").st_mode)
    assert modes == {
        "k.pem": 0o600,
        "k.pub": 0o644,
        "m.json": 0o644,
        "m.json.sig": 0o644,
        "s.intoto.json": 0o644,
        "s.intoto.json.sig": 0o644,
    }
    # keygen never replaces a key (and --force never writes through a symlink)
    assert main(["keygen", str(priv), str(tmp_path / "other.pub")]) == 2
    (tmp_path / "klink").symlink_to(priv)
    assert main(["keygen", str(tmp_path / "klink"), str(tmp_path / "x.pub"), "--force"]) == 2
    assert b"PRIVATE KEY" in priv.read_bytes()


def test_umask_077_is_honoured_too(tmp_path, capsys):
    model = _setup(tmp_path)
    old = os.umask(0o077)
    try:
        assert run(capsys, ["hash", str(model), "-o", str(tmp_path / "m.json")])[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.json").st_mode) == 0o600


def test_splits_respect_the_umask(tmp_path, umask_022):
    pd = pytest.importorskip("pandas")
    from airflow_aisec.core.split import split_dataset

    df = pd.DataFrame({"x": range(20), "y": [0, 1] * 10})
    report = split_dataset(df, output_dir=tmp_path / "splits", seed=1, stratify_column="y").to_dict()
    modes = {stat.S_IMODE(os.stat(s["path"]).st_mode) for s in report["details"]["splits"].values()}
    assert modes == {0o644}


@pytest.mark.parametrize("where", ["artifact", "inside"])
@pytest.mark.parametrize("command", ["hash-file", "hash-dir", "provenance"])
def test_output_onto_or_inside_the_artifact_is_refused(tmp_path, capsys, where, command):
    model = _setup(tmp_path)
    artifact = model / "w.bin" if command == "hash-file" else model
    target = artifact if where == "artifact" else model / "out.json"
    if command == "hash-file" and where == "inside":
        target = model / "w.bin" / ".." / "w.bin"
    before = tree_snapshot(tmp_path)
    if command == "provenance":
        digest = run(capsys, ["hash", str(model)])[1]["details"]["digest"]
        argv = ["provenance", str(model), "--allow-source", str(tmp_path), "--digest", digest, "-o", str(target)]
    else:
        argv = ["hash", str(artifact), "-o", str(target)]
    code, report = run(capsys, argv)
    assert code == 2 and "is the artifact or inside it" in report["summary"]
    assert tree_snapshot(tmp_path) == before
