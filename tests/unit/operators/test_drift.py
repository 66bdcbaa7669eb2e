"""DriftTestOperator / ReferenceProfileOperator / DriftWindowSensor run for real through dag.test()."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from airflow.sdk import DAG, Asset

from airflow_aisec.operators.drift import DriftTestOperator, ReferenceProfileOperator
from airflow_aisec.sensors.drift import DriftWindowSensor
from tests.airflow_helpers import run_dag, task_states, xcom


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("drift_op")
    rng = np.random.default_rng(2)
    n = 3000
    ref = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "c": rng.choice(list("abc"), n)})
    same = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "c": rng.choice(list("abc"), n)})
    shifted = same.assign(x=same["x"] + 1.0, y=same["y"] * 3)
    paths = {k: str(base / f"{k}.parquet") for k in ("ref", "same", "shifted")}
    ref.to_parquet(paths["ref"])
    same.to_parquet(paths["same"])
    shifted.to_parquet(paths["shifted"])
    paths["profile"] = str(base / "ref.prof")
    paths["empty"] = str(base / "empty.parquet")
    ref.iloc[:0].to_parquet(paths["empty"])
    return paths


def _dag(dag_id: str, *tasks_factory) -> DAG:
    with DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
        prev = None
        for factory in tasks_factory:
            t = factory()
            if prev is not None:
                prev >> t
            prev = t
    return dag


def test_constructor_validates_arguments():
    with pytest.raises(ValueError, match="exactly one of profile_path or reference_path"):
        DriftTestOperator(task_id="t", current_path="x")
    with pytest.raises(ValueError, match="on_drift must be one of"):
        DriftTestOperator(task_id="t", current_path="x", profile_path="p", on_drift="explode")
    with pytest.raises(ValueError, match="correction must be one of"):
        DriftTestOperator(task_id="t", current_path="x", profile_path="p", correction="holm")
    with pytest.raises(ValueError, match="min_rows must be a positive integer"):
        DriftWindowSensor(task_id="s", path="x", min_rows=0)
    assert "current_path" in DriftTestOperator.template_fields


@pytest.mark.integration
def test_profile_then_drift_fail_warn_and_pass_through(airflow_db, data):
    asset = Asset("aisec://drift/test-op")
    dag = _dag(
        "aisec_test_drift_ops",
        lambda: ReferenceProfileOperator(task_id="profile", reference_path=data["ref"], profile_path=data["profile"]),
        lambda: DriftWindowSensor(task_id="wait", path=data["shifted"], min_rows=100, poke_interval=1, timeout=30),
        lambda: DriftTestOperator(
            task_id="no_drift",
            profile_path=data["profile"],
            current_path=data["same"],
            expected_profile_digest="{{ ti.xcom_pull(task_ids='profile', key='profile_digest') }}",
        ),
        lambda: DriftTestOperator(
            task_id="warn", profile_path=data["profile"], current_path=data["shifted"], on_drift="warn", outlets=[asset]
        ),
        lambda: DriftTestOperator(
            task_id="passthrough", profile_path=data["profile"], current_path=data["shifted"], on_drift="pass-through"
        ),
        lambda: DriftTestOperator(task_id="fail", reference_path=data["ref"], current_path=data["shifted"]),
    )
    run = run_dag(dag)
    states = task_states(run)
    assert states == {
        "profile": "success",
        "wait": "success",
        "no_drift": "success",
        "warn": "success",
        "passthrough": "success",
        "fail": "failed",
    }
    prof = xcom(run, "profile")
    assert prof["details"]["profile"]["digest"].startswith("sha256:")
    assert xcom(run, "profile", key="profile_digest") == prof["details"]["profile"]["digest"]
    assert xcom(run, "wait", key="return_value") == 3000
    ok = xcom(run, "no_drift")
    assert ok["status"] == "pass"
    assert ok["metrics"]["n_drifted"] == 0
    warn = xcom(run, "warn")
    assert warn["status"] == "warn"
    assert warn["details"]["dataset"]["drifted_features"] == ["x", "y"]
    feature = {f["name"]: f for f in warn["details"]["features"]}["x"]
    for key in ("name", "method", "statistic", "p_value", "p_corrected", "threshold", "n", "null_rate", "status"):
        assert key in feature
    assert feature["method"] == "ks"
    assert feature["status"] == "drifted"
    assert xcom(run, "passthrough")["status"] == "fail"  # verdict kept, task green
    failed = xcom(run, "fail")  # pushed before the task failed
    assert failed["status"] == "fail"
    assert failed["metrics"]["drift_share"] == pytest.approx(2 / 3)
    assert {f["id"] for f in failed["findings"]} >= {"AISEC-DRIFT-FEATURE", "AISEC-DRIFT-DATASET"}


@pytest.mark.integration
def test_tampered_profile_and_empty_window_fail_closed(airflow_db, data, tmp_path):
    tampered = tmp_path / "tampered.prof"
    from airflow_aisec.core.drift import build_and_save_profile

    build_and_save_profile(data["ref"], tampered)
    raw = bytearray(tampered.read_bytes())
    raw[-5] ^= 0xFF
    tampered.write_bytes(bytes(raw))
    dag = _dag(
        "aisec_test_drift_fail_closed",
        lambda: DriftTestOperator(task_id="tampered", profile_path=str(tampered), current_path=data["same"]),
    )
    dag2 = _dag(
        "aisec_test_drift_empty",
        lambda: DriftTestOperator(task_id="empty", reference_path=data["ref"], current_path=data["empty"]),
    )
    run = run_dag(dag)
    assert task_states(run) == {"tampered": "failed"}
    report = xcom(run, "tampered")
    assert report["status"] == "error"
    assert "payload hash mismatch" in report["summary"]
    run2 = run_dag(dag2)
    assert task_states(run2) == {"empty": "failed"}
    assert "has no rows" in xcom(run2, "empty")["summary"]


def test_asset_event_metadata_names_drifted_features(data, tmp_path):
    """emit_asset_events is given drifted features and share (checked without a DB through a fake context)."""
    asset = Asset("aisec://drift/unit")
    op = DriftTestOperator(
        task_id="d", profile_path=None, reference_path=data["ref"], current_path=data["shifted"], on_drift="warn"
    )
    op.outlets = [asset]

    class _Event:
        def __init__(self) -> None:
            self.extra: dict = {}

    class _TI:
        dag_id, run_id, task_id, map_index = "d", "r", "d", -1

        def __init__(self) -> None:
            self.pushed: dict = {}

        def xcom_push(self, key, value):
            self.pushed[key] = value

    events = {asset: _Event()}
    ti = _TI()
    result = op.execute({"ti": ti, "outlet_events": events})
    assert result["status"] == "warn"
    assert events[asset].extra["drifted_features"] == ["x", "y"]
    assert events[asset].extra["drift_share"] == pytest.approx(2 / 3)
    assert ti.pushed["aisec_report"]["status"] == "warn"
    assert Path(data["ref"]).exists()


def test_empty_current_path_goes_through_run_check():
    """An empty (e.g. badly templated) window is an ``error`` report published by ``run_check``, naming the input."""
    from airflow.sdk.exceptions import AirflowFailException

    op = DriftTestOperator(task_id="d", reference_path="/nowhere/ref.parquet", current_path="")

    class _TI:
        dag_id, run_id, task_id, map_index = "d", "r", "d", -1

        def __init__(self) -> None:
            self.pushed: dict = {}

        def xcom_push(self, key, value):
            self.pushed[key] = value

    ti = _TI()
    with pytest.raises(AirflowFailException, match="current_path is empty"):
        op.execute({"ti": ti, "outlet_events": {}})
    report = ti.pushed["aisec_report"]
    assert report["status"] == "error" and report["check"] == "drift"
    assert report["summary"] == "AisecInputError: current_path is empty"


class _FakeTI:
    dag_id, run_id, task_id, map_index = "d", "r", "d", -1

    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_partition_needs_a_partial_path_and_a_profile():
    with pytest.raises(ValueError, match="partition needs partial_path and profile_path"):
        DriftTestOperator(task_id="t", current_path="x", profile_path="p", partition="1/2")
    with pytest.raises(ValueError, match="partition needs partial_path and profile_path"):
        DriftTestOperator(task_id="t", current_path="x", reference_path="r", partition="1/2", partial_path="o")
    assert {"partition", "partial_path"} <= set(DriftTestOperator.template_fields)


def test_mapped_partitions_then_merge_equal_the_whole_window(data, tmp_path):
    """The partition tasks write statistics and no verdict; the merge gives the whole-window statistics."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_aisec.core.drift import build_and_save_profile, run_drift
    from airflow_aisec.operators.drift import DriftMergeOperator

    build_and_save_profile(data["ref"], tmp_path / "ref.prof")
    reports = []
    for k in (1, 2, 3):
        op = DriftTestOperator(
            task_id=f"p{k}",
            profile_path=str(tmp_path / "ref.prof"),
            current_path=data["shifted"],
            partition=f"{k}/3",
            partial_path=str(tmp_path / f"part-{k}.json"),
        )
        ti = _FakeTI()
        reports.append(op.execute({"ti": ti, "outlet_events": {}}))
        assert reports[-1]["status"] == "pass" and "statistics written" in reports[-1]["summary"]
        # 1,000-row partitions against an exact profile of 3,000 values: the report says the split cannot pay
        assert "fewer, larger partitions" in reports[-1]["details"]["partial"]["advice"]
    merge = DriftMergeOperator(task_id="m", partials=reports)
    ti = _FakeTI()
    with pytest.raises(AirflowFailException, match="dataset drift"):
        merge.execute({"ti": ti, "outlet_events": {}})
    merged = ti.pushed["aisec_report"]
    whole = run_drift(data["shifted"], profile=tmp_path / "ref.prof").to_dict()
    assert merged["status"] == whole["status"] == "fail"
    stats = [(f["name"], f["statistic"], f["p_value"]) for f in whole["details"]["features"]]
    assert [(f["name"], f["statistic"], f["p_value"]) for f in merged["details"]["features"]] == stats
    # two partitions of three: no verdict, an error report
    short = DriftMergeOperator(task_id="m2", partials=[str(tmp_path / "part-1.json"), str(tmp_path / "part-2.json")])
    ti = _FakeTI()
    with pytest.raises(AirflowFailException, match="do not tile"):
        short.execute({"ti": ti, "outlet_events": {}})
    assert ti.pushed["aisec_report"]["status"] == "error"


