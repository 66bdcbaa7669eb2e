"""DataValidationOperator and ReproducibleSplitOperator in one real DAG run."""

from __future__ import annotations

import hashlib

import pandas as pd
import pendulum
import pytest

from airflow_aisec.core.validation import build_reference_profile
from tests.airflow_helpers import run_dag, task_states, xcom

LABEL = "target"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from sklearn.datasets import load_breast_cancer

    base = tmp_path_factory.mktemp("dv")
    frame = load_breast_cancer(as_frame=True).frame
    clean = base / "clean.csv"
    frame.to_csv(clean, index=False)
    poisoned = frame.copy()
    poisoned.loc[poisoned.index[poisoned[LABEL] == 0][:120], LABEL] = 1  # label flipping
    poisoned = pd.concat([poisoned, poisoned.iloc[:30]], ignore_index=True)  # duplicated samples
    poisoned_path = base / "poisoned.parquet"
    poisoned.to_parquet(poisoned_path, index=False)
    import json

    profile = base / "reference.json"
    profile.write_text(json.dumps(build_reference_profile(frame, label_column=LABEL)))
    return {"base": base, "clean": clean, "poisoned": poisoned_path, "profile": profile, "rows": len(frame)}


@pytest.fixture(scope="module")
def dag_run(airflow_db, files):
    from airflow.sdk import DAG, Asset

    from airflow_aisec.operators.split import ReproducibleSplitOperator
    from airflow_aisec.operators.validation import DataValidationOperator

    suite = [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": LABEL}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": LABEL, "value_set": [0, 1]}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 500, "max_value": 700}},
    ]
    out = files["base"] / "splits"
    with DAG("test_validation_split", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        DataValidationOperator(
            task_id="validate_clean",
            dataset_uri=str(files["clean"]),
            expectations=suite,
            reference=str(files["profile"]),
            label_column=LABEL,
        )
        DataValidationOperator(
            task_id="validate_poisoned",
            dataset_uri=str(files["poisoned"]),
            expectations=suite,
            reference=str(files["profile"]),
            label_column=LABEL,
        )
        DataValidationOperator(
            task_id="validate_missing", dataset_uri=str(files["base"] / "gone.csv"), reference=str(files["profile"])
        )
        for task_id, seed in (("split_a", 42), ("split_b", 42), ("split_c", 7)):
            ReproducibleSplitOperator(
                task_id=task_id,
                dataset_uri=str(files["clean"]),
                output_dir=str(out / task_id),
                seed=seed,
                test_size=0.2,
                validation_size=0.1,
                stratify_column=LABEL,
                outlets=[Asset(f"aisec://splits/{task_id}")],
            )
    return run_dag(dag)


def digests(report):
    return {k: v["sha256"] for k, v in report["details"]["splits"].items()}


def test_clean_data_passes(dag_run, files):
    assert task_states(dag_run)["validate_clean"] == "success"
    report = xcom(dag_run, "validate_clean")
    assert report["status"] == "pass"
    assert report["metrics"]["rows"] == files["rows"]
    assert report["metrics"]["expectations_evaluated"] == 3


def test_poisoned_data_fails_with_observed_values_and_tags(dag_run):
    assert task_states(dag_run)["validate_poisoned"] == "failed"
    report = xcom(dag_run, "validate_poisoned")
    ids = {f["id"] for f in report["findings"]}
    assert {"AISEC-DV-LABEL-SHIFT", "AISEC-DV-DUPLICATES"} <= ids
    assert {"OWASP-ML02", "AML.T0020"} <= set(report["tags"])
    assert "AISEC-DV-LABEL-SHIFT" in report["summary"]


def test_missing_data_fails_closed_naming_the_input(dag_run, files):
    assert task_states(dag_run)["validate_missing"] == "failed"
    report = xcom(dag_run, "validate_missing")
    assert report["status"] == "error"
    assert "gone.csv" in report["summary"]
    assert "does not exist" in report["summary"]


def test_same_seed_same_digests_different_seed_different(dag_run):
    states = task_states(dag_run)
    assert [states[t] for t in ("split_a", "split_b", "split_c")] == ["success"] * 3
    a, b, c = (xcom(dag_run, t) for t in ("split_a", "split_b", "split_c"))
    assert digests(a) == digests(b)
    assert set(digests(a)) == {"train", "test", "validation"}
    assert all(digests(a)[k] != digests(c)[k] for k in digests(a))
    for split in a["details"]["splits"].values():
        assert hashlib.sha256(open(split["path"], "rb").read()).hexdigest() == split["sha256"]
    assert a["details"]["parameters"]["seed"] == 42
