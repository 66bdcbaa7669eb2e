"""Blind spots: encodings, binaries, compressed / large / special files, exclusions — nothing dropped silently."""

from __future__ import annotations

import gzip
import json
import os
import socket
import stat
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.secrets import decode, scan_secrets
from tests.adversarial.secrets._common import FIXED, TOKENS, run_cli, run_cli_subprocess

ENCODINGS = [
    "utf-8",
    "utf-8-sig",
    "utf-16",  # with BOM
    "utf-16-le",  # no BOM
    "utf-16-be",
    "utf-32",
    "utf-32-le",
    "utf-32-be",
    "latin-1",
    "cp1252",
]
#: Text around the token, with non-ASCII characters every encoding above can carry.
FILLER = st.text(alphabet=st.sampled_from("abc xyz=:\"'\t\néèüß°£"), max_size=60)


@settings(max_examples=60)
@given(token=TOKENS, encoding=st.sampled_from(ENCODINGS), before=FILLER, after=FILLER)
def test_token_found_in_any_text_encoding(tmp_path_factory, token, encoding, before, after):
    root = tmp_path_factory.mktemp("enc")
    (root / "settings.cfg").write_bytes(f'{before}\nKEY = "{token}"\n{after}'.encode(encoding))
    report = scan_secrets(root)
    assert report.status == "fail", (encoding, report.summary)
    assert [f.details["file"] for f in report.findings if f.severity == "high"] == ["settings.cfg"]
    assert report.metrics["unscanned"] == 0


@settings(max_examples=40)
@given(
    token=TOKENS,
    junk=st.binary(min_size=1, max_size=400),
    tail=st.binary(max_size=200),
    wide=st.sampled_from(["ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]),
    shift=st.integers(min_value=0, max_value=3),
)
def test_token_inside_binary_data_is_found(tmp_path_factory, token, junk, tail, wide, shift):
    root = tmp_path_factory.mktemp("bin")
    data = b"\x00" * shift + token.encode(wide) + b"\x00" + tail
    (root / "weights.bin").write_bytes(b"\x00" + junk + b"\x00" + data)
    (root / "wide.txt").write_bytes(b"\x01" * shift + f"KEY={token}\n".encode(wide) * 3)  # misaligned text
    report = scan_secrets(root)
    assert report.status == "fail", report.summary
    assert {f.details["file"] for f in report.findings} == {"weights.bin", "wide.txt"}


def test_utf8_file_with_invalid_bytes_and_a_utf16_tail_is_scanned_both_ways(tmp_path):
    token_a, token_b = FIXED["hf"], FIXED["aws"]
    data = b"caf\xe9 \xff\xfe broken utf-8\n" + f'a = "{token_a}"\n'.encode() + f'b = "{token_b}"\n'.encode("utf-16-le")
    (tmp_path / "mixed.txt").write_bytes(data)
    report = scan_secrets(tmp_path)
    assert len({f.details["fingerprint"] for f in report.findings}) >= 2


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_decode_recognises_bomless_wide_text(encoding):
    text, how = decode("plain ascii config = 1\n".encode(encoding))
    assert how == encoding and "config = 1" in text


def _gzip(token: str) -> bytes:
    return gzip.compress(f"KEY={token}\n".encode())


def _zip(tmp_path, token: str) -> bytes:
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("creds.env", f"KEY={token}\n")
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["gzip", "zip"])
def test_compressed_files_are_counted_and_fail_closed(tmp_path, capsys, kind):
    token = FIXED["openai"]
    blob = _gzip(token) if kind == "gzip" else _zip(tmp_path, token)
    root = tmp_path / "tree"
    root.mkdir()
    (root / "archive.dat").write_bytes(blob)  # the name says nothing: the bytes decide
    code, data, _ = run_cli(capsys, ["secrets", str(root)])
    assert code == 2 and data["status"] == "error"
    assert data["metrics"]["files_skipped_compressed"] == 1
    assert data["details"]["unscanned"] == [
        {"location": "archive.dat", "reason": f"compressed ({kind}): content not inspected", "scope": "tree"}
    ]
    code, data, _ = run_cli(capsys, ["secrets", str(root), "--unscanned", "warn"])
    assert code == 0 and data["status"] == "warn" and "NOT scanned" in data["summary"]


@settings(max_examples=25)
@given(limit=st.integers(min_value=16, max_value=4096), extra=st.integers(min_value=1, max_value=64))
def test_large_files_are_counted_and_fail_closed(tmp_path_factory, limit, extra):
    root = tmp_path_factory.mktemp("large")
    (root / "big.txt").write_bytes(b"a" * (limit + extra))
    (root / "fits.txt").write_bytes(b"b" * limit)
    report = scan_secrets(root, max_file_bytes=limit)
    assert report.status == "error"
    assert report.metrics["files_skipped_large"] == 1 and report.metrics["files_scanned"] == 1
    assert [u["location"] for u in report.details["unscanned"]] == ["big.txt"]
    assert scan_secrets(root, max_file_bytes=limit, unscanned="warn").status == "warn"


def _special_files(root):
    os.mkfifo(root / "pipe")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(root / "sock"))
    made = {"pipe": "FIFO", "sock": "socket"}
    try:
        os.mknod(root / "tty", stat.S_IFCHR | 0o600, os.makedev(5, 0))  # /dev/tty: reading would block
        made["tty"] = "character device"
    except (PermissionError, OSError):
        pass
    return sock, made


