"""The example DAG ``aisec_model_serving_security`` run for real (dag.test): serve, load-test, audit."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from tests.airflow_helpers import run_dag, task_states, xcom

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "aisec_model_serving_security.py"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def serving_dag():
    spec = importlib.util.spec_from_file_location("aisec_model_serving_security_dag", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def test_dag_serves_load_tests_and_audits(airflow_db, serving_dag):
    run = run_dag(serving_dag)
    states = task_states(run)
    assert states == dict.fromkeys(
        [
            "prepare_model",
            "hash_model",
            "scan_model",
            "scanner_canary",
            "load_test",
            "simulate_traffic",
            "audit_inference_log",
        ],
        "success",
    ), states
    hashed = xcom(run, "hash_model")
    scan = xcom(run, "scan_model")
    assert scan["status"] == "pass"
    assert hashed["details"]["digest"] == scan["details"]["files"][0]["sha256"]
    assert scan["details"]["files"][0]["format"] == "joblib"
    canary = xcom(run, "scanner_canary", key="return_value")
    assert canary["caught"] == ["os.system"]
    load = xcom(run, "load_test")
    assert load["status"] == "pass"
    assert load["metrics"]["requests_sent"] == 200
    assert load["metrics"]["error_rate"] == 0.0
    audit = xcom(run, "audit_inference_log")
    assert audit["status"] == "warn"
    abuse = [f for f in audit["findings"] if f["id"] == "AISEC-INF-RATE-LIMIT-ABUSE-BLOCKED"]
    assert [f["location"] for f in abuse] == ["client:scraper-7"]
    assert abuse[0]["details"]["rate_limited_responses"] == 20
    assert audit["metrics"]["requests"] == 200 + 40 + 30
    assert audit["metrics"]["ood_share"] == pytest.approx(10 / 50)  # scraper's 10 served inputs vs 40 normal
    findings_text = json.dumps(audit["findings"])
    assert "-8.0" not in findings_text  # the scraper's raw inputs never reach the report, only hashes
    assert "sha256:" in findings_text
    run_dir = xcom(run, "prepare_model", key="return_value")["dir"]
    assert audit["subject"] == os.path.join(run_dir, "inference.jsonl")  # the log on shared storage
    assert os.path.exists(os.path.join(run_dir, "canary_checkpoint.pt"))
    assert not os.path.exists(os.path.join(run_dir, "CANARY-PWNED"))


def test_malicious_model_is_never_served(airflow_db, serving_dag):
    run = run_dag(serving_dag, conf={"malicious": True})
    states = task_states(run)
    assert states["scan_model"] == "failed"
    assert states["load_test"] == "upstream_failed"  # the model is never served
    assert states["simulate_traffic"] == "upstream_failed"
    scan = xcom(run, "scan_model")
    assert scan["status"] == "fail"
    assert {f["details"]["global"] for f in scan["findings"] if f["severity"] == "critical"} == {"posix.system"}
    model_dir = os.path.dirname(scan["details"]["files"][0]["location"])
    assert not os.path.exists(os.path.join(model_dir, "PWNED"))
