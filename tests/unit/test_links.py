from __future__ import annotations

from types import SimpleNamespace

from airflow_aisec.links import AisecReportLink, report_url
from airflow_aisec.operators.base import AisecBaseOperator


def test_report_url_quotes_ids_and_adds_map_index_only_for_mapped_tasks():
    assert report_url("d", "manual__2026-01-01T00:00:00+00:00", "t") == (
        "/aisec/dags/d/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00/tasks/t"
    )
    assert (
        report_url("d", "r", "t", 3, base_url="http://h:8080/")
        == "http://h:8080/aisec/dags/d/runs/r/tasks/t?map_index=3"
    )


def test_every_aisec_operator_has_the_report_link():
    assert any(isinstance(link, AisecReportLink) for link in AisecBaseOperator.operator_extra_links)
    key = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1)
    assert AisecReportLink().get_link(None, ti_key=key).endswith("/aisec/dags/d/runs/r/tasks/t")
    assert AisecReportLink().name == "AI Security report"
