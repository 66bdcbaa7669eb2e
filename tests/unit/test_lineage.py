"""OpenLineage: dataset naming, assertions, and the COMPLETE events Airflow's provider emits in a dag.test() run."""

from __future__ import annotations

import json

import pendulum
import pytest

from airflow_aisec.lineage import REPORT_FACET, AisecLineageMixin, assertions, dataset_name, report_digest


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/data/in.csv", ("file", "/data/in.csv")),
        ("file:///data/a%20b.csv", ("file", "/data/a b.csv")),
        ("s3://bucket/path/to/x.parquet", ("s3://bucket", "path/to/x.parquet")),
        ("gs://b/k", ("gs://b", "k")),
        ("aisec://models/clf", None),
        ("", None),
    ],
)
def test_dataset_names_follow_openlineage_conventions(uri, expected):
    assert dataset_name(uri) == expected


def test_relative_paths_become_absolute_file_datasets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dataset_name("data/x.csv") == ("file", str(tmp_path / "data" / "x.csv"))


def drift_report(status="fail"):
    return {
        "check": "drift",
        "status": status,
        "summary": "2 of 3 features drifted",
        "findings": [],
        "details": {
            "features": [
                {"name": "x", "method": "ks", "drifted": True, "status": "drifted"},
                {"name": "y", "method": "psi", "drifted": False, "status": "ok"},
                {"name": "z", "method": None, "drifted": False, "status": "missing"},
                {"name": "w", "method": None, "drifted": False, "status": "skipped"},
            ]
        },
    }


def test_drift_assertions_per_column_and_none_for_an_undecided_report():
    assert assertions(drift_report()) == [
        {"assertion": "no_drift:ks", "success": False, "column": "x"},
        {"assertion": "no_drift:psi", "success": True, "column": "y"},
        {"assertion": "no_drift:missing", "success": False, "column": "z"},  # a missing column never passes
    ]
    assert assertions(drift_report("error")) == []


def test_validation_assertions_cover_expectations_and_other_findings():
    report = {
        "check": "data_validation",
        "status": "fail",
        "details": {"gx": {"results": [{"type": "expect_column_to_exist", "column": "target", "success": True}]}},
        "findings": [
            {"id": "AISEC-DV-EXPECTATION", "severity": "high", "location": "target"},
            {"id": "AISEC-DV-LABEL-SHIFT", "severity": "high", "location": "target"},
            {"id": "AISEC-DV-NOTE", "severity": "info", "location": "table"},
        ],
    }
    assert assertions(report) == [
        {"assertion": "expect_column_to_exist", "success": True, "column": "target"},
        {"assertion": "AISEC-DV-LABEL-SHIFT", "success": False, "column": "target"},
    ]


def test_without_a_report_there_are_no_facets():
    class Op(AisecLineageMixin):
        lineage_inputs = ("path",)
        path = "/x"

    assert Op().get_openlineage_facets_on_complete(None) is None


def test_report_digest_is_canonical():
    assert report_digest({"b": 1, "a": [1, 2]}) == report_digest({"a": [1, 2], "b": 1})


@pytest.fixture
def openlineage_file_transport(tmp_path, monkeypatch):
    """Airflow's OpenLineage provider writing events to a file (its caches cleared before and after)."""
    from airflow.providers.openlineage import conf

    events = tmp_path / "openlineage.jsonl"
    monkeypatch.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps({"type": "file", "log_file_path": str(events), "append": True})
    )
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "aisec-test")

    def clear():
        for fn in vars(conf).values():
            if callable(getattr(fn, "cache_clear", None)):
                fn.cache_clear()

    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener
    from airflow.sdk.listener import get_listener_manager

    clear()
    listener, manager = get_openlineage_listener(), get_listener_manager()
    registered = manager.pm.is_registered(listener)  # only when the plugin loaded with a transport set
    listener.adapter._client = None  # a fresh client reads the transport above
    manager.add_listener(listener)
    yield events
    if not registered:
        manager.pm.unregister(listener)
    listener.adapter._client = None
    clear()


def complete_events(path):
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = {}
    for e in events:
        if e["eventType"] in ("COMPLETE", "FAIL"):
            out[e["job"]["name"].rsplit(".", 1)[-1]] = e
    return out


@pytest.mark.integration
def test_complete_events_carry_datasets_assertions_and_the_report_facet(
    airflow_db, tmp_path, openlineage_file_transport
):
    from airflow.sdk import DAG

    from airflow_aisec.operators.drift import DriftTestOperator, ReferenceProfileOperator
    from airflow_aisec.operators.validation import DataValidationOperator
    from tests.airflow_helpers import run_dag, task_states, xcom

    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    ref.write_text("a,b\n" + "".join(f"{i % 50},{i % 7}\n" for i in range(1000)))
    cur.write_text("a,b\n" + "".join(f"{i % 50 + 40},{i % 7}\n" for i in range(1000)))  # a shifted, b same
    profile = tmp_path / "ref.prof"
    suite = [
        {"type": "expect_column_to_exist", "kwargs": {"column": "a"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0, "max_value": 60}},
    ]
    with DAG("aisec_test_lineage", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        DataValidationOperator(task_id="validate", dataset_uri=str(cur), expectations=suite)
        prof = ReferenceProfileOperator(task_id="profile", reference_path=str(ref), profile_path=str(profile))
        drift = DriftTestOperator(
            task_id="drift", profile_path=str(profile), current_path=str(cur), on_drift="pass-through"
        )
        prof >> drift  # validate runs on its own (it fails: its FAIL event is checked)

    run = run_dag(dag)
    assert task_states(run) == {"validate": "failed", "profile": "success", "drift": "success"}
    events = complete_events(openlineage_file_transport)
    assert {"validate", "profile", "drift"} <= set(events)

    v = events["validate"]
    assert v["eventType"] == "FAIL"
    [dataset] = v["inputs"]
    assert (dataset["namespace"], dataset["name"]) == ("file", str(cur))
    checks = dataset["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {(c["assertion"], c["column"], c["success"]) for c in checks} == {
        ("expect_column_to_exist", "a", True),
        ("expect_column_values_to_be_between", "a", False),
    }
    facet = v["run"]["facets"][REPORT_FACET]
    report = xcom(run, "validate")
    assert (facet["check"], facet["status"]) == ("data_validation", "fail")
    assert facet["summary"] == report["summary"] and facet["digest"] == f"sha256:{report_digest(report)}"

    p = events["profile"]
    assert p["eventType"] == "COMPLETE"
    assert [(d["namespace"], d["name"]) for d in p["inputs"]] == [("file", str(ref))]
    assert [(d["namespace"], d["name"]) for d in p["outputs"]] == [("file", str(profile))]

    d = events["drift"]
    assert d["eventType"] == "COMPLETE"
    assert [x["name"] for x in d["inputs"]] == [str(cur), str(profile)]
    drift_checks = {
        c["column"]: c["success"] for c in d["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    }
    assert drift_checks == {"a": False, "b": True}
    assert d["run"]["facets"][REPORT_FACET]["status"] == "fail"  # pass-through: the verdict is kept
    assert "dataQualityAssertions" not in d["inputs"][1].get("inputFacets", {})
