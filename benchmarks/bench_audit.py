"""Offline dependency audit of this project's whole .venv against the PyPA OSV snapshot (floor: <= 2 s).

Each figure is the median of several runs in a *fresh* interpreter, timed from before importing
airflow-aisec to the finished report: pip-audit's import (which runs ``pip --version``), its
``pip list`` of the environment, loading and indexing the 2,661-record OSV zip (in parallel with the
``pip list``), matching and the report. Also printed: the pieces alone, and a warm second audit in
the same process (database reused).

    .venv/bin/python benchmarks/bench_audit.py [--runs 5]

Figures taken while other jobs load the machine are noisy (``load average`` is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT = REPO / "data" / "osv" / "pypa-advisory-db-2024-10-10.zip"

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from airflow_aisec.core.dependency_audit import run_audit
kind, db = sys.argv[1], sys.argv[2]
kwargs = {"path": sys.argv[3]} if kind == "path" else {"requirements": [sys.argv[3]]} if kind == "requirements" else {}
report = run_audit(osv_db=db, **kwargs)
cold = time.perf_counter() - t0
t1 = time.perf_counter()
again = run_audit(osv_db=db, **kwargs)
warm = time.perf_counter() - t1
print(json.dumps({"cold": cold, "warm": warm, "status": report.status,
                  "packages": report.metrics["packages_audited"], "db_load": report.metrics["db_load_seconds"],
                  "vulns": report.metrics["vulnerabilities"]}))
"""

PIECES = r"""
import json, sys, time
from airflow_aisec.core.osv import OsvDatabase
t = time.perf_counter(); db = OsvDatabase.load(sys.argv[1]); load = time.perf_counter() - t
import importlib.metadata as md
names = [(d.metadata["Name"], d.version) for d in md.distributions()]
t = time.perf_counter(); hits = sum(len(db.query(n, v)) for n, v in names); match = time.perf_counter() - t
t = time.perf_counter(); import pip_audit._service, pip_audit._dependency_source, pip_audit._audit; imp = time.perf_counter() - t
from pip_audit._dependency_source import PipSource
t = time.perf_counter(); n = len(list(PipSource().collect())); pip_list = time.perf_counter() - t
print(json.dumps({"db_load": load, "match_all": match, "distributions": len(names), "hits": hits,
                  "pip_audit_import": imp, "pip_list": pip_list, "pip_list_packages": n}))
"""


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", default=str(SNAPSHOT))
    args = parser.parse_args()
    venv = Path(sys.prefix)
    print(f"python {sys.version.split()[0]}  env {venv}  db {args.db}")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (2 cores; > 2 means contention)")
    pieces = run(PIECES, args.db)
    print(
        "pieces: db load+index {db_load:.3f}s | match {distributions} dists {match_all:.4f}s | "
        "pip_audit import {pip_audit_import:.3f}s | pip list {pip_list:.3f}s ({pip_list_packages} pkgs)".format(
            **pieces
        )
    )
    import importlib.metadata
    import tempfile

    from packaging.version import InvalidVersion, Version

    pins = []
    for dist in importlib.metadata.distributions():
        try:
            pins.append(f"{dist.metadata['Name']}=={Version(dist.version)}")
        except InvalidVersion:
            continue
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(sorted(set(pins))) + "\n")
        pinned = fh.name
    targets = {"environment": str(venv), "path": str(venv), "requirements": pinned}
    for kind, target in targets.items():
        results = [run(CHILD, kind, args.db, target) for _ in range(args.runs)]
        cold = [r["cold"] for r in results]
        warm = [r["warm"] for r in results]
        r0 = results[0]
        verdict = "OK" if statistics.median(cold) <= 2.0 else "OVER"
        print(
            f"offline audit ({kind}): {r0['packages']} packages, {r0['vulns']} vulnerabilities, status {r0['status']} | "
            f"cold median {statistics.median(cold):.3f}s (min {min(cold):.3f}, max {max(cold):.3f}) "
            f"[floor 2.0s: {verdict}] | warm median {statistics.median(warm):.3f}s"
        )
    os.unlink(pinned)
    print(
        "environment/path list packages with `pip list` (pip-audit's PipSource); requirements = the same pins, no pip list"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