def test_special_files_never_hang_and_are_reported(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    (root / "ok.py").write_text("x = 1\n")
    sock, made = _special_files(root)
    try:
        proc = run_cli_subprocess(["secrets", str(root)], timeout=120)  # a hang fails here
        data = json.loads(proc.stdout)
        assert proc.returncode == 2 and data["status"] == "error"
        assert data["metrics"]["files_skipped_special"] == len(made)
        reasons = {u["location"]: u["reason"] for u in data["details"]["unscanned"]}
        assert reasons == {name: f"{kind}: never opened for reading" for name, kind in made.items()}
        proc = run_cli_subprocess(["secrets", str(root / "pipe")], timeout=60)  # the FIFO as the scan root
        assert proc.returncode == 2 and json.loads(proc.stdout)["metrics"]["files_skipped_special"] == 1
        proc = run_cli_subprocess(["secrets", str(root), "--unscanned", "warn"], timeout=120)
        assert proc.returncode == 0 and json.loads(proc.stdout)["status"] == "warn"
    finally:
        sock.close()


def test_fifo_as_baseline_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "baseline.json")
    (tmp_path / "tree").mkdir()
    proc = run_cli_subprocess(["secrets", str(tmp_path / "tree"), "--baseline", str(tmp_path / "baseline.json")], 60)
    assert proc.returncode == 2 and "is not a regular file" in json.loads(proc.stdout)["summary"]


@settings(max_examples=25)
@given(token=TOKENS, excluded=st.sampled_from(["node_modules", ".venv", "__pycache__", "vendor"]))
def test_excluded_directories_are_counted_and_listed(tmp_path_factory, token, excluded):
    root = tmp_path_factory.mktemp("excl")
    (root / "pkg" / excluded).mkdir(parents=True)
    (root / "pkg" / excluded / "creds.py").write_text(f'K = "{token}"\n')
    dirs = ("node_modules", ".venv", "__pycache__", "vendor")
    report = scan_secrets(root, exclude_dirs=dirs)
    assert report.status == "pass"
    assert report.metrics["dirs_excluded"] == 1
    assert report.details["excluded_dirs"] == [f"pkg/{excluded}"]
    assert "1 excluded dir(s)" in report.summary
    assert scan_secrets(root, exclude_dirs=()).status == "fail"


