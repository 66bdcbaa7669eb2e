"""Hashing throughput vs Python hashlib single-stream, and peak memory. Prints figures; never pass/fail.

    .venv/bin/python benchmarks/bench_hash.py [--size-mib 1024] [--dir /tmp]

* one large file: ``airflow_aisec.core.hashing.hash_file`` vs ``hashlib.file_digest`` (same run, same file,
  page cache warmed first, best of 3);
* the same number of bytes over 256 files: ``build_manifest(workers=2)`` vs hashlib over the files one
  after another;
* peak RSS of a fresh process hashing the large file (``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airflow_aisec.core import hashing


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def hashlib_stream(paths: list[Path], algorithm: str = "sha256") -> None:
    for p in paths:
        with open(p, "rb") as fh:
            hashlib.file_digest(fh, algorithm)


def write_random(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    size = args.size_mib << 20
    gib = size / 1e9
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="aisec-bench-") as tmp:
        big = Path(tmp, "big.bin")
        write_random(big, size)
        many = Path(tmp, "many")
        many.mkdir()
        for i in range(256):
            write_random(many / f"part-{i:03d}.bin", size // 256)
        files = sorted(many.iterdir())
        hashlib_stream([big, *files])  # warm the page cache

        print(f"airflow-aisec hashing benchmark: {args.size_mib} MiB, {os.cpu_count()} CPU(s), best of {args.repeat}")
        base = best_of(args.repeat, lambda: hashlib_stream([big]))
        ours = best_of(args.repeat, lambda: hashing.hash_file(big))
        print(
            f"single file sha256: hashlib {gib / base:.2f} GB/s | aisec {gib / ours:.2f} GB/s | ratio {base / ours:.3f}x"
        )
        if "blake3" in hashing.available_algorithms():
            b3 = best_of(args.repeat, lambda: hashing.hash_file(big, "blake3"))
            print(f"single file blake3: aisec {gib / b3:.2f} GB/s")

        base_dir = best_of(args.repeat, lambda: hashlib_stream(files))
        for workers in (1, 2):
            t = best_of(args.repeat, lambda w=workers: hashing.build_manifest(many, workers=w))
            print(
                f"256 files sha256, {workers} worker(s): hashlib single-stream {gib / base_dir:.2f} GB/s | "
                f"aisec {gib / t:.2f} GB/s | speed-up {base_dir / t:.2f}x"
            )

        code = (
            "import resource, sys\n"
            "from airflow_aisec.core.hashing import hash_file\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"hash_file({str(big)!r})\n"
            "print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        )
        before, after = map(int, subprocess.check_output([sys.executable, "-c", code], text=True).split())
        print(
            f"peak RSS hashing the {args.size_mib} MiB file: {after / 1024:.1f} MB (process baseline {before / 1024:.1f} MB)"
        )


if __name__ == "__main__":
    main()
