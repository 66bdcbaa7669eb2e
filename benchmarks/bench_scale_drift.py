"""Past one machine: a window tested in partitions (one process per partition) vs in one task.

    .venv/bin/python benchmarks/bench_scale_drift.py                # drift: 10M-row x 20-feature window
    .venv/bin/python benchmarks/bench_scale_drift.py --rows 2000000   # quicker
    .venv/bin/python benchmarks/bench_scale_drift.py --layout files   # the window as a directory of files

Drift part: a 1M-row reference profile; a ``--rows`` x 20 float64 window (5 features shifted by
0.05 sigma, 1M-row groups). One task (``aisec drift --profile``) vs 4 partitions
(``aisec drift --partial --partition K/4``, run 2 at a time as 2 workers would) and ``aisec drift
merge``. A worker is one CPU: the one task runs pinned to one CPU, each partition task to the CPU of the
worker running it (``sched_setaffinity``), so both sides get the same CPU per worker, as on a cluster
whose worker slots have one CPU each. Printed: wall times, the speed-up, the peak RSS of each process
(``VmHWM`` of each child), and whether the verdicts and every feature's statistic and p-value are the
same. On a shared machine the figures are noisy (on a 2-vCPU VM the same CPU-bound process varies by
+-20% from run to run): ``--repeat R`` runs the whole comparison ``R`` times, one task and split side by
side each time, and prints every speed-up and their median.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SHIFTED = 5
#: runs one ``aisec`` command in a child and prints its exit code, wall time and peak RSS (MB)
CHILD = r"""
import json, os, sys, time
if os.environ.get("AISEC_BENCH_CPU"):
    os.sched_setaffinity(0, {int(os.environ["AISEC_BENCH_CPU"])})  # one worker = one CPU
