"""scripts/aisec_stack.py without starting a stack: configuration, run plan grouping, stop by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import aisec_stack as st


@pytest.fixture
def stack(tmp_path):
    s = st.Stack(root=tmp_path / "stack", extra_dag_folders=[tmp_path / "more-dags"])
    s.root.mkdir()
    s.ports = {"postgres": 5999, "redis": 6999, "api": 7999}
    return s


def test_env_celery_postgres_loopback_and_no_caller_airflow_settings(stack, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    monkeypatch.setenv("AISEC_REPORT_DIR", "/elsewhere")
    env = stack.env()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@127.0.0.1:5999/airflow")
    # the result backend names psycopg2: SQLAlchemy 2.1 maps plain postgresql to psycopg 3
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].endswith("@127.0.0.1:6999/0")
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AISEC_REPORT_DIR"].startswith(str(stack.root))
    assert env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] == "False"
    bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert [b["kwargs"]["path"] for b in bundles] == [str(REPO_ROOT / "dags"), str(stack.extra_dag_folders[0])]
    assert len({b["name"] for b in bundles}) == 2
    # secrets are random per stack, kept private, and stable within it
    assert stack.env()["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert oct((stack.root / "secrets" / "jwt").stat().st_mode & 0o777) == "0o600"
    assert st.Stack(root=stack.root.parent / "other", ports=stack.ports)._secret("jwt") != stack._secret("jwt")
    assert "AIRFLOW__CORE__HOSTNAME_CALLABLE" not in env


def test_workers_get_distinct_task_hostnames(stack, monkeypatch):
    env = stack.env(worker="w2")
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "aisec_stack.worker_hostname"
    assert str(REPO_ROOT / "scripts") in env["PYTHONPATH"].split(os.pathsep)
    monkeypatch.setenv(st.WORKER_ENV, "w2")
    assert st.worker_hostname().startswith("w2.")
    monkeypatch.delenv(st.WORKER_ENV)
    assert not st.worker_hostname().startswith("w2.")


def test_plan_groups_keep_order_and_run_same_order_dags_side_by_side(tmp_path):
    plan = st.demo_plan()
    groups = st._order_groups(plan)
    flattened = [(dag_id, run) for group in groups for dag_id, runs in group.items() for run in runs]
    assert sorted(map(json.dumps, flattened)) == sorted(map(json.dumps, plan))
    # every DAG's runs stay in one group, in the plan's order
    for dag_id in {d for d, _ in plan}:
        assert sum(dag_id in g for g in groups) == 1
        (group,) = [g for g in groups if dag_id in g]
        assert group[dag_id] == [run for d, run in plan if d == dag_id]
    # groups follow the plan's sequence (a DAG of a later group never appears earlier in the plan)
    position = {dag_id: i for i, g in enumerate(groups) for dag_id in g}
    seen = [position[d] for d, _ in plan]
    assert seen == sorted(seen)


def test_result_line():
    r = st.RunResult("aisec_x", "tampered", "failed", "success", 12.4, "manual__1", ["w1.host", "w2.host"])
    assert not r.ok
    assert r.line() == "aisec_x [tampered]: expected failed, got success (12s, workers: w1.host, w2.host)"


def test_stop_kills_the_process_group_and_reaps(stack):
    service = stack._spawn(
        "sleeper", [sys.executable, "-c", "import subprocess,time; subprocess.Popen(['sleep','300']); time.sleep(300)"],
        env=dict(os.environ),
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while len(st.group_members(service.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(st.group_members(service.pid)) == 2
    state = json.loads((stack.root / "state.json").read_text())
    assert state["services"][0]["pid"] == service.pid
    assert stack.alive(service)
    stack.stop(grace=5)
    assert st.group_members(service.pid) == []  # the child `sleep` went with it
    assert not stack.services


def test_stop_from_another_process_never_signals_a_reused_pid(stack):
    other = subprocess.Popen(["sleep", "60"])
    try:
        stack.services.append(st.Service("ghost", other.pid, "1", "log"))  # recorded start time differs
        stack._save()
        attached = st.Stack.attach(stack.root)
        assert not attached.alive(attached.services[0])
        attached.stop(grace=1)
        assert other.poll() is None  # untouched
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
