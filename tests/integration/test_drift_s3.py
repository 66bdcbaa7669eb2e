"""Drift, profile and performance operators read object storage through an Airflow connection (moto S3
server on loopback), and without one they fail with a clear error instead of using the environment's
credentials (which are set here, valid for the server, and must not be used)."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
import pandas as pd
import pendulum
import pytest
from airflow.sdk import DAG

from airflow_aisec.operators.drift import DriftTestOperator, ReferenceProfileOperator
from airflow_aisec.operators.monitoring import MultivariateDriftOperator, PerformanceEstimateOperator
from airflow_aisec.operators.performance import ModelPerformanceOperator
from airflow_aisec.sensors.drift import DriftWindowSensor
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.fixtures.moto_server import moto_server  # noqa: F401

pytestmark = pytest.mark.integration
CONN_ID = "aisec_drift_s3"
START = pendulum.datetime(2026, 1, 1, tz="UTC")


def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.fixture
def bucket(moto_server, monkeypatch):  # noqa: F811
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": moto_server.endpoint_url, "region_name": "us-east-1"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    # ambient credentials that would work against the server: the operators must not pick them up
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", moto_server.endpoint_url),
    ):
        monkeypatch.setenv(name, value)
    name = f"drift-{uuid.uuid4().hex[:8]}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=name)
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 3000), "y": rng.normal(5, 2, 3000)})
    shifted = pd.DataFrame({"x": rng.normal(1.5, 1, 3000), "y": rng.normal(5, 2, 3000)})
    labels = rng.integers(0, 2, 400)
    perf = pd.DataFrame({"label": labels, "pred": labels, "score": labels * 0.8 + 0.1})
    probs = pd.DataFrame({"label": labels, "p0": 1 - (labels * 0.8 + 0.1), "p1": labels * 0.8 + 0.1})
    s3.put_object(Bucket=name, Key="probs.parquet", Body=_parquet(probs))
    s3.put_object(Bucket=name, Key="ref.parquet", Body=_parquet(ref))
    s3.put_object(Bucket=name, Key="live/2026-01-01.parquet", Body=_parquet(shifted))
    s3.put_object(Bucket=name, Key="perf.parquet", Body=_parquet(perf))
    return s3, name


def test_profile_drift_performance_read_s3_through_the_connection(airflow_db, bucket):
    s3, name = bucket
    base = f"s3://{name}"
    with DAG("t_drift_s3", schedule=None, start_date=START) as dag:
        wait = DriftWindowSensor(
            task_id="wait",
            path=f"{base}/live/2026-01-01.parquet",
            min_rows=100,
            storage_conn_id=CONN_ID,
            poke_interval=1,
            timeout=60,
        )
        build = ReferenceProfileOperator(
            task_id="profile",
            reference_path=f"{base}/ref.parquet",
            profile_path=f"{base}/profiles/ref.prof",
            storage_conn_id=CONN_ID,
        )
        drift = DriftTestOperator(
            task_id="drift",
            profile_path=f"{base}/profiles/ref.prof",
            current_path=f"{base}/live/2026-01-01.parquet",
            storage_conn_id=CONN_ID,
            on_drift="pass-through",
        )
        perf = ModelPerformanceOperator(
            task_id="perf",
            data_path=f"{base}/perf.parquet",
            label_column="label",
            prediction_column="pred",
            score_column="score",
            baseline={"accuracy": 0.9},
            storage_conn_id=CONN_ID,
        )
        multivariate = MultivariateDriftOperator(
            task_id="multivariate",
            reference_path=f"{base}/ref.parquet",
            current_path=f"{base}/live/2026-01-01.parquet",
            max_rows=500,
            on_drift="pass-through",
            storage_conn_id=CONN_ID,
        )
        estimate = PerformanceEstimateOperator(
            task_id="estimate",
            reference_path=f"{base}/probs.parquet",
            current_path=f"{base}/probs.parquet",
            proba_columns=["p0", "p1"],
            label_column="label",
            classes=[0, 1],
            storage_conn_id=CONN_ID,
        )
        wait >> build >> drift >> perf >> multivariate >> estimate
    dr = run_dag(dag)
    assert task_states(dr) == {
        "wait": "success",
        "profile": "success",
        "drift": "success",
        "perf": "success",
        "multivariate": "success",
        "estimate": "success",
    }
    assert xcom(dr, "multivariate")["status"] == "fail"  # x is shifted: read from the bucket
    assert xcom(dr, "estimate")["status"] in ("pass", "warn")
    stored = s3.get_object(Bucket=name, Key="profiles/ref.prof")["Body"].read()
    assert stored.startswith(b"AISEC")  # the profile was written to the bucket, not to a local "s3:" folder
    profile_digest = xcom(dr, "profile")["details"]["profile"]["digest"]
    report = xcom(dr, "drift")
    assert report["status"] == "fail" and report["details"]["dataset"]["drifted_features"] == ["x"]
    assert report["details"]["profile"]["digest"] == profile_digest
    assert xcom(dr, "perf")["metrics"]["accuracy"] == 1.0
    assert xcom(dr, "wait", key="return_value") == 3000


def test_without_a_connection_they_fail_closed_not_on_ambient_credentials(airflow_db, bucket):
    _, name = bucket
    base = f"s3://{name}"
    with DAG("t_drift_s3_noconn", schedule=None, start_date=START) as dag:
        ReferenceProfileOperator(
            task_id="profile", reference_path=f"{base}/ref.parquet", profile_path=f"{base}/profiles/x.prof"
        )
        DriftTestOperator(
            task_id="drift", reference_path=f"{base}/ref.parquet", current_path=f"{base}/live/2026-01-01.parquet"
        )
        ModelPerformanceOperator(
            task_id="perf",
            data_path=f"{base}/perf.parquet",
            label_column="label",
            prediction_column="pred",
            baseline={"accuracy": 0.9},
        )
        DriftTestOperator(
            task_id="drift_bad_conn",
            reference_path=f"{base}/ref.parquet",
            current_path=f"{base}/live/2026-01-01.parquet",
            storage_conn_id="aisec_no_such_connection",
        )
        DriftWindowSensor(
            task_id="wait", path=f"{base}/live/2026-01-01.parquet", min_rows=1, poke_interval=1, timeout=5
        )
        MultivariateDriftOperator(
            task_id="multivariate", reference_path=f"{base}/ref.parquet", current_path=f"{base}/live/2026-01-01.parquet"
        )
        PerformanceEstimateOperator(
            task_id="estimate",
            reference_path=f"{base}/probs.parquet",
            current_path=f"{base}/probs.parquet",
            proba_columns=["p0", "p1"],
            label_column="label",
        )
    dr = run_dag(dag)
    states = task_states(dr)
    assert states == {
        "profile": "failed",
        "drift": "failed",
        "perf": "failed",
        "drift_bad_conn": "failed",
        "wait": "failed",
        "multivariate": "failed",
        "estimate": "failed",
    }
    for task_id in ("profile", "drift", "perf", "multivariate", "estimate"):
        report = xcom(dr, task_id)
        assert report["status"] == "error"
        assert "is object storage: give storage_conn_id" in report["summary"], report["summary"]
    assert "connection 'aisec_no_such_connection' is not defined" in xcom(dr, "drift_bad_conn")["summary"]


def test_a_partitioned_window_under_a_prefix_merges_to_the_whole_window(bucket, tmp_path):
    """A window of several objects under a prefix (the CLI's case: the environment's credentials): each
    partition reads the row groups of its range, across objects, and the merge is the whole-window test."""
    from airflow_aisec.core.drift import DriftConfig, run_drift
    from airflow_aisec.core.drift_partition import merge_partials, partial_drift
    from airflow_aisec.core.drift_profile import build_profile, save_profile

    s3, name = bucket
    rng = np.random.default_rng(11)
    save_profile(build_profile(pd.DataFrame({"x": rng.normal(0, 1, 2000)})), tmp_path / "ref.prof")
    for i in range(3):
        buf = io.BytesIO()
        pd.DataFrame({"x": rng.normal(0.3 * i, 1, 700)}).to_parquet(buf, index=False, row_group_size=250)
        s3.put_object(Bucket=name, Key=f"window/{i}.parquet", Body=buf.getvalue())
    window = f"s3://{name}/window"
    whole = run_drift(window, profile=tmp_path / "ref.prof", config=DriftConfig(), workers=1)
    parts = [partial_drift(window, profile=tmp_path / "ref.prof", partition=f"{k}/4") for k in range(1, 5)]
    assert [p["partition"]["row_stop"] - p["partition"]["row_start"] for p in parts] == [525] * 4
    merged = merge_partials(parts)
    assert whole.status == merged.status == "fail"
    got, want = merged.to_dict()["details"]["features"][0], whole.to_dict()["details"]["features"][0]
    assert (got["statistic"], got["p_value"]) == (want["statistic"], want["p_value"])
