"""MLBomOperator in a real ``dag.test()`` run: audit SBOM + manifest + metrics → strict CycloneDX 1.6 ML-BOM."""

from __future__ import annotations

import hashlib
import json

import pendulum
import pytest

from airflow_aisec.operators.mlbom import MLBomOperator
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.osv_helpers import snapshot_path


def test_constructor_validates():
    with pytest.raises(ValueError, match="bom_path, model_name and manifest_path are required"):
        MLBomOperator(task_id="b", bom_path="", model_name="m", manifest_path="m.json")
    op = MLBomOperator(task_id="b", bom_path="{{ run_id }}.json", model_name="m", manifest_path="m.json")
    assert {"bom_path", "model_name", "manifest_path", "model_version", "report_path"} <= set(op.template_fields)


@pytest.mark.integration
def test_ml_bom_operator_in_a_real_dag_run(airflow_db, tmp_path):
    from airflow.sdk import DAG, task
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from airflow_aisec.operators.audit import DependencyAuditOperator
    from airflow_aisec.operators.integrity import ArtifactHashOperator

    reqs = tmp_path / "requirements.txt"
    reqs.write_text("requests==2.19.0\n")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(b"tiny model")
    sbom, manifest, bom = tmp_path / "env.cdx.json", tmp_path / "model.manifest.json", tmp_path / "ml.cdx.json"
    options = {"model_name": "tiny", "manifest_path": str(manifest), "audit_task_id": "audit"}

    with DAG("aisec_test_mlbom", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        audit = DependencyAuditOperator(
            task_id="audit", requirements=[str(reqs)], osv_db=str(snapshot_path()), sbom_path=str(sbom)
        )
        hashed = ArtifactHashOperator(task_id="hash", path=str(model_dir), manifest_path=str(manifest))

        @task
        def evaluate() -> dict:
            return {"accuracy": 0.93, "f1": 0.9}

        @task
        def tamper_sbom() -> None:
            sbom.write_text(sbom.read_text().replace("requests", "requestz"))

        ok = MLBomOperator(
            task_id="ml_bom", bom_path=str(bom), performance_task_id="evaluate", trigger_rule="all_done", **options
        )
        missing = MLBomOperator(
            task_id="ml_bom_missing_report",
            bom_path=str(tmp_path / "x.json"),
            split_task_id="nope_task",
            trigger_rule="all_done",
            **options,
        )
        tampered = MLBomOperator(
            task_id="ml_bom_tampered", bom_path=str(tmp_path / "t.json"), trigger_rule="all_done", **options
        )
        [audit, hashed, evaluate()] >> ok >> missing >> tamper_sbom.override(trigger_rule="all_done")() >> tampered

    dag_run = run_dag(dag)
    states = task_states(dag_run)
    assert states["audit"] == "failed"  # requests 2.19.0 is vulnerable; its SBOM is written all the same
    assert (states["ml_bom"], states["ml_bom_missing_report"], states["ml_bom_tampered"]) == (
        "success",
        "failed",
        "failed",
    )

    report = xcom(dag_run, "ml_bom")
    assert report["check"] == "ml_bom" and report["status"] == "pass"
    assert report["details"]["bom"]["sha256"] == hashlib.sha256(bom.read_bytes()).hexdigest()
    text = bom.read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    model = doc["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["components"][0]["hashes"][0]["content"] == hashlib.sha256(b"tiny model").hexdigest()
    assert {m["type"]: m["value"] for m in model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]} == {
        "accuracy": "0.93",
        "f1": "0.9",
    }
    vex = {v["id"]: v["affects"][0]["ref"] for v in doc["vulnerabilities"]}
    assert vex["PYSEC-2018-28"] == "pkg:pypi/requests@2.19.0"

    missing_report = xcom(dag_run, "ml_bom_missing_report")
    assert missing_report["status"] == "error" and "'nope_task' left no report" in missing_report["summary"]
    tampered_report = xcom(dag_run, "ml_bom_tampered")
    assert tampered_report["status"] == "error" and "changed since it was audited" in tampered_report["summary"]
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "x.json").exists()
