"""The at-scale integrity example DAG runs as-is: plan → mapped hashing → merge (signed) → verify, and the
merged manifest is byte-identical to a single-pass hash of the same dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_aisec.core import hashing
from tests.airflow_helpers import load_example_dag, run_dag, task_states, xcom

pytestmark = pytest.mark.integration


def test_mapped_hashing_merges_into_the_single_pass_manifest(airflow_db):
    dag = load_example_dag("aisec_artifact_integrity_at_scale")
    dr = run_dag(dag)
    assert str(dr.state) == "success"
    assert set(task_states(dr).values()) == {"success"}
    hashed = [xcom(dr, "hash_part", map_index=i) for i in range(4)]
    assert sorted(h["details"]["partition"] for h in hashed) == ["1/4", "2/4", "3/4", "4/4"]
    assert sum(h["metrics"]["files"] for h in hashed) == 12
    assert all(h["metrics"]["files"] >= 1 for h in hashed)  # balanced: no partition left empty
    merged = xcom(dr, "merge")
    manifest = Path(merged["details"]["manifest_path"])
    assert merged["details"]["signature_path"] == f"{manifest}.sig"
    dataset = json.loads(manifest.read_text())["root"]
    assert manifest.read_bytes() == hashing.hash_manifest(dataset).to_bytes()
    verified = xcom(dr, "verify")
    assert verified["status"] == "pass"
    assert verified["details"]["signature_valid"] is True
