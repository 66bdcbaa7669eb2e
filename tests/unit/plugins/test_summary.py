from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_aisec.plugins.summary import (
    drift_share,
    latency_p95_seconds,
    max_severity,
    overview,
    retrain_decision,
    top_drift_tasks,
)
from airflow_aisec.report import Report


@dataclass
class Row:
    dag_id: str
    task_id: str
    report: dict[str, Any]
    run_id: str = "r"
    map_index: int = -1


def rep(check: str, status: str = "pass", findings: tuple[str, ...] = (), **metrics: float) -> dict[str, Any]:
    r = Report.start(check, "s")
    for i, sev in enumerate(findings):
        r.add_finding(f"F{i}", sev, "t")
    r.metrics.update(metrics)
    return r.finish(status).to_dict()


def test_overview_counts_only_what_each_check_means():
    agg = overview(
        [
            Row("a", "audit", rep("dependency_audit", "fail", ("critical", "high", "high"))),
            Row("a", "integ", rep("integrity", "fail", ("critical",))),
            Row("a", "prov", rep("provenance", "error")),
            Row("a", "ok", rep("model_scan", "pass")),
            Row("b", "sec", rep("secrets", "fail", ("high", "info"))),
            Row("b", "drift", rep("drift", "warn", ("medium",), drift_share=0.4)),
        ]
    )
    assert agg.tasks == 6
    assert agg.open_vulnerabilities == {"critical": 1, "high": 2, "medium": 0, "low": 0, "info": 0}
    assert [r.task_id for r in agg.trust_failures] == ["integ", "prov"]
    assert agg.secrets_found == 1
    assert agg.severity_counts["critical"] == 2
    assert agg.status_counts == {"fail": 3, "error": 1, "pass": 1, "warn": 1}
    assert agg.by_dag["a"]["fail"] == 2
    assert agg.drift_tasks == [("b", "drift")]
    assert agg.drift_latest == {("b", "drift"): 0.4}


def test_top_drift_tasks_keeps_the_most_drifting_dags():
    rows = [Row(f"d{i}", "drift", rep("drift", "warn", drift_share=i / 10)) for i in range(5)]
    rows.append(Row("d4", "drift2", rep("drift", "pass", drift_share=0.0)))
    assert top_drift_tasks(overview(rows), 2) == [("d3", "drift"), ("d4", "drift"), ("d4", "drift2")]


def test_metric_readers_accept_documented_names_and_ignore_others():
    assert drift_share({"metrics": {"drift_share": 0.25}}) == 0.25
    assert drift_share({"metrics": {"drift_share": True}}) is None
    assert drift_share({"metrics": {}}) is None
    assert latency_p95_seconds({"metrics": {"latency_p95_ms": 1500}}) == 1.5
    assert latency_p95_seconds({"metrics": {"latency_p95_seconds": 0.2}}) == 0.2
    assert latency_p95_seconds({"metrics": {"latency_mean_ms": 3}}) is None
    assert max_severity([{"severity": "low"}, {"severity": "high"}]) == "high"
    assert max_severity([]) is None
    assert retrain_decision({"details": {"decision": "retrain"}, "summary": "x"}) == "retrain"
    assert retrain_decision({"summary": "kept the model"}) == "kept the model"
