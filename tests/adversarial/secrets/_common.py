"""Shared helpers of the secrets adversarial suite: generated tokens and the CLI run."""

from __future__ import annotations

import json
import string
import subprocess
import sys

from hypothesis import strategies as st

from airflow_aisec.cli import main
from airflow_aisec.report import validate
from tests.secrets_helpers import fake_tokens

LETTERS = string.ascii_letters
ALNUM = string.ascii_letters + string.digits


def _token(prefix: str, alphabet: str, n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=n, max_size=n).map(lambda s: prefix + s)


#: Vendor-format tokens every configuration of the scan must find (high severity).
TOKENS = st.one_of(
    _token("hf_", LETTERS, 34),
    _token("AKIA", string.ascii_uppercase + string.digits, 16),
    _token("sk-proj-", ALNUM, 56),
    _token("ghp_", ALNUM, 36),
).filter(lambda t: len(set(t[4:])) > 8)  # not a sequential / repeated string detect-secrets filters out


#: Fixed tokens for the non-generated cases.
FIXED = fake_tokens(20261202)


def run_cli(capsys, argv: list[str]) -> tuple[int, dict, str]:
    """``aisec`` in-process with ``--format json``: (exit code, validated report, stdout + stderr)."""
    code = main([*argv, "--format", "json"])
    out = capsys.readouterr()
    return code, validate(json.loads(out.out)), out.out + out.err


_MAIN = "import sys; from airflow_aisec.cli import main; sys.exit(main(sys.argv[1:]))"


def run_cli_subprocess(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``aisec`` in a child process (a hang becomes a TimeoutExpired, not a stuck suite)."""
    return subprocess.run(
        [sys.executable, "-c", _MAIN, *argv, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_absent(token: str, *texts: str) -> None:
    """Neither the token nor any 8-character piece of it appears in ``texts``."""
    blob = "\n".join(texts)
    assert token not in blob
    pieces = [token[i : i + 8] for i in range(len(token) - 7)]
    leaked = [p for p in pieces if p in blob]
    assert not leaked, f"pieces of the secret leaked: {leaked[:3]}"