def test_symlinks_are_not_followed_but_counted_and_their_targets_scanned(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    token = FIXED["openai"]
    (outside / "creds.env").write_text(f"K={token}\n")
    root = tmp_path / "tree"
    root.mkdir()
    (root / "link").symlink_to(outside / "creds.env")
    report = scan_secrets(root)
    assert report.status == "pass" and report.metrics["symlinks_not_followed"] == 1
    (root / "named").symlink_to(f"/nonexistent/{token}")  # a token in a link target is a token in the repo
    report = scan_secrets(root)
    assert report.status == "fail" and report.findings[0].title.endswith("in a file name")


#: Lines where detect-secrets' heuristic filters drop a match (indirect reference, template, `$`, id …).
FILTER_BAIT = [
    'secret = get("{t}")',
    'password = request.headers["{t}"]',
    'user_id = "{t}"',
    "x = ${t}",
    'x = "${{{t}}}"',
    'x = "{{{{{t}}}}}"',
    "token: <{t}>",
    'api_key = os.getenv("X", "{t}")',
]


@settings(max_examples=60)
@given(
    token=TOKENS, bait=st.sampled_from(FILTER_BAIT), ext=st.sampled_from(["py", "yaml", "json", "env", "lock", "md"])
)
def test_heuristic_filters_never_hide_a_vendor_token(tmp_path_factory, token, bait, ext):
    root = tmp_path_factory.mktemp("bait")
    (root / f"package-lock.{ext}").write_text(bait.format(t=token) + "\n")
    report = scan_secrets(root)
    assert report.status == "fail", (bait, ext)
    assert any(f.severity == "high" for f in report.findings)


def test_detect_secrets_pragma_is_a_listed_suppression_not_a_silent_drop(tmp_path):
    (tmp_path / "a.py").write_text(
        f'T = "{FIXED["hf"]}"  # pragma: allowlist secret\n# pragma: allowlist nextline secret\nU = "{FIXED["aws"]}"\n'
    )
    report = scan_secrets(tmp_path)
    assert report.status == "pass" and report.metrics["suppressed"] == 2
    assert [s["location"] for s in report.details["suppressed"]] == ["a.py:1", "a.py:3"]


@settings(max_examples=30)
@given(token=TOKENS, offset=st.integers(min_value=0, max_value=3 * 16384), filler=st.sampled_from(["x", " ", "ab "]))
def test_token_anywhere_in_a_very_long_line_is_found(tmp_path_factory, token, offset, filler):
    root = tmp_path_factory.mktemp("long")
    pad = (filler * (offset // len(filler) + 1))[:offset]
    (root / "min.js").write_text(pad + " " + token + " " + filler * 20000 + "\n")
    report = scan_secrets(root)
    assert report.status == "fail" and any(f.severity == "high" for f in report.findings)


def test_findings_beyond_the_listing_cap_are_counted_and_still_decide(tmp_path):
    from airflow_aisec.core.secrets import MAX_FINDINGS

    lines = [f'k{i} = "{"abcdefghij"[i % 10]}{i:05d}ZzQ9xW3vT7pL0sN4mB8cR2yH6"' for i in range(MAX_FINDINGS + 50)]
    (tmp_path / "a.py").write_text("\n".join(lines) + f'\nT = "{FIXED["hf"]}"\n')
    report = scan_secrets(tmp_path, fail_on="high")
    assert report.metrics["secrets_found"] > MAX_FINDINGS == len(report.findings)
    assert report.metrics["findings_not_listed"] == report.metrics["secrets_found"] - MAX_FINDINGS
    assert report.status == "fail"  # the one vendor token, last in the file, is not listed but decides


def test_a_token_in_the_repositorys_own_git_config_is_found(tmp_path):
    from tests.secrets_helpers import git, make_repo

    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", f"https://bot:ghp_{FIXED['openai'][8:44]}@github.com/org/repo.git")
    report = scan_secrets(repo)
    assert report.status == "fail" and [f.details["file"] for f in report.findings] == [".git/config"]


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=200).map(lambda b: b.replace(b"\x01", b"\n")), runs=st.integers(0, 5))
def test_binary_runs_keep_their_line_numbers(data, runs):
    from airflow_aisec.core.secrets.reader import strings_runs

    data = data + b"\x00\nHELLOWORLD\x00" * runs
    texts, numbers = strings_runs(data)
    assert len(texts) == len(numbers)
    # every run's line is the number of newlines before it + 1 (checked against a direct count)
    import re

    from airflow_aisec.core.secrets.reader import _RUNS

    expected = [data.count(b"\n", 0, m.start()) + 1 for pattern in _RUNS for m in re.finditer(pattern, data)]
    assert numbers == expected


def test_many_printable_runs_in_a_binary_are_linear(tmp_path):
    """A binary of many short runs: each run's line number was counted from byte 0 (quadratic, minutes)."""
    import time

    from airflow_aisec.core.secrets.reader import strings_runs

    data = b"ABCDEF\x00" * (768 * 1024 // 7)
    start = time.monotonic()
    texts, numbers = strings_runs(data)
    assert len(texts) == len(data) // 7 and set(numbers) == {1}
    assert time.monotonic() - start < 5


@settings(max_examples=20, deadline=None)
@given(
    token=TOKENS, bom=st.sampled_from([b"\xff\xfe", b"\xfe\xff"]), prefix=st.sampled_from([b"", b"# x\n", b"export "])
)
def test_a_utf16_bom_before_ascii_text_cannot_hide_a_token(tmp_path_factory, token, bom, prefix):
    """bash sources ``\\xff\\xfe…\\nexport HF_TOKEN=…``; read as UTF-16 it was garbage and passed."""
    root = tmp_path_factory.mktemp("bom")
    (root / ".env").write_bytes(bom + prefix + b"HF_TOKEN=" + token.encode() + b"\n")
    report = scan_secrets(root)
    assert report.status == "fail", report.summary
    assert {f.details["file"] for f in report.findings} == {".env"}
