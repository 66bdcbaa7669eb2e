"""SARIF 2.1.0 rendering of reports: schema-valid, stable fingerprints, right locations, no secret values."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from airflow_aisec.cli import main
from airflow_aisec.cli._common import emit
from airflow_aisec.core.secrets import scan_secrets
from airflow_aisec.outputs.sarif import FINGERPRINT_KEY, report_to_sarif
from airflow_aisec.report import Report
from tests.sarif_helpers import assert_valid_sarif
from tests.secrets_helpers import fake_tokens


def _secrets_tree(root):
    tokens = fake_tokens()
    (root / "src").mkdir(parents=True)
    (root / "src" / "config.py").write_text(f'MODEL = "bert"\nHF_TOKEN = "{tokens["hf"]}"\n')
    (root / "notes.txt").write_text(f"\n\nkey: {tokens['openai']}\n")
    return tokens


def test_validator_rejects_an_invalid_log():
    with pytest.raises(AssertionError, match="version"):
        assert_valid_sarif({"runs": []})


def test_secrets_report_becomes_valid_sarif_with_lines_and_no_values(tmp_path):
    tokens = _secrets_tree(tmp_path)
    data = scan_secrets(tmp_path).to_dict()
    log = report_to_sarif(data)
    assert_valid_sarif(log)
    text = json.dumps(log)
    for token in tokens.values():
        assert token not in text
        assert token[-12:] not in text
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "airflow-aisec"
    assert run["invocations"][0]["executionSuccessful"] is True
    by_uri = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r["locations"][0]["physicalLocation"]
        for r in run["results"]
    }
    assert by_uri["src/config.py"]["region"] == {"startLine": 2}
    assert by_uri["notes.txt"]["region"] == {"startLine": 3}
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    for result in run["results"]:
        rule = rules[result["ruleId"]]
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]] is rule
        assert result["level"] == rule["defaultConfiguration"]["level"] == "error"
        assert rule["properties"]["security-severity"] == "8.0"


def test_fingerprints_are_stable_across_runs_and_differ_per_secret(tmp_path):
    _secrets_tree(tmp_path)
    first = report_to_sarif(scan_secrets(tmp_path).to_dict())["runs"][0]["results"]
    second_report = scan_secrets(tmp_path).to_dict()
    second_report["started_at"] = "2099-01-01T00:00:00.000Z"  # timestamps never enter a fingerprint
    second = report_to_sarif(second_report)["runs"][0]["results"]
    fps = [r["partialFingerprints"][FINGERPRINT_KEY] for r in first]
    assert fps == [r["partialFingerprints"][FINGERPRINT_KEY] for r in second]
    assert len(set(fps)) == len(fps) == 2


def test_packages_buckets_and_features_are_logical_locations():
    audit = Report.start("dependency_audit", "requirements.txt")
    audit.add_finding("PYSEC-2024-1", "critical", "torch: remote code execution", "torch==2.0.0", {"fix": "2.1"})
    audit.add_finding("AISEC-DEP-LOW", "low", "minor", "numpy==1.0", {})
    s3 = Report.start("s3_posture", "s3://models")
    s3.add_finding("AISEC-S3-PUBLIC", "high", "bucket is public", "s3://models", {})
    drift = Report.start("drift", "current.parquet")
    drift.add_finding("AISEC-DRIFT-PSI", "medium", "age drifted", "age", {"feature": "age"})
    kinds = {}
    for report in (audit, s3, drift):
        log = report_to_sarif(report.finish().to_dict())
        assert_valid_sarif(log)
        for r in log["runs"][0]["results"]:
            assert "physicalLocation" not in r["locations"][0]
            (logical,) = r["locations"][0]["logicalLocations"]
            kinds[logical["fullyQualifiedName"]] = logical["kind"]
    assert kinds == {"torch==2.0.0": "package", "numpy==1.0": "package", "s3://models": "resource", "age": "feature"}
    rules = {r["id"]: r for r in report_to_sarif(audit.to_dict())["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["PYSEC-2024-1"]["properties"]["security-severity"] == "9.5"
    assert rules["AISEC-DEP-LOW"]["defaultConfiguration"]["level"] == "note"


def test_model_scan_path_without_line_and_absolute_paths():
    report = Report.start("model_scan", "/models")
    report.add_finding("AISEC-MODEL-PICKLE", "critical", "os.system", "weights/model.pkl", {})
    report.add_finding("AISEC-MODEL-PICKLE", "critical", "os.system", "/abs/with space.pkl", {})
    log = report_to_sarif(report.finish().to_dict())
    assert_valid_sarif(log)
    uris = [r["locations"][0]["physicalLocation"] for r in log["runs"][0]["results"]]
    assert uris == [
        {"artifactLocation": {"uri": "weights/model.pkl"}},
        {"artifactLocation": {"uri": "file:///abs/with%20space.pkl"}},
    ]
    assert len(log["runs"][0]["tool"]["driver"]["rules"]) == 1


def test_error_report_is_an_unsuccessful_invocation():
    data = Report.start("secrets", "/repo").error("AisecInputError: path does not exist").to_dict()
    log = report_to_sarif(data)
    assert_valid_sarif(log)
    (invocation,) = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert "path does not exist" in invocation["toolExecutionNotifications"][0]["message"]["text"]
    assert log["runs"][0]["results"] == []
    out = io.StringIO()
    assert emit(data, "sarif", out) == 2


def test_cli_every_report_subcommand_offers_sarif(capsys, tmp_path):
    tokens = _secrets_tree(tmp_path)
    assert main(["secrets", str(tmp_path), "--format", "sarif"]) == 1
    out = capsys.readouterr().out
    assert_valid_sarif(json.loads(out))
    assert not any(t in out for t in tokens.values())
    assert main(["secrets", str(tmp_path / "missing"), "--format", "sarif"]) == 2
    log = json.loads(capsys.readouterr().out)
    assert_valid_sarif(log)
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is False
    assert main(["hash", str(tmp_path / "missing-dir"), "--format", "sarif"]) == 2
    assert_valid_sarif(json.loads(capsys.readouterr().out))
    for command in ("audit", "scan-model", "verify", "provenance", "drift", "inference-audit", "s3-posture"):
        with pytest.raises(SystemExit):
            _help(command)
        assert "sarif" in capsys.readouterr().out, command


def _help(command: str) -> None:
    from airflow_aisec.cli import build_parser

    build_parser().parse_args([command, "--help"])


class _TI:
    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


@pytest.fixture(autouse=True)
def _no_report_dir(monkeypatch):
    """`make test` exports a report directory; these fake task instances only test the SARIF file."""
    monkeypatch.delenv("AISEC_REPORT_DIR", raising=False)
    monkeypatch.delenv("AIRFLOW__AISEC__REPORT_DIR", raising=False)


def test_operator_writes_sarif_file_atomically(tmp_path):
    from airflow_aisec.operators.secrets import SecretsScanOperator

    tokens = _secrets_tree(tmp_path / "repo")
    op = SecretsScanOperator(task_id="s", path=str(tmp_path / "repo"), sarif_path=str(tmp_path / "out" / "s.sarif"))
    assert "sarif_path" in op.template_fields
    (tmp_path / "out").mkdir()
    ti = _TI()
    data = op.publish({"ti": ti}, scan_secrets(tmp_path / "repo"))
    text = (tmp_path / "out" / "s.sarif").read_text()
    assert not any(t in text for t in tokens.values())
    log = json.loads(text)
    assert_valid_sarif(log)
    assert len(log["runs"][0]["results"]) == len(data["findings"]) == 2
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["s.sarif"]  # no temporary file left


def test_operator_without_sarif_path_writes_nothing(tmp_path):
    from airflow_aisec.operators.secrets import SecretsScanOperator

    op = SecretsScanOperator(task_id="s", path=str(tmp_path))
    assert op.sarif_path is None
    op.publish({"ti": SimpleNamespace(xcom_push=lambda **kw: None)}, Report.start("secrets", "x").finish())
    assert list(tmp_path.iterdir()) == []
