"""scripts/demo.py: sidecar plans and the run-state parser."""

from __future__ import annotations

import importlib.util
import json

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("demo", REPO_ROOT / "scripts" / "demo.py")
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)


def test_every_example_dag_is_planned_and_sidecars_are_valid():
    planned = {dag_id for dag_id, _ in demo.plan()}
    assert planned == {p.stem for p in (REPO_ROOT / "dags").glob("aisec_*.py")}
    for sidecar in (REPO_ROOT / "demo" / "runs").glob("*.json"):
        runs = json.loads(sidecar.read_text())["runs"]
        assert (REPO_ROOT / "dags" / f"{sidecar.stem}.py").exists(), f"{sidecar} names no DAG"
        assert all(r.get("expect", "success") in ("success", "failed") for r in runs)
        assert len({r["name"] for r in runs}) == len(runs)


def test_finished_line_parsing():
    line = (
        "2026-11-27T15:16:24.915737Z [info     ] Marking run <DagRun aisec_x @ 2026-11-27 15:15:46.481845+00:00: "
        "manual__2026-11-27T15:15:50.718520+00:00, state:running, queued_at: None. run_type: manual> failed [x]"
    )
    m = demo.FINISHED.search(line)
    assert (m["dag"], m["run"], m["state"]) == ("aisec_x", "manual__2026-11-27T15:15:50.718520+00:00", "failed")
