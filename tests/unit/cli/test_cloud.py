"""``aisec iam-lint`` (local files only; ``s3-posture`` runs against moto in tests/integration/cloud)."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_aisec.cli import main
from airflow_aisec.report import validate

IAM = Path(__file__).resolve().parents[3] / "data" / "iam"


def test_least_privilege_files_pass(capsys):
    code = main(
        ["iam-lint", str(IAM / "inference-role-least-privilege.json"), str(IAM / "training-role-least-privilege.json")]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("[PASS] iam_policy 2 IAM policy sources")


def test_overprivileged_file_fails_with_json_report(capsys):
    code = main(
        [
            "iam-lint",
            str(IAM / "inference-role-overprivileged.json"),
            "--training-data-bucket",
            "acme-ml-training-data",
            "--format",
            "json",
        ]
    )
    data = validate(json.loads(capsys.readouterr().out))
    assert code == 1
    assert data["status"] == "fail"
    assert "AISEC-IAM-INFERENCE-WRITES-DATA" in {f["id"] for f in data["findings"]}
    assert "OWASP-ML02" in data["tags"]


def test_fail_on_threshold_warns_below_it(capsys):
    code = main(["iam-lint", str(IAM / "inference-role-overprivileged.json"), "--fail-on", "critical"])
    assert code == 0
    assert capsys.readouterr().out.startswith("[WARN]")


def test_bad_input_is_exit_2_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    code = main(["iam-lint", str(bad)])
    captured = capsys.readouterr()
    assert code == 2
    assert f"{bad}: invalid JSON" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert main(["iam-lint"]) == 2
    assert "give at least one POLICY_JSON file, --role" in capsys.readouterr().err