def test_merge_refuses_partials_that_are_not_what_the_partition_tasks_reported(data, tmp_path):
    """Partials replaced on shared storage by valid partials of a clean window (same shape, same profile)
    would merge to *no drift*; given the partition tasks' reports (``parts.output``), the merge refuses."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_aisec.core.drift import build_and_save_profile
    from airflow_aisec.operators.drift import DriftMergeOperator

    build_and_save_profile(data["ref"], tmp_path / "ref.prof")

    def partition(k: int, window: str) -> dict:
        op = DriftTestOperator(
            task_id=f"p{k}",
            profile_path=str(tmp_path / "ref.prof"),
            current_path=data[window],
            partition=f"{k}/2",
            partial_path=str(tmp_path / f"part-{k}.json"),
        )
        return op.execute({"ti": _FakeTI(), "outlet_events": {}})

    reports = [partition(k, "shifted") for k in (1, 2)]
    for k in (1, 2):
        partition(k, "same")  # the swap: clean partials written over the drifted ones
    ti = _FakeTI()
    with pytest.raises(AirflowFailException, match="is not the partial its partition task reported"):
        DriftMergeOperator(task_id="m", partials=reports).execute({"ti": ti, "outlet_events": {}})
    assert ti.pushed["aisec_report"]["status"] == "error"
    paths = [r["details"]["partial"]["path"] for r in reports]
    ti = _FakeTI()  # bare paths carry no binding: the documented case for partials only the pipeline writes
    DriftMergeOperator(task_id="m2", partials=paths).execute({"ti": ti, "outlet_events": {}})
    assert ti.pushed["aisec_report"]["status"] == "pass"
