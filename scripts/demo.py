"""`make demo`: run every example DAG in dags/ with `airflow dags test` and print a one-screen summary.

Runs on embedded defaults (SQLite in a project-local AIRFLOW_HOME, local files, bundled data).
A DAG that needs several runs with different conf declares them in demo/runs/<dag_id>.json:
    {"order": 10, "runs": [{"name": "tampered", "conf": {"tamper": true}, "expect": "failed"}]}
DAGs run by ascending "order" (default 50), then by name: e.g. training before the monitoring that
triggers it.
Exit code: 0 when every run ended as expected, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"
RUNS = ROOT / "demo" / "runs"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
FINISHED = re.compile(
    r"Marking run <DagRun (?P<dag>\S+) @ .*?: (?P<run>\S+), state:running.*?> (?P<state>successful|failed)"
)
STATUS_MARK = {"pass": "PASS ", "warn": "WARN ", "fail": "FAIL ", "error": "ERROR"}


def env() -> dict[str, str]:
    e = dict(os.environ)
    home = e.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    e.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
    e.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    e.setdefault("AISEC_DATA_DIR", str(Path(home) / "aisec-data"))
    e.setdefault("AISEC_REPORT_DIR", str(Path(home) / "aisec-reports"))
    e.setdefault("AISEC_OSV_DB", str(ROOT / "data" / "osv" / "pypa-advisory-db-2024-10-10.zip"))
    return e


def plan() -> list[tuple[str, dict]]:
    specs = []
    for dag_file in sorted(DAGS.glob("aisec_*.py")):
        dag_id = dag_file.stem
        sidecar = RUNS / f"{dag_id}.json"
        spec = json.loads(sidecar.read_text()) if sidecar.exists() else {"runs": [{"name": "default"}]}
        specs.append((int(spec.get("order", 50)), dag_id, spec["runs"]))
    return [(dag_id, run) for _, dag_id, runs in sorted(specs) for run in runs]


def reports_for(report_dir: Path, dag_id: str, run_id: str) -> list[dict]:
    safe = run_id.replace("/", "_").replace(":", "-")
    folder = report_dir / dag_id / safe
    out = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
        data = json.loads(path.read_text())
        data["_task"] = path.stem
        out.append(data)
    return out


def main() -> int:
    e = env()
    home = Path(e["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    # A clean slate each time, so the demo shows the same story on every run (e.g. the retrain
    # cooldown of a previous demo does not suppress this one's first trigger).
    for leftover in (home / "airflow.db", Path(e["AISEC_REPORT_DIR"]), Path(e["AISEC_DATA_DIR"]), home / "demo-logs"):
        if home.resolve() not in leftover.resolve().parents:
            continue  # only ever clean inside the demo's own AIRFLOW_HOME
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    logs = home / "demo-logs"
    logs.mkdir()
    print(f"airflow-aisec demo — AIRFLOW_HOME={home}")
    t0 = time.monotonic()
    migrated = subprocess.run([AIRFLOW, "db", "migrate"], env=e, capture_output=True, text=True)
    if migrated.returncode != 0:
        print(migrated.stdout[-3000:], migrated.stderr[-3000:], sep="\n")
        return 1
    results = []
    for dag_id, run in plan():
        name, expect = run.get("name", "default"), run.get("expect", "success")
        cmd = [AIRFLOW, "dags", "test", dag_id]
        if run.get("conf"):
            cmd += ["-c", json.dumps(run["conf"])]
        print(f"  running {dag_id} [{name}] …", flush=True)
        started = time.monotonic()
        proc = subprocess.run(cmd, env=e, capture_output=True, text=True)
        log_path = logs / f"{dag_id}.{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-')}.log"
        log_path.write_text(proc.stdout + proc.stderr)
        matches = list(FINISHED.finditer(proc.stdout + proc.stderr))
        match = matches[-1] if matches else None
        state = {"successful": "success", "failed": "failed"}[match["state"]] if match else "did not finish"
        run_id = match["run"] if match else ""
        results.append(
            {
                "dag_id": dag_id,
                "name": name,
                "expect": expect,
                "state": state,
                "seconds": time.monotonic() - started,
                "log": log_path,
                "reports": reports_for(Path(e["AISEC_REPORT_DIR"]), dag_id, run_id) if run_id else [],
            }
        )
    print()
    print("=" * 100)
    ok = True
    for r in results:
        good = r["state"] == r["expect"]
        ok &= good
        verdict = "as expected" if good else f"UNEXPECTED (expected {r['expect']})"
        print(f"{r['dag_id']} [{r['name']}]: run {r['state']} — {verdict} ({r['seconds']:.0f} s)")
        for rep in r["reports"]:
            print(f"   {STATUS_MARK[rep['status']]} {rep['_task']:<28} {rep['check']:<16} {rep['summary'][:110]}")
        if not good or not r["reports"]:
            print(f"   log: {r['log']}")
    print("=" * 100)
    print(f"reports:   {e['AISEC_REPORT_DIR']}/<dag_id>/<run_id>/<task_id>.json")
    print(f"artifacts: {e['AISEC_DATA_DIR']}")
    print(f"logs:      {logs}")
    print(f"{len(results)} run(s) in {time.monotonic() - t0:.0f} s: {'all as expected' if ok else 'SOME UNEXPECTED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
