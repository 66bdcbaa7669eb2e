"""Scale benchmarks: the same work on one worker and split over several. Prints figures; never pass/fail.

    .venv/bin/python benchmarks/bench_scale.py hashing [--gib 2] [--files 600] [--dir /tmp] [--repeat 3]

Each section is its own function and sub-command (``hashing`` here; other sections add theirs).

**hashing** (:func:`bench_hashing`): a many-file dataset (default ~2 GiB over ~600 files of 0.5–6.5 MiB
in nested folders; ``--gib 8`` for 8 GiB) hashed by one process with one hashing thread (one worker:
what ``aisec hash DIR -o single.json --workers 1`` runs) against two such processes started together,
each hashing one partition (``aisec hash DIR --partition k/2 -o part-k.json --workers 1``), followed by
the merge (``aisec manifest merge``), each a fresh ``aisec`` process (:data:`RUNNER`): wall times include
interpreter and CLI start-up. The page cache is warmed first. Each of ``--repeat`` rounds times the one
worker and the split side by side; printed: the best of each side, and the median of the rounds'
speed-ups. CPU seconds (user + system) of each process are printed too. The merged manifest is checked
to be byte-identical to the single-pass one. The figure to read is the speed-up (target: >= 1.7x with
two workers); it needs two idle cores: on a shared machine, read the load average printed with it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: ``aisec ARGS`` in a fresh process: what a user or an Airflow task pays, CLI start-up included (a run
#: builds only its own subcommand's parser; exit 0 or the benchmark stops).
RUNNER = """
import sys
from airflow_aisec.cli import main
sys.exit(main(sys.argv[1:] + ["--format", "json"]))
"""
AISEC = [sys.executable, "-c", RUNNER]


# --------------------------------------------------------------------------- hashing
def make_dataset(root: Path, total: int, files: int, seed: int = 1) -> tuple[int, int]:
    """``files`` files of varied sizes summing to about ``total`` bytes, 3 levels of folders."""
    rng = random.Random(seed)
    block = os.urandom(8 << 20)
    weights = [rng.uniform(0.5, 6.5) for _ in range(files)]
    scale = total / sum(weights)
    written = 0
    for i, w in enumerate(weights):
        size = max(1, int(w * scale))
        path = root / f"split-{i % 3}" / f"group-{i % 17:02d}" / f"shard-{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(i.to_bytes(8, "big"))  # every file distinct
            left = size - 8
            while left > 0:
                n = min(left, len(block))
                start = rng.randrange(0, len(block) - n + 1)
                fh.write(block[start : start + n])
                left -= n
        written += max(size, 8)
    return written, files


def _timed(commands: list[list[str]]) -> tuple[float, list[float]]:
    """Start ``commands`` together, wait for all; the wall time and each process's CPU seconds (user + sys).

    Any failure stops the benchmark.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=err) for c in commands]
        cpu = []
        for p, c in zip(procs, commands, strict=True):
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
            if p.returncode != 0:
                err.seek(0)
                raise SystemExit(f"{' '.join(c[3:])} failed ({p.returncode}): {err.read().decode()[-500:]}")
            cpu.append(usage.ru_utime + usage.ru_stime)
    return time.perf_counter() - t0, cpu


def bench_hashing(args: argparse.Namespace) -> None:
    total = int(args.gib * 2**30)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="aisec-bench-scale-") as tmp:
        data, out = Path(tmp, "dataset"), Path(tmp, "out")
        data.mkdir()
        out.mkdir()
        t = time.perf_counter()
        size, files = make_dataset(data, total, args.files)
        print(f"dataset: {files} files, {size / 2**30:.2f} GiB in {time.perf_counter() - t:.1f} s (written)")
        single, merged = out / "single.json", out / "merged.json"
        parts = [out / f"part-{k}.json" for k in (1, 2)]
        one = [*AISEC, "hash", str(data), "-o", str(single), "--workers", "1"]
        two = [
            [*AISEC, "hash", str(data), "--partition", f"{k}/2", "-o", str(p), "--workers", "1"]
            for k, p in zip((1, 2), parts, strict=True)
        ]
        merge = [*AISEC, "manifest", "merge", *map(str, parts), "-o", str(merged)]
        _timed([one])  # warm the page cache (and the interpreter's imports)
        print(f"load average before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPU(s)")
        rounds = [(_timed([one]), _timed(two), _timed([merge])) for _ in range(args.repeat)]
        runs1 = [r[0] for r in rounds]
        runs2 = [(r[1], r[2]) for r in rounds]
        t1, cpu1 = min(runs1)
        (t2, cpu2), (tm, cpum) = min(runs2, key=lambda r: r[0][0] + r[1][0])
        ratios = [r[0][0] / (r[1][0] + r[2][0]) for r in rounds]
        gb = size / 1e9
        same = merged.read_bytes() == single.read_bytes()
        print(f"1 worker  (1 process):           {t1:6.2f} s wall  {gb / t1:5.2f} GB/s  CPU {cpu1[0]:.2f} s")
        print(
            f"2 workers (2 processes + merge): {t2 + tm:6.2f} s wall  {gb / (t2 + tm):5.2f} GB/s  "
            f"(hash {t2:.2f} s, merge {tm:.2f} s; CPU per part {cpu2[0]:.2f} s + {cpu2[1]:.2f} s, merge {cpum[0]:.2f} s)"
        )
        print(f"speed-up with 2 workers (wall, best of each side): {t1 / (t2 + tm):.2f}x (target >= 1.7x)")
        print(
            f"speed-up with 2 workers (wall, median of {len(ratios)} side-by-side rounds): "
            f"{statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)})"
        )
        # on a shared machine the wall clock measures the neighbours; CPU seconds measure the work
        print(
            f"speed-up with 2 workers (CPU seconds, as on two idle cores): "
            f"{cpu1[0] / (max(cpu2) + cpum[0]):.2f}x; merged manifest byte-identical: {same}"
        )
        print(f"load average after timing: {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = ap.add_subparsers(dest="section", required=True)
    h = sub.add_parser("hashing", help="1 worker vs 2 partitioned workers + merge")
    h.add_argument("--gib", type=float, default=2.0, help="dataset size in GiB (default 2; the 8 GiB case: --gib 8)")
    h.add_argument("--files", type=int, default=600, help="number of files (default 600)")
    h.add_argument("--dir", default=tempfile.gettempdir(), help="where to write the dataset")
    h.add_argument("--repeat", type=int, default=3)
    h.set_defaults(func=bench_hashing)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
