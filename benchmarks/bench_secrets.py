"""Secrets engine throughput with the prefilter off and on, same files, same process. Prints figures; never pass/fail.

    .venv/bin/python benchmarks/bench_secrets.py [--files 400] [--seed 0] [--profile]

Files: a seeded sample of site-packages ``.py`` sources, then of configuration-like files (``.json``,
``.yaml``, ``.toml``, ``.cfg``, ``.ini``, ``.txt``); each set is scanned through the engine's
``scan_bytes`` (decoding, chunking, detectors, dedupe) once per setting, and the hits are compared.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sysconfig
import time
from pathlib import Path

from airflow_aisec.core.secrets.content import ScanTally, scan_bytes
from airflow_aisec.core.secrets.detectors import ScanContext, detector
from airflow_aisec.core.secrets.redaction import Redactor

CONFIG_SUFFIXES = {".json", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".txt"}


def sample(n: int, seed: int, config: bool) -> list[tuple[str, bytes]]:
    site = Path(sysconfig.get_paths()["purelib"])
    if config:
        paths = sorted(p for p in site.rglob("*") if p.suffix in CONFIG_SUFFIXES and p.is_file())
    else:
        paths = sorted(site.rglob("*.py"))
    paths = [p for p in paths if p.stat().st_size <= 1_000_000]
    picked = random.Random(seed).sample(paths, min(n, len(paths)))
    return [(str(p), p.read_bytes()) for p in picked]


def scan(files: list[tuple[str, bytes]], prefilter: bool) -> tuple[float, list[tuple]]:
    with detector(prefilter=prefilter) as scan_lines:
        ctx = ScanContext(scan_lines, Redactor(), 10**8)
        tally = ScanTally()
        start = time.perf_counter()
        for path, data in files:
            scan_bytes(ctx, data, path, tally, path)
        elapsed = time.perf_counter() - start
    return elapsed, [(h.file, h.line, h.type, h.fingerprint, h.allow_reason) for h in tally.hits]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile the prefiltered run")
    args = parser.parse_args()
    for label, config in (("python sources", False), ("config files", True)):
        files = sample(args.files, args.seed, config)
        size = sum(len(d) for _, d in files)
        off, hits_off = scan(files, False)
        on, hits_on = scan(files, True)
        print(
            f"{label}: {len(files)} files, {size / 1e6:.2f} MB, {len(hits_off)} hits; "
            f"prefilter off {size / 1e3 / off:.0f} KB/s ({off:.1f} s), on {size / 1e3 / on:.0f} KB/s ({on:.1f} s), "
            f"x{off / on:.1f}; same hits: {hits_off == hits_on}"
        )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(scan, files, True)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
