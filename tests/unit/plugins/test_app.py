"""The /aisec app inside Airflow's real API server app (real DB, real auth manager, reports from real runs)."""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.airflow_helpers import admin_jwt, api_test_client, run_dag, task_states, xcom

UI_DAG_FILE = Path(__file__).resolve().parents[2] / "integration" / "ui_dags" / "aisec_ui_demo.py"


def load_ui_demo_dag():
    spec = importlib.util.spec_from_file_location("aisec_ui_demo_dag", UI_DAG_FILE)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DAG


@pytest.fixture(scope="module")
def runs(airflow_db):
    """Two runs of the demo DAG: a clean one, then one with findings (the latest)."""
    dag = load_ui_demo_dag()
    clean = run_dag(dag, conf={"clean": True})
    dirty = run_dag(dag)
    return clean, dirty


@pytest.fixture(scope="module")
def client(runs):
    with api_test_client() as c:
        yield c


@pytest.fixture(scope="module")
def token(client):
    return admin_jwt()


@pytest.fixture(scope="module")
def auth(token):
    return {"Authorization": f"Bearer {token}"}


def run_path(dag_run) -> str:
    return f"/aisec/dags/{dag_run.dag_id}/runs/{quote(dag_run.run_id, safe='')}"


ROUTES = [
    "/aisec/",
    "/aisec/metrics",
    "/aisec/dags/d/runs/r",
    "/aisec/dags/d/runs/r/tasks/t",
    "/aisec/api/dags/d/runs/r/tasks/t",
]


