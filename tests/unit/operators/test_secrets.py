"""SecretsScanOperator in a real ``dag.test()`` run: history finds the deleted token; it is never leaked."""

from __future__ import annotations

import json
import logging

import pendulum
import pytest

from airflow_aisec.operators.secrets import SecretsScanOperator
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.secrets_helpers import capture_task_logs, fake_tokens, repo_with_deleted_secret


def test_constructor_validates():
    with pytest.raises(ValueError, match="path is required"):
        SecretsScanOperator(task_id="s", path="")
    with pytest.raises(ValueError, match="max_file_bytes must be positive"):
        SecretsScanOperator(task_id="s", path="/x", max_file_bytes=0)
    with pytest.raises(ValueError, match="fail_on must be"):
        SecretsScanOperator(task_id="s", path="/x", fail_on="low")
    assert {"path", "baseline"} <= set(SecretsScanOperator(task_id="s", path="/x").template_fields)


@pytest.mark.integration
def test_secrets_operator_in_a_real_dag_run(airflow_db, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    token = fake_tokens(99)["hf"]
    repo, leaked = repo_with_deleted_secret(tmp_path / "repo", token)
    (tmp_path / "plain").mkdir()
    from airflow.sdk import DAG

    with DAG(
        "aisec_test_secrets_operator",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
    ) as dag:
        SecretsScanOperator(task_id="secrets_tree", path=str(repo))
        SecretsScanOperator(task_id="secrets_history", path=str(repo), history=True)
        SecretsScanOperator(task_id="secrets_history_not_git", path=str(tmp_path / "plain"), history=True)

    with capture_task_logs() as task_logs:
        dag_run = run_dag(dag)
    states = task_states(dag_run)
    assert states == {"secrets_tree": "success", "secrets_history": "failed", "secrets_history_not_git": "failed"}

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
