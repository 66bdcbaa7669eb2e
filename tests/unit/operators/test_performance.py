"""ModelPerformanceOperator: argument validation and a real run through dag.test()."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import DAG

from airflow_aisec.operators.performance import ModelPerformanceOperator
from tests.airflow_helpers import run_dag, task_states, xcom


def test_constructor_validates():
    with pytest.raises(ValueError, match="exactly one of prediction_column or model_path"):
        ModelPerformanceOperator(task_id="p", data_path="x", label_column="y")
    with pytest.raises(ValueError, match="not supported"):
        ModelPerformanceOperator(
            task_id="p", data_path="x", label_column="y", prediction_column="p", baseline={"mse": 1}
        )


@pytest.mark.integration
def test_degraded_model_fails_the_task_or_warns_or_passes_through(airflow_db, tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    good = np.where(rng.random(400) < 0.95, y, 1 - y)
    pd.DataFrame({"label": y, "pred": good}).to_parquet(tmp_path / "good.parquet")
    pd.DataFrame({"label": y, "pred": rng.integers(0, 2, 400)}).to_parquet(tmp_path / "bad.parquet")
    with DAG("aisec_test_performance", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        for name, data, outcome in (
            ("good", "good", "fail"),
            ("bad", "bad", "fail"),
            ("bad_warn", "bad", "warn"),
            ("bad_pass_through", "bad", "pass-through"),
        ):
            ModelPerformanceOperator(
                task_id=name,
                data_path=str(tmp_path / f"{data}.parquet"),
                label_column="label",
                prediction_column="pred",
                baseline={"accuracy": 0.95, "f1": 0.95},
                max_degradation=0.05,
                on_degradation=outcome,
            )
    run = run_dag(dag)
    assert task_states(run) == {
        "good": "success",
        "bad": "failed",
        "bad_warn": "success",
        "bad_pass_through": "success",
    }
    warned = xcom(run, "bad_warn")
    assert warned["status"] == "warn"
    assert warned["summary"].startswith("[on_degradation=warn] ")
    passed_through = xcom(run, "bad_pass_through")
    assert passed_through["status"] == "fail"  # the report keeps its verdict; downstream decides
    assert {f["location"] for f in passed_through["findings"]} == {"accuracy", "f1"}
    assert xcom(run, "good")["status"] == "pass"
    bad = xcom(run, "bad")
    assert bad["status"] == "fail"
    assert {f["location"] for f in bad["findings"]} == {"accuracy", "f1"}
