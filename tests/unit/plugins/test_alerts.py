"""deploy/prometheus/alerts.yml: every rule is well-formed and uses only metrics /aisec/metrics exports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from airflow_aisec.plugins.metrics import METRICS

ALERTS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"
PROMQL_WORDS = {
    # aggregations, functions and keywords used (or plausible) in the rules
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "offset", "bool", "absent", "avg_over_time", "max_over_time", "min_over_time",
    "rate", "increase", "delta", "changes", "time", "topk", "bottomk", "quantile_over_time",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers, groupings, durations and strings removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?", n)}


def rules() -> list[dict]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_metric_names_parser_ignores_labels_functions_and_durations():
    expr = 'max by (dag_id) (avg_over_time(aisec_x{severity=~"a|b"}[1d] offset 1h)) > 2 * foo_bar'
    assert metric_names(expr) == {"aisec_x", "foo_bar"}


def test_alert_rules_cover_the_threats_of_the_issue():
    names = {r["alert"] for r in rules()}
    used = set().union(*(metric_names(r["expr"]) for r in rules()))
    for metric in (
        "aisec_drift_share",
        "aisec_vulnerabilities",
        "aisec_integrity_failure",
        "aisec_secrets_found",
        "aisec_inference_latency_p95_seconds",
    ):
        assert metric in used, f"no alert rule uses {metric}"
    assert len(names) == len(rules()), "alert names must be unique"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_every_rule_references_only_exported_metrics(rule):
    used = metric_names(rule["expr"])
    assert used, f"{rule['alert']} references no metric"
    assert used <= set(METRICS), f"{rule['alert']} uses metrics not exported: {sorted(used - set(METRICS))}"
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"]
