"""Outputs are attack surface: every file aisec writes goes through ``utils/fs`` and is refused when unsafe."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli import main
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_destination_directory_symlink_fifo_and_file_parent_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (tmp_path / "link").symlink_to(outside)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_text("x")
    before = _listing(tmp_path)
    cases = {
        "dir": "is a directory",
        "link": "is a symlink",
        "dangling": "is a symlink",
        "fifo": "special file",
        "file/child.json": "not a directory",
        "file/deeper/child.json": "not a directory",
    }
    for name, message in cases.items():
        with pytest.raises(AisecInputError, match=message):
            write_bytes_atomic(tmp_path / name, b"data")
    assert _listing(tmp_path) == before
    assert outside.read_text() == "keep"
    assert not (tmp_path / "nowhere").exists()


def test_exclusive_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    target.write_bytes(b"old")
    with pytest.raises(AisecInputError, match="already exists"):
        write_bytes_atomic(target, b"new", exclusive=True)
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["key.pem"]


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_artifacts_respect_the_umask_and_keys_stay_private(tmp_path: Path, umask: int, expected: int) -> None:
    old = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "manifest.json", {"a": 1})
        write_bytes_atomic(tmp_path / "private.pem", b"k", private=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "manifest.json").st_mode) == expected
    assert stat.S_IMODE(os.stat(tmp_path / "private.pem").st_mode) == 0o600


def test_keygen_refuses_existing_keys_and_symlinks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    assert main(["keygen", str(priv), str(pub)]) == 0
    old = priv.read_bytes(), pub.read_bytes()
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    assert main(["keygen", str(priv), str(tmp_path / "other.pub")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (priv.read_bytes(), pub.read_bytes()) == old
    assert not (tmp_path / "other.pub").exists()
    (tmp_path / "evil.pem").symlink_to(tmp_path / "elsewhere.pem")
    assert main(["keygen", str(tmp_path / "evil.pem"), str(tmp_path / "evil.pub")]) == 2
    assert not (tmp_path / "elsewhere.pem").exists() and not (tmp_path / "evil.pub").exists()
    assert main(["keygen", str(priv), str(priv)]) == 2
    assert main(["keygen", "--force", str(priv), str(pub)]) == 0
    assert (priv.read_bytes(), pub.read_bytes()) != old


NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")


@settings(max_examples=200)
@given(name=st.text(NAME_CHARS, min_size=1, max_size=40))
def test_hostile_file_names_cannot_forge_output_lines(
    tmp_path_factory: pytest.TempPathFactory, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if name in (".", ".."):
        return
    target = tmp_path_factory.mktemp("names") / name
    try:
        target.write_bytes(b"\x80\x04K\x01.")
    except OSError:  # name too long for the file system in bytes
        return
    capsys.readouterr()
    rc = main(["verify", str(target), "--digest", "0" * 64])  # 2: names the integrity check refuses (backslash)
    lines = capsys.readouterr().out.splitlines()
    assert (rc, lines[0].split(" ")[0]) in ((1, "[FAIL]"), (2, "[ERROR]")), lines
    assert not any(line.startswith("[") for line in lines[1:]), lines
    assert all(ch.isprintable() for line in lines for ch in line), lines


@pytest.mark.parametrize("name", ["caf\u00e9 \u2603.pkl", "\u202egnp.pkl", "tab\there.pkl", "\x1b[31mred.pkl"])
def test_a_non_utf8_console_gets_escaped_text_not_a_traceback(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    target.write_bytes(b"\x80\x04K\x01.")
    out = subprocess.run(
        [sys.executable, "-m", "airflow_aisec.cli", "verify", str(target), "--digest", "0" * 64],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"},
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    lines = out.stdout.decode("ascii").splitlines()  # every byte is ASCII: the console cannot choke on it
    assert lines[0].startswith("[FAIL] integrity")
    assert b"Traceback" not in out.stderr
