"""The example DAGs on a real Postgres + Redis + CeleryExecutor Airflow (scripts/aisec_stack.py).

One stack per test session (``.stack/pytest-<pid>``: Postgres and Redis as unprivileged local
instances on free loopback ports; scheduler, dag-processor, triggerer, api-server and two Celery
workers), stopped by PID at the end. Runs go through the REST API v2 exactly as ``make stack-demo``
triggers them. Besides the demo runs: a sensor that really defers to the triggerer, one that really
reschedules, the retraining run that the monitoring DAG triggers, and the AI Security view in Chromium.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "scripts"))

import aisec_stack as st  # noqa: E402

PROBE_DAGS = Path(__file__).resolve().parent / "dags"
TRAINING = "aisec_secure_training"
CHROMIUM = "/usr/bin/chromium"

# the demo runs happen in the first test that needs them: its budget covers them (a loaded 2-core machine)
pytestmark = [pytest.mark.integration, pytest.mark.stack, pytest.mark.timeout(2700)]


@pytest.fixture(scope="session")
def stack():
    parent = REPO / ".stack"
    parent.mkdir(exist_ok=True)
    parent.chmod(0o755)
    stack = st.Stack(root=parent / f"pytest-{__import__('os').getpid()}", extra_dag_folders=[PROBE_DAGS])
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        stack.remove()


@pytest.fixture(scope="session")
def demo_results(stack):
    plan = st.demo_plan()
    assert plan, "no example runs planned"
    return st.run_plan(stack, plan, timeout=900, progress=lambda line: None)


def _wait_for(what: str, probe, timeout: float = 600, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def test_sensors_defer_to_the_triggerer_and_reschedule(stack):
    stack.wait_for_dags(["aisec_stack_probe"])
    probe_dir = Path(stack.env()["AISEC_DATA_DIR"]) / "stack-probe"
    run_id = stack.trigger("aisec_stack_probe")
    seen: dict[str, set[str]] = {"deferred_wait": set(), "rescheduled_wait": set()}

    def both_waiting() -> bool:
        for ti in stack.task_instances("aisec_stack_probe", run_id):
            seen[ti["task_id"]].add(ti["state"])
        return "deferred" in seen["deferred_wait"] and "up_for_reschedule" in seen["rescheduled_wait"]

    _wait_for(f"deferred / up_for_reschedule sensors (seen {seen})", both_waiting, every=0.5)
    # the deferred sensor's trigger is a row of the trigger table, picked up by the triggerer
    rows = _wait_for(
        "the sensor's trigger row assigned to a triggerer",
        lambda: stack.sql(
            "SELECT t.classpath, t.triggerer_id FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = 'deferred_wait' AND t.triggerer_id IS NOT NULL",
            ("aisec_stack_probe", run_id),
        ),
        timeout=300,
    )
    assert rows[0][0] == "airflow_aisec.triggers.drift.MinRowsTrigger"
    # a reschedule-mode sensor records each reschedule (and holds no worker slot in between)
    reschedules = stack.sql(
        "SELECT count(*) FROM task_reschedule tr JOIN task_instance ti ON tr.ti_id = ti.id "
        "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = 'rescheduled_wait'",
        ("aisec_stack_probe", run_id),
    )[0][0]
    assert reschedules >= 1
    probe_dir.mkdir(parents=True, exist_ok=True)
    for name in ("deferred.csv", "rescheduled.csv"):
        (probe_dir / name).write_text("a,b\n1,2\n")
    assert stack.wait_for_run("aisec_stack_probe", run_id, timeout=600) == "success"
    states = {ti["task_id"]: ti["state"] for ti in stack.task_instances("aisec_stack_probe", run_id)}
    assert states == {"deferred_wait": "success", "rescheduled_wait": "success"}


def test_example_runs_end_as_their_sidecars_expect_on_two_workers(demo_results):
    lines = [r.line() for r in demo_results]
    assert all(r.ok for r in demo_results), "\n".join(lines)
    workers = {host for r in demo_results for host in r.workers}
    assert {h.split(".", 1)[0] for h in workers} == {"w1", "w2"}, lines


def test_retrain_triggered_training_run_executes_under_the_scheduler(stack, demo_results):
    ours = {r.run_id for r in demo_results if r.dag_id == TRAINING}
    assert any(r.dag_id == "aisec_model_monitoring" for r in demo_results)

    def triggered() -> list[dict]:
        runs = stack.get(f"/api/v2/dags/{TRAINING}/dagRuns?limit=100")["dag_runs"]
        return [run for run in runs if run["dag_run_id"] not in ours]

    (run, *more) = _wait_for("the training run the retrain guard triggers", triggered, timeout=120)
    assert not more, f"the cooldown allows one retraining run, got {[run, *more]}"
    assert stack.wait_for_run(TRAINING, run["dag_run_id"], timeout=900) == "success"
    tis = stack.task_instances(TRAINING, run["dag_run_id"])
    assert tis
    assert all(ti["state"] in ("success", "skipped") for ti in tis), tis
    assert all(ti["hostname"].split(".", 1)[0] in ("w1", "w2") for ti in tis if ti["state"] == "success")


@pytest.mark.browser
def test_ai_security_view_over_postgres_in_chromium(stack, demo_results):
    import json

    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)")
    expect.set_options(timeout=60_000)
    password = json.loads((stack.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    dag_ids = sorted({r.dag_id for r in demo_results})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{stack.base_url}/auth/login/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/auth/login" not in url)
            page.goto(f"{stack.base_url}/plugin/aisec")
            view = page.frame_locator("iframe[title='AI Security']")
            expect(view.locator("h1")).to_have_text("AI Security")
            latest = view.locator("[data-testid=latest]")
            for dag_id in ("aisec_model_monitoring", TRAINING):
                if dag_id in dag_ids:
                    expect(latest).to_contain_text(dag_id)
        finally:
            browser.close()
