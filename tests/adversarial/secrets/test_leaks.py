"""No secret value (nor any 8-character piece of one) in the report, stdout, stderr, logs or errors."""

from __future__ import annotations

import json
import logging
import os

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from airflow_aisec.core.secrets import Redactor, clean_reason, fingerprint, scan_secrets
from airflow_aisec.core.secrets import scan as core
from airflow_aisec.exceptions import AisecUndecidableError
from tests.adversarial.secrets._common import FIXED, TOKENS, assert_absent, run_cli
from tests.secrets_helpers import commit_all, git, make_repo

PLACES = [
    "file_name",
    "dir_name",
    "inline_reason",
    "inline_reason_partial",
    "commit_message",
    "branch_name",
    "symlink_target",
    "scan_path",
    "baseline_path",
    "allow_reason",
]
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def _plant(root, token: str, place: str) -> tuple[str, list[str]]:
    """Plant ``token`` at ``place`` under ``root``; returns (scan path, extra CLI arguments)."""
    other = FIXED["aws"]
    scan = root / "repo"
    if place == "scan_path":
        scan = root / f"x-{token}" / "repo"
    repo = make_repo(scan)
    extra: list[str] = []
    (repo / "app.py").write_text(f'KEY = "{other}"\n')
    if place == "file_name":
        (repo / f"{token}.txt").write_text("nothing here\n")
    elif place == "dir_name":
        (repo / f"cfg-{token}").mkdir()
        (repo / f"cfg-{token}" / "x.py").write_text(f'KEY = "{other}"\n')
    elif place == "inline_reason":
        (repo / "t.py").write_text(f'T = "{token}"  # aisec: allow-secret {token}\n')
    elif place == "inline_reason_partial":
        (repo / "t.py").write_text(f'# aisec: allow-secret rotated {token[:14]} {token[14:]}\nT = "{token}"\n')
    elif place == "symlink_target":
        os.symlink(f"../{token}", repo / "link")
    elif place == "baseline_path":
        extra = ["--baseline", str(root / f"{token}.baseline")]
    elif place == "allow_reason":
        extra = ["--allow", f"{fingerprint(other)}=reason {token} and {token[:10]} {token[10:]}"]
    commit_all(repo, f"message {token}" if place == "commit_message" else "init")
    if place == "branch_name":
        git(repo, "branch", f"b-{token}")
    return str(repo), extra


@settings(max_examples=40, phases=NO_SHRINK)
@given(token=TOKENS, place=st.sampled_from(PLACES), fmt=st.sampled_from(["json", "text"]), history=st.booleans())
def test_planted_values_never_reach_any_output(tmp_path_factory, capsys, caplog, token, place, fmt, history):
    caplog.set_level(logging.DEBUG)
    root = tmp_path_factory.mktemp("leak")
    path, extra = _plant(root, token, place)
    from airflow_aisec.cli import main

    argv = ["secrets", path, *extra, "--format", fmt] + (["--history"] if history else [])
    code = main(argv)
    out = capsys.readouterr()
    # another token is always in the tree, except when the allow entry suppresses it; no baseline → error
    expected = {"baseline_path": ("error", 2), "allow_reason": ("pass", 0)}.get(place, ("fail", 1))
    assert code == expected[1]
    if fmt == "json":
        assert json.loads(out.out)["status"] == expected[0]
    assert_absent(token, out.out, out.err, caplog.text)


@pytest.mark.parametrize("place", ["core", "git"])
def test_an_unexpected_exception_carrying_a_value_is_redacted(tmp_path, capsys, monkeypatch, place):
    token = FIXED["hf"]
    repo = make_repo(tmp_path / "repo")
    (repo / "a.py").write_text(f'T = "{token}"\n')
    commit_all(repo, "x")

    def boom(*args, **kwargs):
        raise ValueError(f"cannot parse line T = {token!r}")

    monkeypatch.setattr(core, "scan_tree" if place == "core" else "scan_history", boom)
    with pytest.raises(AisecUndecidableError, match=r"ValueError: cannot parse line T = '\[REDACTED\]'") as info:
        scan_secrets(repo, history=True)
    assert info.value.__suppress_context__
    code, data, text = run_cli(capsys, ["secrets", str(repo), "--history"])
    assert code == 2 and data["status"] == "error"
    assert_absent(token, text)


