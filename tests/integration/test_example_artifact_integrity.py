"""The artifact-integrity example DAG runs as-is and catches the tampered copy."""

from __future__ import annotations

import pytest

from tests.airflow_helpers import load_example_dag, run_dag, task_states, xcom

pytestmark = pytest.mark.integration


def test_example_dag_end_to_end(airflow_db):
    dag = load_example_dag("aisec_artifact_integrity")
    dr = run_dag(dag)
    states = task_states(dr)
    assert states["verify_tampered"] == "failed"
    assert {k: v for k, v in states.items() if k != "verify_tampered"} == dict.fromkeys(
        ["build_artifact", "hash_and_sign", "verify_artifact", "tamper_copy", "confirm_tamper_caught"], "success"
    )
    assert str(dr.state) == "success"  # the failure is shown, the run as a whole passes
    hashed, verified, tampered = (xcom(dr, t) for t in ("hash_and_sign", "verify_artifact", "verify_tampered"))
    assert hashed["details"]["signature_path"].endswith("model.manifest.json.sig")
    assert verified["status"] == "pass"
    assert verified["details"]["signature_valid"] is True
    assert tampered["status"] == "fail"
    assert [f["location"] for f in tampered["findings"]] == ["weights.bin"]
    assert xcom(dr, "confirm_tamper_caught", "return_value")["caught"] is True
