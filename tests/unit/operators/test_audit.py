"""DependencyAuditOperator in real ``dag.test()`` runs (no mocks)."""

from __future__ import annotations

import socket

import pendulum
import pytest

from airflow_aisec.core.osv import OSV_DB_ENV
from airflow_aisec.operators.audit import DependencyAuditOperator
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.osv_helpers import snapshot_path


@pytest.fixture
def refused_port():
    """A loopback port that is bound but never listens: connections are refused and no other server can
    take it while the test runs (never the internet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_constructor_validates():
    with pytest.raises(ValueError, match="fail_on must be one of"):
        DependencyAuditOperator(task_id="a", fail_on="severe")
    with pytest.raises(ValueError, match="service must be"):
        DependencyAuditOperator(task_id="a", service="nvd")
    op = DependencyAuditOperator(task_id="a", requirements="r.txt", fail_on="{{ params.level }}")
    assert op.requirements == ["r.txt"]
    assert {"requirements", "osv_db", "fail_on", "sbom_path"} <= set(op.template_fields)


@pytest.mark.integration
def test_audit_operator_in_a_real_dag_run(airflow_db, tmp_path, monkeypatch, refused_port):
    monkeypatch.delenv(OSV_DB_ENV, raising=False)
    vulnerable = tmp_path / "vulnerable.txt"
    vulnerable.write_text("requests==2.19.0\njinja2==2.11.2\n")
    clean = tmp_path / "clean.txt"
    clean.write_text("requests==2.32.3\n")
    sbom = tmp_path / "sbom.cdx.json"
    snapshot = str(snapshot_path())
    from airflow.sdk import DAG

    with DAG(
        "aisec_test_audit_operator",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        DependencyAuditOperator(task_id="audit_vulnerable", requirements=[str(vulnerable)], osv_db=snapshot)
        DependencyAuditOperator(task_id="audit_clean", requirements=[str(clean)], osv_db=snapshot, sbom_path=str(sbom))
        DependencyAuditOperator(
            task_id="audit_unreachable",
            requirements=[str(clean)],
            osv_url=f"http://127.0.0.1:{refused_port}/v1/query",
            timeout=5,
        )

    dag_run = run_dag(dag)
    assert task_states(dag_run) == {
        "audit_vulnerable": "failed",
        "audit_clean": "success",
        "audit_unreachable": "failed",
    }
    vuln = xcom(dag_run, "audit_vulnerable")  # pushed before the task failed
    assert vuln["status"] == "fail"
    assert {f["id"] for f in vuln["findings"]} == {"PYSEC-2018-28", "PYSEC-2023-74", "PYSEC-2021-66"}

    clean_report = xcom(dag_run, "audit_clean")
    assert clean_report["status"] == "pass" and clean_report["details"]["sbom"]["path"] == str(sbom)
    assert sbom.is_file()
    assert xcom(dag_run, "audit_clean", key="return_value")["status"] == "pass"

    unreachable = xcom(dag_run, "audit_unreachable")
    assert unreachable["status"] == "error"
    assert "unreachable" in unreachable["summary"]


@pytest.mark.integration
def test_offline_database_from_the_environment(airflow_db, tmp_path, monkeypatch):
    monkeypatch.setenv(OSV_DB_ENV, str(snapshot_path()))
    reqs = tmp_path / "r.txt"
    reqs.write_text("jinja2==2.11.2\n")
    from airflow.sdk import DAG

    with DAG("aisec_test_osv_env", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        DependencyAuditOperator(task_id="audit", requirements=[str(reqs)], fail_on="critical")
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"audit": "success"}  # below the gate: warn passes
    report = xcom(dag_run, "audit")
    assert report["status"] == "warn"
    assert [f["id"] for f in report["findings"]] == ["PYSEC-2021-66"]
    assert report["details"]["database"]["source"] == str(snapshot_path())


@pytest.mark.integration
def test_defaults_from_the_aisec_config_section(airflow_db, tmp_path, monkeypatch):
    """``[aisec] osv_db``, ``fail_on`` and ``report_dir`` (as AIRFLOW__AISEC__*) are the operator's defaults."""
    monkeypatch.delenv(OSV_DB_ENV, raising=False)
    monkeypatch.delenv("AISEC_REPORT_DIR", raising=False)
    monkeypatch.setenv("AIRFLOW__AISEC__OSV_DB", str(snapshot_path()))
    monkeypatch.setenv("AIRFLOW__AISEC__FAIL_ON", "critical")
    monkeypatch.setenv("AIRFLOW__AISEC__REPORT_DIR", str(tmp_path / "reports"))
    reqs = tmp_path / "r.txt"
    reqs.write_text("jinja2==2.11.2\n")
    from airflow.sdk import DAG

    with DAG("aisec_test_osv_conf", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        DependencyAuditOperator(task_id="audit", requirements=[str(reqs)])
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"audit": "success"}  # [aisec] fail_on=critical: the finding warns
    report = xcom(dag_run, "audit")
    assert report["status"] == "warn"
    assert report["details"]["database"]["source"] == str(snapshot_path())
    written = list((tmp_path / "reports" / "aisec_test_osv_conf").rglob("audit.json"))
    assert len(written) == 1
