"""Server time of the AI Security pages with 10,000 stored reports (target: overview < 1 s).

Builds a throw-away AIRFLOW_HOME (SQLite), runs the UI test DAG for real twice (``dag.test()``), then
clones its rows into ``--dags`` DAGs × runs so that ``--reports`` aisec reports are stored (valid
dag_run / task_instance / xcom rows, drift shares varying per run). Then it times the real Airflow API
app (``create_app``, plugin loaded through its entry point) in-process with a bearer token.

    .venv/bin/python benchmarks/bench_ui.py [--reports 10000] [--dags 20] [--repeat 5]

Figures vary with machine load (2 shared cores here): compare medians, re-run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def setup_env() -> Path:
    home = Path(tempfile.mkdtemp(prefix="aisec-bench-ui-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        }
    )
    return home


def clone_rows(db_path: Path, *, reports: int, dags: int) -> int:
    """Clone the demo DAG's latest runs into ``dags`` DAG ids until ``reports`` reports are stored."""
    import sqlite3

    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    runs = db.execute("select * from dag_run where dag_id='aisec_ui_demo' order by id").fetchall()
    template_run = runs[-1]
    tis = db.execute("select * from task_instance where run_id=?", (template_run["run_id"],)).fetchall()
    xcoms = db.execute("select * from xcom where dag_run_id=? and key='aisec_report'", (template_run["id"],)).fetchall()
    dag_row = db.execute("select * from dag where dag_id='aisec_ui_demo'").fetchone()
    per_run = len(xcoms)
    runs_per_dag = max(1, -(-reports // (per_run * dags)))

    def insert(table: str, row: dict) -> int:
        cols = ",".join(row)
        cur = db.execute(f"insert into {table} ({cols}) values ({','.join('?' * len(row))})", list(row.values()))
        return cur.lastrowid or 0

    stored = db.execute("select count(*) from xcom where key='aisec_report'").fetchone()[0]
    with db:
        for k in range(dags):
            dag_id = f"bench_dag_{k:02d}"
            insert("dag", {**dict(dag_row), "dag_id": dag_id})
            for r in range(runs_per_dag):
                if stored >= reports:
                    break
                run_id = f"bench__{r:05d}"
                run = {key: template_run[key] for key in template_run.keys() if key != "id"}
                when = f"2026-01-{1 + r // 1440:02d} {r // 60 % 24:02d}:{r % 60:02d}:00.000000"
                run.update(dag_id=dag_id, run_id=run_id, run_after=when, logical_date=when)
                run_pk = insert("dag_run", run)
                for ti in tis:
                    insert("task_instance", {**dict(ti), "id": str(uuid.uuid4()), "dag_id": dag_id, "run_id": run_id})
                for x in xcoms:
                    value = json.loads(x["value"])
                    if value.get("check") == "drift":
                        value["metrics"]["drift_share"] = round((r % 10) / 10, 2)
                    row = {**dict(x), "dag_run_id": run_pk, "dag_id": dag_id, "run_id": run_id}
                    row["value"] = json.dumps(value)
                    row["timestamp"] = when
                    insert("xcom", row)
                    stored += 1
    db.execute("analyze")
    db.close()
    return stored


def timed(client, url: str, headers: dict[str, str], repeat: int) -> tuple[float, list[float], int]:
    first_t = time.perf_counter()
    r = client.get(url, headers=headers)
    first = time.perf_counter() - first_t
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(url, headers=headers)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200
    return first, times, len(r.content)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--dags", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    args = parser.parse_args()

    home = setup_env()
    sys.path.insert(0, str(REPO))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
    import importlib.util

    from tests.airflow_helpers import run_dag

    spec = importlib.util.spec_from_file_location("ui_demo", REPO / "tests/integration/ui_dags/aisec_ui_demo.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run_dag(module.DAG, conf={"clean": True})
    run_dag(module.DAG)
    stored = clone_rows(home / "airflow.db", reports=args.reports, dags=args.dags)
    print(f"set-up: {stored} aisec reports in {args.dags + 1} DAGs ({time.perf_counter() - t:.1f} s)")

    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    client = TestClient(create_app(apps="core"))
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
    headers = {"Authorization": f"Bearer {token}"}
    pages = {
        "overview (/aisec/)": "/aisec/",
        "overview page 3, 20 rows": "/aisec/?page=3&per_page=20",
        "overview one DAG": "/aisec/?dag_id=bench_dag_07",
        "DAG run": "/aisec/dags/bench_dag_07/runs/bench__00042",
        "task instance (drift)": "/aisec/dags/bench_dag_07/runs/bench__00042/tasks/check_drift",
        "metrics (/aisec/metrics)": "/aisec/metrics",
    }
    print(f"{'page':32} {'first':>8} {'median':>8} {'max':>8} {'bytes':>9}   (server time incl. auth, in-process)")
    worst_overview = 0.0
    for name, url in pages.items():
        first, times, size = timed(client, url, headers, args.repeat)
        med = statistics.median(times)
        if name.startswith("overview (/"):
            worst_overview = max(times)
        print(f"{name:32} {first * 1000:7.0f}ms {med * 1000:7.0f}ms {max(times) * 1000:7.0f}ms {size:9d}")
    verdict = "OK" if worst_overview < 1.0 else "SLOWER THAN TARGET"
    print(f"overview with {stored} reports: worst warm {worst_overview * 1000:.0f} ms (target < 1000 ms) {verdict}")
    client.close()
    if not args.keep:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"kept AIRFLOW_HOME {home}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
