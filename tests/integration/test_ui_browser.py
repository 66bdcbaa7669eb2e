"""The AI Security view in a real browser, against a real Airflow API server on loopback.

The fixture runs the test DAG (and the example DAG ``aisec_artifact_integrity`` when present) for real
with ``dag.test()`` on the session's migrated SQLite DB, copies that DB into its own AIRFLOW_HOME,
starts ``airflow api-server`` on a free 127.0.0.1 port in its own process group, and kills + reaps
that group at the end. (No scheduler: the runs are already done; the API server serves the UI.) Debian's
``/usr/bin/chromium`` is driven by playwright (never downloaded). Screenshots go to a temporary folder;
with ``AISEC_UPDATE_SCREENSHOTS=1`` they refresh the README's images under ``docs/img/``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parents[2]
UI_DAG = Path(__file__).resolve().parent / "ui_dags" / "aisec_ui_demo.py"
EXAMPLE_DAGS = ("aisec_artifact_integrity",)  # example DAGs from dags/ also run when they exist
DOCS_IMG = REPO / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL what is left; always reap."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def load_dag(path: Path, dag_id: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_ui_test_{dag_id}", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id]
    assert dags, f"{path} defines no DAG {dag_id!r}"
    return dags[0]


@pytest.fixture(scope="module")
def airflow_server(airflow_db, tmp_path_factory):
    """Runs the DAGs for real (``dag.test()`` on the session DB), then serves a copy of that DB."""
    import sqlite3

    from tests.airflow_helpers import load_example_dag, run_dag

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)")
    demo = load_dag(UI_DAG, "aisec_ui_demo")
    run_dag(demo, conf={"clean": True})
    run_dag(demo)  # the latest run: reports with findings
    examples = [d for d in EXAMPLE_DAGS if (REPO / "dags" / f"{d}.py").exists()]
    for d in examples:
        if not has_run(airflow_db / "airflow.db", d):  # its own test may have run it in this session already
            run_dag(load_example_dag(d))

    home = tmp_path_factory.mktemp("airflow-ui-home")
    with sqlite3.connect(airflow_db / "airflow.db") as src, sqlite3.connect(home / "airflow.db") as dst:
        src.backup(dst)  # consistent copy of the migrated DB with the runs above
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
    }
    airflow = [sys.executable, "-m", "airflow"]
    server_log = (home / "api-server.log").open("w")
    proc = subprocess.Popen(
        [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: stop_group() kills it and its workers
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"api-server exited: {(home / 'api-server.log').read_text()[-3000:]}")
            try:
                if http(f"{base}/api/v2/monitor/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            pytest.fail("api-server did not become healthy within 120 s")
        passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        yield {"base": base, "home": home, "password": passwords["admin"], "examples": examples}
    finally:
        stop_group(proc)
        server_log.close()


def has_run(db_path: Path, dag_id: str) -> bool:
    import sqlite3

    with sqlite3.connect(db_path) as db:
        return db.execute("select 1 from dag_run where dag_id=? limit 1", (dag_id,)).fetchone() is not None


def latest_run_id(home: Path, dag_id: str) -> str:
    import sqlite3

    with sqlite3.connect(home / "airflow.db") as db:
        row = db.execute("select run_id from dag_run where dag_id=? order by id desc limit 1", (dag_id,)).fetchone()
    assert row, f"no run of {dag_id}"
    return row[0]


def test_unauthenticated_access_is_refused_and_a_bearer_token_works(airflow_server):
    base = airflow_server["base"]
    assert http(f"{base}/aisec/")[0] == 401
    assert http(f"{base}/aisec/metrics")[0] == 401
    status, body = http(
        f"{base}/auth/token",
        data=json.dumps({"username": "admin", "password": airflow_server["password"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, body
    token = json.loads(body)["access_token"]
    status, text = http(f"{base}/aisec/metrics", headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    assert 'aisec_vulnerabilities{dag_id="aisec_ui_demo",task_id="check_vulns",severity="critical"} 1' in text
    assert 'aisec_integrity_failure{dag_id="aisec_ui_demo",task_id="check_integrity",check="integrity"} 1' in text


def test_browser_login_overview_run_and_task_views(airflow_server):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a loaded 2-core CI machine renders slowly

    base, home = airflow_server["base"], airflow_server["home"]
    run_id = latest_run_id(home, "aisec_ui_demo")
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(30_000)
            # log in through Airflow's own login page
            page.goto(f"{base}/auth/login/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", airflow_server["password"])
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/auth/login" not in url)

            # the navigation entry exists and opens the overview embedded in the Airflow UI
            page.goto(f"{base}/plugin/aisec")
            view = page.frame_locator("iframe[title='AI Security']")
            expect(view.locator("h1")).to_have_text("AI Security")
            expect(view.locator("[data-testid=latest]")).to_contain_text("integrity fail: 1 finding(s)")
            expect(page.get_by_role("link", name="AI Security").first).to_be_visible()
            # the session DB may hold other tests' reports (the table is sorted by DAG id, 50 rows a page):
            # page through with the view's own pager, then narrow the view to the demo DAG (a link in the view)
            demo_link = view.locator("[data-testid=latest] a", has_text="aisec_ui_demo")
            for _ in range(40):
                expect(view.locator("[data-testid=latest]")).to_be_visible()
                if demo_link.count():
                    break
                where = view.locator("[data-testid=pager] span")
                before = where.inner_text()  # "page N of M (R rows)"
                view.locator("[data-testid=pager] a", has_text="next").click()
                expect(where).not_to_have_text(before)
            demo_link.first.click()
            expect(view.locator("h1 + .muted")).to_contain_text("in DAG aisec_ui_demo")
            expect(view.locator("[data-testid=vulns]")).to_have_text("2")
            expect(view.locator("[data-testid=trust-failures]")).to_have_text("1")
            expect(view.locator("[data-testid=secrets]")).to_have_text("1")
            expect(view.locator("[data-testid=retrain-decision]")).to_have_text("retrain")
            expect(view.locator("svg.chart").first).to_be_visible()
            page.goto(f"{base}/plugin/aisec")  # the unfiltered overview for the README
            expect(view.locator("[data-testid=latest]")).to_be_visible()
            _screenshot(page, "aisec-overview.png")

            # the DAG-run tab lists every report of the run with its findings
            page.goto(f"{base}/dags/aisec_ui_demo/runs/{quote(run_id, safe='')}/plugin/aisec-run")
            run_view = page.frame_locator("iframe[title='AI Security']")
            expect(run_view.locator("section.report")).to_have_count(6)
            expect(run_view.get_by_text("GHSA-x84v-xcm2-53pg")).to_be_visible()
            expect(run_view.get_by_text("weights.bin changed since the manifest")).to_be_visible()
            _screenshot(page, "aisec-run.png")

            # the task-instance tab shows one report in full (drift: per-feature table and chart)
            page.goto(f"{base}/dags/aisec_ui_demo/runs/{quote(run_id, safe='')}/tasks/check_drift/plugin/aisec-task")
            ti_view = page.frame_locator("iframe[title='AI Security report']")
            expect(ti_view.locator("[data-testid=details-features]")).to_contain_text("tenure")
            expect(ti_view.locator("svg.chart")).to_be_visible()
            _screenshot(page, "aisec-task-drift.png")

            for example in airflow_server["examples"]:
                page.goto(f"{base}/aisec/?dag_id={example}")
                expect(page.locator("[data-testid=latest]")).to_contain_text(example)
        finally:
            browser.close()


def _screenshot(page, name: str) -> None:
    folder = DOCS_IMG if os.environ.get("AISEC_UPDATE_SCREENSHOTS") == "1" else Path(tempfile.gettempdir())
    target = folder / name
    tmp = target.with_suffix(".tmp.png")
    page.screenshot(path=str(tmp))
    os.replace(tmp, target)
    assert target.stat().st_size > 10_000