@pytest.mark.parametrize("path", ROUTES)
def test_unauthenticated_requests_are_refused(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403
    assert client.get(path, cookies={"_token": "forged"}).status_code == 403


def test_runs_stored_reports_with_findings(runs):
    clean, dirty = runs
    assert task_states(clean) == dict.fromkeys(task_states(clean), "success")
    assert task_states(dirty)["check_vulns"] == "failed"
    assert xcom(dirty, "check_vulns")["status"] == "fail"


def test_overview_shows_latest_status_counts_and_drift_chart(client, auth, runs):
    # the session DB may also hold reports of other tests' DAGs: look at this DAG only
    r = client.get("/aisec/?dag_id=aisec_ui_demo", headers=auth)
    assert r.status_code == 200
    html = r.text
    assert re.search(r'data-testid="vulns">2<', html)  # latest audit: 1 critical + 1 high
    assert re.search(r'data-testid="trust-failures">1<', html)
    assert re.search(r'data-testid="secrets">1<', html)
    assert 'data-testid="retrain-decision">retrain<' in html
    assert "weights.bin changed" not in html  # findings are on the run/task pages, the overview summarises
    assert "integrity fail: 1 finding(s)" in html
    assert "drift share over the last 20 runs of aisec_ui_demo" in html
    assert "cdn" not in html.lower()
    assert "<script" not in html
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        ET.fromstring(svg)  # well-formed


def test_overview_paginates_and_filters(client, auth, runs):
    r = client.get("/aisec/?dag_id=aisec_ui_demo&per_page=2&page=2", headers=auth)
    assert r.status_code == 200
    assert "page 2 of 3 (6 rows)" in r.text
    assert "dag_id=aisec_ui_demo" in r.text.split('data-testid="pager"')[1]  # pager keeps the filter
    assert len(re.findall(r'<tr class="[^"]*">\s*<td><a href="\?dag_id=', r.text)) == 2
    assert client.get("/aisec/?per_page=100000", headers=auth).status_code == 422
    r = client.get("/aisec/?dag_id=no_such_dag", headers=auth)
    assert "No aisec reports yet" in r.text


def test_run_page_lists_every_report_with_findings(client, auth, runs):
    _, dirty = runs
    r = client.get(run_path(dirty), headers=auth)
    assert r.status_code == 200
    assert r.text.count('<section class="report"') == 6
    for text in ("PYSEC-2018-28", "GHSA-x84v-xcm2-53pg", "weights.bin changed since the manifest", "AWS access key"):
        assert text in r.text
    assert 'href="/dags/aisec_ui_demo/runs/' in r.text
    assert 'target="_top"' in r.text


def test_run_page_of_unknown_run_is_empty(client, auth):
    r = client.get("/aisec/dags/aisec_ui_demo/runs/nope", headers=auth)
    assert r.status_code == 200
    assert 'data-testid="empty"' in r.text


def test_task_page_renders_drift_table_and_chart_and_accepts_the_ui_placeholder(client, auth, token, runs):
    _, dirty = runs
    # the UI leaves {MAP_INDEX} unsubstituted for unmapped tasks; the UI session cookie authenticates
    r = client.get(f"{run_path(dirty)}/tasks/check_drift?map_index={{MAP_INDEX}}", cookies={"_token": token})
    assert r.status_code == 200
    assert 'data-testid="details-features"' in r.text
    assert "Drift share: 75%" in r.text
    assert r.text.count('<tr class="hot">') == 3  # income, score and tenure drifted
    assert "features: statistic per feature" in r.text


def test_task_page_and_json_of_missing_report_are_404(client, auth, runs):
    _, dirty = runs
    assert client.get(f"{run_path(dirty)}/tasks/nope", headers=auth).status_code == 404
    assert client.get("/aisec/api/dags/aisec_ui_demo/runs/x/tasks/check_vulns", headers=auth).status_code == 404


def test_json_api_returns_the_stored_report(client, auth, runs):
    _, dirty = runs
    r = client.get(f"/aisec/api/dags/aisec_ui_demo/runs/{quote(dirty.run_id, safe='')}/tasks/check_vulns", headers=auth)
    assert r.status_code == 200
    assert r.json() == xcom(dirty, "check_vulns")


def test_metrics_endpoint_serves_prometheus_text(client, auth, runs):
    r = client.get("/aisec/metrics", headers=auth)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert int(re.search(r"^aisec_reports_stored (\d+)$", text, re.M).group(1)) >= 12
    assert 'aisec_vulnerabilities{dag_id="aisec_ui_demo",task_id="check_vulns",severity="critical"} 1' in text
    assert 'aisec_drift_share{dag_id="aisec_ui_demo",task_id="check_drift"} 0.75' in text
    assert 'aisec_integrity_failure{dag_id="aisec_ui_demo",task_id="check_integrity",check="integrity"} 1' in text
    assert 'aisec_secrets_found{dag_id="aisec_ui_demo",task_id="check_secrets"} 1' in text
    assert (
        'aisec_inference_latency_p95_seconds{dag_id="aisec_ui_demo",task_id="check_latency",check="inference_audit"} 0.95'
        in text
    )


def test_extra_link_points_at_the_task_report_page(runs, client, auth):
    _, dirty = runs
    link = xcom(dirty, "check_vulns", key="_link_AisecReportLink")
    assert link == f"{run_path(dirty)}/tasks/check_vulns"
    assert client.get(link, headers=auth).status_code == 200


def test_plugin_registers_views_through_the_entry_point(client, auth):
    r = client.get("/api/v2/plugins", headers=auth)
    plugin = next(p for p in r.json()["plugins"] if p["name"] == "aisec")
    views = {v["destination"]: v for v in plugin["external_views"]}
    assert views["nav"]["name"] == "AI Security"
    assert views["nav"]["href"] == "/aisec/"
    assert views["dag_run"]["href"] == "/aisec/dags/{DAG_ID}/runs/{RUN_ID}"
    assert views["task_instance"]["href"].startswith("/aisec/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{TASK_ID}")
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/aisec"


def test_viewer_role_may_scrape_and_a_user_without_role_is_forbidden(client, runs):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    am = get_auth_manager()
    viewer = am.generate_jwt(SimpleAuthManagerUser(username="prometheus", role="VIEWER"))
    nobody = am.generate_jwt(SimpleAuthManagerUser(username="nobody", role=None))
    r = client.get("/aisec/metrics", headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 200
    assert "aisec_check_status{" in r.text
    assert client.get("/aisec/metrics", headers={"Authorization": f"Bearer {nobody}"}).status_code == 403
    assert client.get("/aisec/", headers={"Authorization": f"Bearer {nobody}"}).status_code == 403
