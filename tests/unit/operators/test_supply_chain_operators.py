"""DependencyAuditOperator and SecretsScanOperator in real ``dag.test()`` runs (no mocks)."""

from __future__ import annotations

import json
import logging
import socket

import pendulum
import pytest

from airflow_aisec.core.osv import OSV_DB_ENV
from airflow_aisec.operators.audit import DependencyAuditOperator
from airflow_aisec.operators.secrets import SecretsScanOperator
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.osv_helpers import snapshot_path
from tests.secrets_helpers import capture_task_logs, fake_tokens, repo_with_deleted_secret


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_constructor_validates():
    with pytest.raises(ValueError, match="fail_on must be one of"):
        DependencyAuditOperator(task_id="a", fail_on="severe")
    with pytest.raises(ValueError, match="service must be"):
        DependencyAuditOperator(task_id="a", service="nvd")
    with pytest.raises(ValueError, match="path is required"):
        SecretsScanOperator(task_id="s", path="")
    with pytest.raises(ValueError, match="max_file_bytes must be positive"):
        SecretsScanOperator(task_id="s", path="/x", max_file_bytes=0)
    op = DependencyAuditOperator(task_id="a", requirements="r.txt", fail_on="{{ params.level }}")
    assert op.requirements == ["r.txt"]
    assert {"requirements", "osv_db", "fail_on", "sbom_path"} <= set(op.template_fields)


@pytest.mark.integration
def test_operators_in_a_real_dag_run(airflow_db, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv(OSV_DB_ENV, raising=False)
    token = fake_tokens(99)["hf"]
    repo, leaked = repo_with_deleted_secret(tmp_path / "repo", token)
    vulnerable = tmp_path / "vulnerable.txt"
    vulnerable.write_text("requests==2.19.0\njinja2==2.11.2\n")
    clean = tmp_path / "clean.txt"
    clean.write_text("requests==2.32.3\n")
    sbom = tmp_path / "sbom.cdx.json"
    snapshot = str(snapshot_path())
    from airflow.sdk import DAG

    with DAG(
        "aisec_test_supply_chain_ops",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        DependencyAuditOperator(task_id="audit_vulnerable", requirements=[str(vulnerable)], osv_db=snapshot)
        DependencyAuditOperator(task_id="audit_clean", requirements=[str(clean)], osv_db=snapshot, sbom_path=str(sbom))
        DependencyAuditOperator(
            task_id="audit_unreachable",
            requirements=[str(clean)],
            osv_url=f"http://127.0.0.1:{free_port()}/v1/query",
            timeout=5,
        )
        SecretsScanOperator(task_id="secrets_tree", path=str(repo))
        SecretsScanOperator(task_id="secrets_history", path=str(repo), history=True)
        SecretsScanOperator(task_id="secrets_history_not_git", path=str(tmp_path / "plain"), history=True)
    (tmp_path / "plain").mkdir()

    with capture_task_logs() as task_logs:
        dag_run = run_dag(dag)
    states = task_states(dag_run)
    assert states == {
        "audit_vulnerable": "failed",
        "audit_clean": "success",
        "audit_unreachable": "failed",
        "secrets_tree": "success",
        "secrets_history": "failed",
        "secrets_history_not_git": "failed",
    }

    vuln = xcom(dag_run, "audit_vulnerable")
    assert vuln["status"] == "fail"
    assert {f["id"] for f in vuln["findings"]} == {"PYSEC-2018-28", "PYSEC-2023-74", "PYSEC-2021-66"}

    clean_report = xcom(dag_run, "audit_clean")
    assert clean_report["status"] == "pass" and clean_report["details"]["sbom"]["path"] == str(sbom)
    assert sbom.is_file()

    unreachable = xcom(dag_run, "audit_unreachable")
    assert unreachable["status"] == "error"
    assert "unreachable" in unreachable["summary"]

    assert xcom(dag_run, "secrets_tree")["findings"] == []
    hist = xcom(dag_run, "secrets_history")
    assert hist["status"] == "fail"
    assert [f["location"] for f in hist["findings"]] == [f"{leaked[:12]}:config.py:2"]
    not_git = xcom(dag_run, "secrets_history_not_git")
    assert not_git["status"] == "error" and "not inside a git repository" in not_git["summary"]

    # the secret value is nowhere: not in any XCom, not in any captured log line
    everything = json.dumps(
        [xcom(dag_run, t) for t in states] + [xcom(dag_run, t, key="return_value") for t in states], default=str
    )
    assert token not in everything
    logs = task_logs.text + caplog.text
    assert "aisec secrets [FAIL]" in logs  # the task logs were captured …
    assert "AISEC-SECRET-HUGGING-FACE-TOKEN" in logs
    assert token not in logs  # … and hold no secret


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
