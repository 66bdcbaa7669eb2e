from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_aisec.plugins.metrics import CONTENT_TYPE, METRICS, render
from airflow_aisec.report import Report


@dataclass
class Row:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    report: dict[str, Any]
    timestamp: datetime | None = None


def _audit() -> dict[str, Any]:
    r = Report.start("dependency_audit", "requirements.txt")
    r.add_finding("PYSEC-1", "critical", "rce", "pyyaml==5.3")
    r.add_finding("PYSEC-2", "high", "leak", "requests==2.19.0")
    r.add_finding("PYSEC-3", "high", "leak", "urllib3==1.0")
    return r.finish().to_dict()


def _drift(share: float) -> dict[str, Any]:
    r = Report.start("drift", "x")
    r.metrics["drift_share"] = share
    return r.finish("warn").to_dict()


def parse(text: str) -> dict[str, float]:
    """Exposition lines → {'name{labels}': value}; checks every sample line's syntax."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.fullmatch(r'([a-z0-9_]+)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (\S+)', line)
        assert m, f"bad sample line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def test_render_exports_every_family_with_help_and_type():
    text = render([], stored=0)
    for name, (kind, _) in METRICS.items():
        assert f"# TYPE {name} {kind}\n" in text
        assert f"# HELP {name} " in text
    assert parse(text) == {"aisec_reports_stored": 0.0}
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_render_derives_series_from_latest_reports():
    integ = Report.start("integrity", "/m")
    integ.add_finding("AISEC-INT-CHANGED", "critical", "changed", "w.bin")
    secrets = Report.start("secrets", "nb/")
    secrets.add_finding("S1", "high", "aws key", "a.py:1")
    secrets.add_finding("S2", "info", "entropy", "b.py:1")
    latency = Report.start("inference_audit", "http://x")
    latency.metrics["latency_p95_ms"] = 250.0
    ts = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [
        Row("d1", "r1", "audit", -1, _audit(), ts),
        Row("d1", "r1", "drift", 2, _drift(0.25)),
        Row("d1", "r1", "integrity", -1, integ.finish().to_dict()),
        Row("d1", "r1", "secrets", -1, secrets.finish().to_dict()),
        Row("d2", "r9", "latency", -1, latency.finish("pass").to_dict()),
    ]
    s = parse(render(rows, stored=42))
    assert s["aisec_reports_stored"] == 42
    assert s['aisec_vulnerabilities{dag_id="d1",task_id="audit",severity="critical"}'] == 1
    assert s['aisec_vulnerabilities{dag_id="d1",task_id="audit",severity="high"}'] == 2
    assert s['aisec_check_failed{dag_id="d1",task_id="audit",check="dependency_audit"}'] == 1
    assert s['aisec_check_status{dag_id="d1",task_id="audit",check="dependency_audit",status="fail"}'] == 1
    assert s['aisec_check_status{dag_id="d1",task_id="audit",check="dependency_audit",status="pass"}'] == 0
    assert s['aisec_check_last_report_timestamp_seconds{dag_id="d1",task_id="audit",check="dependency_audit"}'] == (
        ts.timestamp()
    )
    assert s['aisec_drift_share{dag_id="d1",task_id="drift",map_index="2"}'] == 0.25
    assert s['aisec_integrity_failure{dag_id="d1",task_id="integrity",check="integrity"}'] == 1
    assert s['aisec_secrets_found{dag_id="d1",task_id="secrets"}'] == 1  # info findings are not secrets
    assert s['aisec_inference_latency_p95_seconds{dag_id="d2",task_id="latency",check="inference_audit"}'] == 0.25
    assert s['aisec_report_metric{dag_id="d2",task_id="latency",check="inference_audit",name="latency_p95_ms"}'] == 250
    assert not any(k.startswith("aisec_vulnerabilities") and 'task_id="drift"' in k for k in s)


def test_label_values_are_escaped():
    report = _drift(0.5)
    text = render([Row('dag"x\\y\nz', "r", "t", -1, report)], stored=1)
    assert 'dag_id="dag\\"x\\\\y\\nz"' in text
    parse(text)  # still one valid sample per line
