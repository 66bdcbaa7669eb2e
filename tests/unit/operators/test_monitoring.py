"""PerformanceEstimateOperator, MultivariateDriftOperator and AdversarialRobustnessOperator through dag.test()."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import DAG

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.operators.monitoring import MultivariateDriftOperator, PerformanceEstimateOperator
from airflow_aisec.operators.robustness import AdversarialRobustnessOperator
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.robustness_helpers import FAST, write_case


def test_constructors_validate():
    with pytest.raises(ValueError, match="needs proba_columns"):
        PerformanceEstimateOperator(
            task_id="e", reference_path="r", current_path="c", proba_columns=[], label_column="y"
        )
    with pytest.raises(ValueError, match="on_degradation must be one of"):
        PerformanceEstimateOperator(
            task_id="e", reference_path="r", current_path="c", proba_columns=["p"], label_column="y", on_degradation="x"
        )
    with pytest.raises(AisecInputError, match="min_auc must be"):
        MultivariateDriftOperator(task_id="m", reference_path="r", current_path="c", min_auc=0.2)


@pytest.mark.integration
def test_label_free_signals_and_robustness_gate_run_in_a_dag(airflow_db, tmp_path):
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=n)
    flipped = rng.multivariate_normal([0, 0], [[1, -0.8], [-0.8, 1]], size=n)
    pd.DataFrame(x, columns=["a", "b"]).to_parquet(tmp_path / "ref.parquet")
    pd.DataFrame(flipped, columns=["a", "b"]).to_parquet(tmp_path / "cur.parquet")
    p = 1 / (1 + np.exp(-rng.normal(0, 3, n)))
    pd.DataFrame({"p": p, "y": (rng.random(n) < p).astype(int)}).to_parquet(tmp_path / "scored_ref.parquet")
    pd.DataFrame({"p": 1 / (1 + np.exp(-rng.normal(0, 0.2, n)))}).to_parquet(tmp_path / "scored_cur.parquet")
    case = write_case(tmp_path)
    with DAG("aisec_test_monitoring_depth", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        MultivariateDriftOperator(
            task_id="multivariate",
            reference_path=str(tmp_path / "ref.parquet"),
            current_path=str(tmp_path / "cur.parquet"),
            on_drift="pass-through",
        )
        PerformanceEstimateOperator(
            task_id="estimate",
            reference_path=str(tmp_path / "scored_ref.parquet"),
            current_path=str(tmp_path / "scored_cur.parquet"),
            proba_columns=["p"],
            label_column="y",
        )
        AdversarialRobustnessOperator(
            task_id="robustness",
            data_path=case["data"],
            model_path=case["model"],
            model_digest=case["digest"],
            label_column="y",
            min_robust_accuracy=0.0,
            **FAST,
        )
        AdversarialRobustnessOperator(
            task_id="robustness_tampered",
            data_path=case["data"],
            model_path=case["model"],
            model_digest="sha256:" + "0" * 64,
            label_column="y",
            min_robust_accuracy=0.0,
            **FAST,
        )
    run = run_dag(dag)
    assert task_states(run) == {
        "multivariate": "success",
        "estimate": "failed",
        "robustness": "success",
        "robustness_tampered": "failed",
    }
    multivariate = xcom(run, "multivariate")
    assert multivariate["status"] == "fail" and multivariate["metrics"]["multivariate_drift"] == 1
    assert xcom(run, "estimate")["check"] == "performance_estimate"
    assert xcom(run, "estimate")["status"] == "fail"
    assert xcom(run, "robustness")["metrics"]["n_rows"] == 6
    tampered = xcom(run, "robustness_tampered")
    assert tampered["status"] == "error" and "digest mismatch" in tampered["summary"]
