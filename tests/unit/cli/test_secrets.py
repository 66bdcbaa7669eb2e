"""``aisec secrets``: exit codes 0/1/2, JSON reports, no tracebacks."""

from __future__ import annotations

import json

from airflow_aisec.cli import main
from airflow_aisec.report import validate
from tests.secrets_helpers import fake_tokens, repo_with_deleted_secret


def run_json(capsys, argv):
    code = main([*argv, "--format", "json"])
    out = capsys.readouterr()
    return code, validate(json.loads(out.out)), out.err


def test_secrets_history_and_tree(tmp_path, capsys):
    token = fake_tokens(5)["hf"]
    repo, leaked = repo_with_deleted_secret(tmp_path / "repo", token)
    code, data, err = run_json(capsys, ["secrets", str(repo)])
    assert code == 0 and data["findings"] == []
    code, data, err = run_json(capsys, ["secrets", str(repo), "--history"])
    assert code == 1
    assert data["findings"][0]["location"] == f"{leaked[:12]}:config.py:2"
    fp = data["findings"][0]["details"]["fingerprint"]
    code, data, _ = run_json(capsys, ["secrets", str(repo), "--history", "--allow", f"{fp}=revoked in 2026"])
    assert code == 0 and data["metrics"]["suppressed"] == 1
    assert main(["secrets", str(repo), "--history"]) == 1
    text = capsys.readouterr()
    assert token not in text.out + text.err + err


def test_secrets_errors_exit_2(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    code, data, _ = run_json(capsys, ["secrets", str(tmp_path / "plain"), "--history"])
    assert code == 2 and "not inside a git repository" in data["summary"]
    code, data, _ = run_json(capsys, ["secrets", str(tmp_path / "plain"), "--allow", "nope"])
    assert code == 2 and "FINGERPRINT=REASON" in data["summary"]