@settings(max_examples=100)
@given(token=TOKENS, reason=st.text(max_size=120))
def test_reasons_cannot_carry_a_token(token, reason):
    cleaned = clean_reason(f"{reason} {token} {reason}")
    assert token not in cleaned and len(cleaned) <= 80
    assert all(len(word) <= 16 for word in cleaned.split())


@settings(max_examples=200)
@given(
    value=st.text(min_size=8, max_size=60),
    left=st.text(max_size=30),
    right=st.text(max_size=30),
    cut=st.integers(0, 52),
)
def test_redactor_removes_every_8_character_piece(value, left, right, cut):
    redactor = Redactor()
    redactor.add(value)
    piece = value[cut : cut + 8] if cut + 8 <= len(value) else value
    for text in (left + value + right, left + piece + right, value + value, piece.join([left, right])):
        scrubbed = redactor.scrub(text)
        assert not redactor.leaks(scrubbed)
        assert value not in scrubbed


def test_detect_secrets_debug_logging_is_silenced(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("detect-secrets").setLevel(logging.DEBUG)
    (tmp_path / "a.py").write_text(f'password = "{FIXED["openai"]}"\n')
    report = scan_secrets(tmp_path)
    assert report.status == "fail"
    assert_absent(FIXED["openai"], caplog.text, json.dumps(report.to_dict()))
    assert logging.getLogger("detect-secrets").level == logging.DEBUG  # restored afterwards


@settings(max_examples=25)
@given(token=TOKENS)
def test_operator_subject_never_carries_a_value(token):
    from airflow_aisec.operators.secrets import SecretsScanOperator

    op = SecretsScanOperator(task_id="scan", path=f"/data/{token}/repo")
    assert_absent(token, op.describe_subject())
    with pytest.raises(ValueError, match="unscanned must be"):
        SecretsScanOperator(task_id="scan", path="/x", unscanned="ignore")


@settings(max_examples=20, phases=NO_SHRINK)
@given(token=TOKENS, content=st.sampled_from([b"", b"x = 1\n"]))
def test_a_token_in_a_file_name_is_found_even_when_the_content_is_shared(tmp_path_factory, token, content):
    from tests.secrets_helpers import History

    h = History()
    a = h.commit(b"refs/heads/main", b"init", {b"empty.txt": content})
    b = h.commit(b"refs/heads/main", b"add", {f"{token}.txt".encode(): content}, parents=(a,))
    h.commit(b"refs/heads/main", b"rm", deletes=(f"{token}.txt".encode(),), parents=(b,))
    repo = h.write(tmp_path_factory.mktemp("names") / "repo")
    git(repo, "checkout", "-q", "main")
    report = scan_secrets(repo, history=True)
    assert report.status == "fail"
    assert [f.details["where"] for f in report.findings] == ["name"]
    assert report.findings[0].details["commit"] == History.marks(repo)[b]
    assert_absent(token, json.dumps(report.to_dict()))


@pytest.mark.parametrize(
    "marker_line",
    [
        'url = "https://REDACTED:REDACTED@www.example.com/"',  # documentation of redaction does this
        'password = "[REDACTED]"',
        'secret = "REDACTED"',
        'api_key = "xx[REDACTED]yy"',
    ],
)
def test_a_value_made_of_the_redaction_marker_does_not_block_the_report(tmp_path, capsys, marker_line):
    """A scanned value containing the marker once made every report unsealable (exit 2 on any tree that
    documents redaction). The report is emitted, the real token beside it is still found and redacted."""
    token = FIXED["aws"]
    (tmp_path / "doc.py").write_text(f"{marker_line}\n")
    (tmp_path / "app.py").write_text(f'KEY = "{token}"\n')
    (tmp_path / f"{FIXED['openai']}.txt").write_text("x\n")  # a location that must be redacted
    code, data, out = run_cli(capsys, ["secrets", str(tmp_path)])
    assert code == 1, data["summary"]
    assert data["status"] == "fail"
    assert any(f["details"].get("type") == "AWS Access Key" for f in data["findings"]), data["findings"]
    assert_absent(token, out)
    assert_absent(FIXED["openai"], out)


@given(value=st.text(alphabet="[]REDACTxyz:", min_size=6, max_size=30))
def test_the_marker_never_leaks_itself(value):
    r = Redactor()
    r.add(value)
    assert not r.leaks("[REDACTED]")
    scrubbed = r.scrub(f"a {value} b")
    assert not r.leaks(scrubbed)
