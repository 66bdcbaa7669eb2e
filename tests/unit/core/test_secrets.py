"""Secrets scan: tree vs git history, detectors, suppression, skips — and the value never leaks."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_aisec.core.secrets import fingerprint, scan_secrets
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import validate
from tests.secrets_helpers import commit_all, fake_tokens, make_repo, repo_with_deleted_secret

TOKENS = fake_tokens()


def assert_no_secret(text: str) -> None:
    for name, value in TOKENS.items():
        assert value not in text, f"the {name} token leaked"


def test_deleted_secret_is_found_in_history_not_in_tree(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    repo, leaked_commit = repo_with_deleted_secret(tmp_path / "repo", TOKENS["hf"])
    tree = validate(scan_secrets(repo).to_dict())
    assert tree["status"] == "pass"
    assert tree["findings"] == []
    hist = validate(scan_secrets(repo, history=True).to_dict())
    assert hist["status"] == "fail"
    (finding,) = hist["findings"]
    assert finding["id"] == "AISEC-SECRET-HUGGING-FACE-TOKEN"
    assert finding["severity"] == "high"
    assert finding["location"] == f"{leaked_commit[:12]}:config.py:2"
    assert finding["details"]["commit"] == leaked_commit
    assert finding["details"]["scope"] == "history"
    assert finding["details"]["fingerprint"] == fingerprint(TOKENS["hf"])
    assert hist["metrics"]["commits_scanned"] == 3
    assert hist["metrics"]["history_only_findings"] == 1
    assert "AML.T0055" in hist["tags"]
    assert_no_secret(json.dumps(tree) + json.dumps(hist))
    assert_no_secret(caplog.text)


def test_secret_still_in_tree_is_reported_once_with_its_commit(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "app.py").write_text(f'OPENAI_API_KEY = "{TOKENS["openai"]}"\n')
    sha = commit_all(repo, "oops")
    data = scan_secrets(repo, history=True).to_dict()
    (finding,) = data["findings"]
    assert finding["id"] == "AISEC-SECRET-OPENAI-API-KEY"
    assert finding["location"] == "app.py:1"
    assert finding["details"]["scope"] == "tree"
    assert finding["details"]["commit"] == sha
    assert_no_secret(json.dumps(data))


def test_history_of_a_subdirectory_only(tmp_path):
    repo = make_repo(tmp_path / "repo")
    (repo / "dags").mkdir()
    (repo / "dags" / "etl.py").write_text("x = 1\n")
    (repo / "other.py").write_text(f'key = "{TOKENS["aws"]}"\n')
    commit_all(repo, "mixed")
    (repo / "other.py").unlink()
    commit_all(repo, "rm")
    assert scan_secrets(repo / "dags", history=True).findings == []
    found = scan_secrets(repo, history=True).findings
    assert [f.details["file"] for f in found] == ["other.py"]


@pytest.mark.parametrize(
    ("token", "finding_id"),
    [
        ("hf", "AISEC-SECRET-HUGGING-FACE-TOKEN"),
        ("openai", "AISEC-SECRET-OPENAI-API-KEY"),
        ("openai_legacy", "AISEC-SECRET-OPENAI-API-KEY"),
        ("aws", "AISEC-SECRET-AWS-ACCESS-KEY"),
    ],
)
def test_detectors(tmp_path, token, finding_id):
    (tmp_path / "settings.env").write_text(f"TOKEN={TOKENS[token]}\n")
    ids = {f.id for f in scan_secrets(tmp_path).findings}
    assert finding_id in ids


def test_private_key_from_detect_secrets_plugins(tmp_path):
    (tmp_path / "id_rsa").write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n")
    assert [f.id for f in scan_secrets(tmp_path).findings] == ["AISEC-SECRET-PRIVATE-KEY"]


def test_lookalikes_are_not_flagged(tmp_path):
    (tmp_path / "notes.md").write_text("Use hf_xxx as a placeholder; sk-proj-abc is too short; the_hf_hub_download\n")
    assert scan_secrets(tmp_path).findings == []


def test_binary_files_are_scanned_as_strings_and_large_files_decided_by_policy(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01" * 100 + TOKENS["hf"].encode())
    (tmp_path / "huge.txt").write_text(("x" * 100 + "\n") * 200 + TOKENS["hf"] + "\n")
    (tmp_path / "ok.py").write_text("print('hello')\n")
    report = scan_secrets(tmp_path, max_file_bytes=10_000)
    assert [f.location for f in report.findings] == ["weights.bin:1"]  # a token in a binary file is found
    assert report.status == "fail"
    assert report.metrics["files_binary_strings"] == 1
    assert report.metrics["files_skipped_large"] == 1
    assert report.metrics["files_scanned"] == 2
    assert report.to_dict()["details"]["unscanned"][0]["location"] == "huge.txt"
    assert "1 item(s) NOT scanned (1 large)" in report.summary
    (tmp_path / "weights.bin").unlink()
    assert scan_secrets(tmp_path, max_file_bytes=10_000).status == "error"  # fail closed by default
    assert scan_secrets(tmp_path, max_file_bytes=10_000, unscanned="warn").status == "warn"


def test_excluded_directories_are_not_descended(tmp_path):
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "x.py").write_text(f'k = "{TOKENS["hf"]}"\n')
    assert scan_secrets(tmp_path).findings == []
    assert len(scan_secrets(tmp_path, exclude_dirs=()).findings) == 1


def test_inline_allow_comment_suppresses_with_its_reason(tmp_path):
    (tmp_path / "fixtures.py").write_text(
        f'# aisec: allow-secret revoked demo token\nTOKEN = "{TOKENS["hf"]}"\n'
        f'OTHER = "{TOKENS["aws"]}"  # pragma: allowlist secret\n'
    )
    report = scan_secrets(tmp_path)
    assert report.findings == []
    suppressed, pragma = report.to_dict()["details"]["suppressed"]
    assert suppressed["reason"] == "inline: revoked demo token"
    assert suppressed["location"] == "fixtures.py:2"
    # detect-secrets' own pragma is honoured, but listed like every suppression (it used to vanish)
    assert pragma["reason"] == "inline: detect-secrets pragma: allowlist secret"
    assert pragma["location"] == "fixtures.py:3"


def test_allowlist_by_fingerprint(tmp_path):
    (tmp_path / "a.py").write_text(f'T = "{TOKENS["hf"]}"\n')
    fp = fingerprint(TOKENS["hf"])
    report = scan_secrets(tmp_path, allow={fp: "test double, never valid"})
    assert report.status == "pass"
    assert report.to_dict()["details"]["suppressed"][0]["reason"] == "allowlist: test double, never valid"


def test_detect_secrets_baseline(tmp_path):
    import hashlib

    (tmp_path / "a.py").write_text(f'T = "{TOKENS["hf"]}"\nK = "{TOKENS["aws"]}"\n')

    def entry(value, is_secret=None):
        item = {"type": "x", "filename": "a.py", "hashed_secret": hashlib.sha1(value.encode()).hexdigest()}
        if is_secret is not None:
            item["is_secret"] = is_secret
        return item

    baseline = tmp_path / ".secrets.baseline"
    # the HF token was audited as a false positive; the AWS key was audited as a real secret: still reported
    baseline.write_text(
        json.dumps({"version": "1.5.0", "results": {"a.py": [entry(TOKENS["hf"], False), entry(TOKENS["aws"], True)]}})
    )
    report = scan_secrets(tmp_path, baseline=baseline)
    assert [f.id for f in report.findings] == ["AISEC-SECRET-AWS-ACCESS-KEY"]
    reasons = {(e["file"], e["reason"]) for e in report.to_dict()["details"]["suppressed"]}
    assert ("a.py", "baseline (audited false positive)") in reasons
    # the baseline itself is scanned (no blind spot); its SHA-1 hashes are digests, suppressed as such
    assert {r for f, r in reasons if f == ".secrets.baseline"} <= {
        "inline: hash digest on a line naming a hash (not a credential)"
    }
    assert_no_secret(baseline.read_text())  # baselines store SHA-1 hashes only


def test_errors_name_the_input(tmp_path):
    with pytest.raises(AisecInputError, match="does not exist"):
        scan_secrets(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(AisecInputError, match="is not inside a git repository"):
        scan_secrets(tmp_path / "plain", history=True)
    (tmp_path / "bl.json").write_text("{}")
    with pytest.raises(AisecInputError, match="is not a detect-secrets baseline"):
        scan_secrets(tmp_path / "plain", baseline=tmp_path / "bl.json")


def test_hash_digests_are_not_credentials_but_random_hex_is(tmp_path):
    import random

    rng = random.Random(3)
    digest = "".join(rng.choice("0123456789abcdef") for _ in range(64))
    (tmp_path / "dag.py").write_text(f'MODEL_SHA256 = "{digest}"\n')
    report = scan_secrets(tmp_path)
    assert report.status == "pass"
    assert report.to_dict()["details"]["suppressed"][0]["reason"].startswith("inline: hash digest")
    (tmp_path / "dag.py").write_text(f'api_secret = "{digest}"\n')
    assert [f.severity for f in scan_secrets(tmp_path).findings] == ["medium"]


def test_fail_on_high_lets_heuristic_findings_warn(tmp_path):
    (tmp_path / "settings.py").write_text('password = "correct-horse-battery-staple-42"\n')
    strict = scan_secrets(tmp_path)
    assert strict.status == "fail"
    assert [f.id for f in strict.findings] == ["AISEC-SECRET-SECRET-KEYWORD"]
    lenient = scan_secrets(tmp_path, fail_on="high")
    assert lenient.status == "warn"
    assert "below fail_on=high" in lenient.summary
    (tmp_path / "token.env").write_text(f"HF={TOKENS['hf']}\n")
    assert scan_secrets(tmp_path, fail_on="high").status == "fail"
    with pytest.raises(AisecInputError, match="fail_on must be one of"):
        scan_secrets(tmp_path, fail_on="low")