from airflow_aisec.cli import main
t0 = time.perf_counter()
code = main(sys.argv[1:])
# VmHWM: this process's own peak (ru_maxrss would carry the parent's peak across fork + exec)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"code": code, "s": time.perf_counter() - t0, "rss_mb": hwm / 1024}), file=sys.stderr)
"""


def _aisec(args: list[str], cpu: int | None = None) -> tuple[dict, str]:
    """Run ``aisec ARGS`` as a fresh process (pinned to ``cpu``): ``(exit code, seconds, peak RSS), stdout``."""
    env = {**os.environ, "AISEC_BENCH_CPU": "" if cpu is None else str(cpu)}
    cmd = [sys.executable, "-c", CHILD, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    stats = json.loads(done.stderr.strip().splitlines()[-1])
    if stats["code"] not in (0, 1):
        raise RuntimeError(f"aisec {' '.join(args)} exited {stats['code']}: {done.stdout[-2000:]}")
    return stats, done.stdout


def _make_window(path: Path, rows: int, cols: int, seed: int, shifted: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return
    rng = np.random.default_rng(seed)
    schema = pa.schema([(f"f{i:02d}", pa.float64()) for i in range(cols)])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            arrays = [pa.array(rng.standard_normal(n) + (0.05 if i < shifted else 0.0)) for i in range(cols)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    os.replace(tmp, path)


def _as_files(path: Path) -> Path:
    """The same window as a directory of files, one per 1M-row group (how a window at scale is stored)."""
    import pyarrow.parquet as pq

    folder = path.with_suffix(".files")
    if not folder.exists():
        tmp = path.with_suffix(".files-tmp")
        tmp.mkdir(exist_ok=True)
        source = pq.ParquetFile(path)
        for i in range(source.num_row_groups):
            pq.write_table(source.read_row_group(i), tmp / f"part-{i:04d}.parquet")
        os.replace(tmp, folder)
    return folder


def _features(report: dict) -> dict[str, tuple]:
    return {f["name"]: (f.get("statistic"), f.get("p_value"), f.get("drifted")) for f in report["details"]["features"]}


def drift_scale(
    base: Path,
    rows: int,
    cols: int,
    partitions: int,
    workers: int,
    storage: str = "exact",
    repeat: int = 1,
    layout: str = "file",
) -> dict:
    """The drift half: one task vs ``partitions`` partial tasks on ``workers`` processes + a merge.

    ``storage``: the reference profile keeps every distinct value (``exact``, the default up to 2M
    rows: a partial then counts the window at each of the 1M reference values of every feature) or a
    quantile grid (``grid``, the default above 2M rows: 16,384 knots, KS with certified bounds).
    ``layout``: the window as one Parquet file of 1M-row groups (``file``) or a directory of 1M-row
    files (``files``).
    """
    ref, cur = base / f"scale_ref_{cols}.parquet", base / f"scale_cur_{rows}x{cols}.parquet"
    prof = base / f"scale_ref_{cols}.{storage}.prof"
    _make_window(ref, min(rows, 1_000_000), cols, seed=1, shifted=0)
    _make_window(cur, rows, cols, seed=2, shifted=SHIFTED)
    if layout == "files":
        cur = _as_files(cur)
    if not prof.exists():
        grid = ["--exact-max", "2"] if storage == "grid" else []
        _aisec(["profile", "build", str(ref), *grid, "-o", str(prof), "--format", "json"])
    runs = [_compare(base, prof, cur, partitions, workers) for _ in range(repeat)]
    one, parts, merge, t_parts, same = runs[-1]
    speedups = [r[0]["s"] / (r[3] + r[2]["s"]) for r in runs]
    result = {
        "rows": rows,
        "cols": cols,
        "reference": storage,
        "layout": layout,
        "one_task_s": [r[0]["s"] for r in runs],
        "one_task_rss_mb": one["rss_mb"],
        "partitions": partitions,
        "workers": workers,
        "partitions_s": [r[3] for r in runs],
        "merge_s": [r[2]["s"] for r in runs],
        "speedups": speedups,
        "speedup_median": statistics.median(speedups),
        "part_rss_mb": [p["rss_mb"] for p in parts],
        "merge_rss_mb": merge["rss_mb"],
        "same_verdict": all(r[4][0] for r in runs),
        "same_statistics": all(r[4][1] for r in runs),
    }
    print(
        f"drift: {rows:,}-row x {cols}-feature window ({'one file' if layout == 'file' else 'a directory of files'}), "
        f"reference {min(rows, 1_000_000):,} rows ({storage} profile)"
    )
    for i, (o, _, m, t, _) in enumerate(runs, 1):
        print(
            f"  run {i}: one task (one worker, 1 CPU) {o['s']:6.2f} s | {partitions} partitions on {workers} workers "
            f"{t:6.2f} s + merge {m['s']:5.2f} s | speed-up {speedups[i - 1]:.2f}x"
        )
    print(
        f"  peak RSS: one task {one['rss_mb']:.0f} MB, per partition worker {max(result['part_rss_mb']):.0f} MB, "
        f"merge {merge['rss_mb']:.0f} MB"
    )
    print(
        f"  speed-up median {result['speedup_median']:.2f}x over {repeat} run(s); same verdict: "
        f"{result['same_verdict']}; same statistics and p-values: {result['same_statistics']}"
    )
    return result


def _compare(base: Path, prof: Path, cur: Path, partitions: int, workers: int) -> tuple:
    """One side-by-side run: the one task, then the partitions on ``workers`` CPUs and the merge."""
    cpus = sorted(os.sched_getaffinity(0))
    one, out = _aisec(["drift", "--profile", str(prof), str(cur), "--format", "json"], cpu=cpus[0])
    whole = json.loads(out)
    free: queue.SimpleQueue = queue.SimpleQueue()  # each partition runs on an idle worker's CPU
    for i in range(workers):
        free.put(cpus[i % len(cpus)])

    def part(k: int) -> dict:
        args = ["drift", "--profile", str(prof), str(cur), "--partial", "--partition", f"{k}/{partitions}"]
        cpu = free.get()
        try:
            return _aisec([*args, "-o", str(base / f"scale-part-{k}.json"), "--format", "json"], cpu=cpu)[0]
        finally:
            free.put(cpu)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(part, range(1, partitions + 1)))
    t_parts = time.perf_counter() - t0
    merge, out = _aisec(
        ["drift", "merge", *(str(base / f"scale-part-{k}.json") for k in range(1, partitions + 1)), "--format", "json"],
        cpu=cpus[0],
    )
    merged = json.loads(out)
    same = (whole["status"] == merged["status"], _features(whole) == _features(merged))
    return one, parts, merge, t_parts, same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the drift window")
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reference", choices=("exact", "grid", "both"), default="both", help="reference profile kind")
    parser.add_argument("--repeat", type=int, default=3, help="side-by-side runs (the median speed-up is the figure)")
    parser.add_argument("--layout", choices=("file", "files"), default="file", help="window: one file or a directory")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "aisec-bench-scale"))
    args = parser.parse_args()
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    kinds = ("exact", "grid") if args.reference == "both" else (args.reference,)
    result = {
        f"drift_{kind}": drift_scale(
            base, args.rows, args.cols, args.partitions, args.workers, kind, args.repeat, args.layout
        )
        for kind in kinds
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
