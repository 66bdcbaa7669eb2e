"""The supply-chain example DAG runs as-is (offline OSV database from $AISEC_OSV_DB) and shows real results."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.airflow_helpers import load_example_dag, run_dag, task_states, xcom
from tests.osv_helpers import snapshot_path

pytestmark = pytest.mark.integration


def test_example_dag_end_to_end(airflow_db, monkeypatch):
    monkeypatch.setenv("AISEC_OSV_DB", str(snapshot_path()))
    dag = load_example_dag("aisec_supply_chain_audit")
    dr = run_dag(dag)
    states = task_states(dr)
    assert states == {
        "audit_environment": "success",
        "audit_pinned_requirements": "success",
        "scan_dags_for_secrets": "success",
        "audit_known_vulnerable": "failed",
        "confirm_vulnerabilities_caught": "success",
        "build_images": "success",
        "scan_training_image": "success",
        "scan_hostile_image": "failed",
        "confirm_image_findings": "success",
    }
    assert str(dr.state) == "success"

    env = xcom(dr, "audit_environment")
    assert env["status"] in ("pass", "warn")
    assert env["metrics"]["packages_audited"] > 100  # this very environment: Airflow, pip-audit, …
    sbom = env["details"]["sbom"]
    assert hashlib.sha256(Path(sbom["path"]).read_bytes()).hexdigest() == sbom["sha256"]
    assert sbom["components"] == env["metrics"]["packages_audited"]

    pinned = xcom(dr, "audit_pinned_requirements")
    assert pinned["status"] in ("pass", "warn")
    assert pinned["metrics"]["packages_audited"] > 100
    assert pinned["subject"].endswith("airflow-aisec-pins.txt")

    secrets = xcom(dr, "scan_dags_for_secrets")
    assert secrets["status"] == "pass"
    assert secrets["metrics"]["files_scanned"] >= 2
    assert secrets["details"]["scope"] == "tree+history"  # the repository is a git checkout

    vulnerable = xcom(dr, "audit_known_vulnerable")
    assert {f["id"] for f in vulnerable["findings"]} == {"PYSEC-2018-28", "PYSEC-2023-74", "PYSEC-2021-66"}
    image = xcom(dr, "scan_training_image")
    assert image["status"] == "pass" and image["metrics"]["python_packages"] == 1
    hostile = xcom(dr, "scan_hostile_image")
    secret = next(f for f in hostile["findings"] if f["id"] == "AISEC-IMG-SECRET-HUGGING-FACE-TOKEN")
    assert secret["details"]["in_final_fs"] is False  # deleted by a later layer, still in the image
    assert "AISEC-MODEL-DANGEROUS-GLOBAL" in xcom(dr, "confirm_image_findings", "return_value")["caught"]
    confirmed = xcom(dr, "confirm_vulnerabilities_caught", "return_value")
    assert confirmed["caught"] == ["PYSEC-2018-28", "PYSEC-2021-66", "PYSEC-2023-74"]
