"""Container image scan benchmark: a whole ``aisec scan-image`` process on a ~1 GB ``docker save`` archive.

    .venv/bin/python benchmarks/bench_image.py              # ~1 GB archive (default --gib 1.0)
    .venv/bin/python benchmarks/bench_image.py --gib 0.25   # quicker

The archive is built once in a temporary directory, shaped like a real Python ML image: a base
layer of ELF-like shared libraries and OS files, a ``site-packages`` layer of many small Python
sources plus a few vulnerable pinned distributions, a layer of large data files, and a model layer
(a joblib-style pickle of float arrays), with gzip-compressed layers as ``docker save`` of a
BuildKit image holds them. The scan runs as a fresh process (what an Airflow task pays: imports,
OSV database load, scan), timed wall-clock; its peak RSS is the child's own ``VmHWM``. Figures are printed, never asserted. For comparison the same run times ``tar -tzf``-style
listing of every layer with Python's tarfile (the floor of any scanner reading these layers).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dags"))

from tests.image_helpers import Entry, Image, dist_info, file, sha256

ROOT = Path(__file__).resolve().parents[1]
OSV = ROOT / "data" / "osv" / "pypa-advisory-db-2024-10-10.zip"
SITE = "usr/local/lib/python3.11/site-packages"


def _python_sources() -> list[bytes]:
    """Real Python sources (this environment's site-packages): what an image's site-packages holds."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    return [p.read_bytes() for p in sorted(site.glob("*/**/*.py"))[:20000] if p.stat().st_size < 200_000]


def build(dest: Path, gib: float) -> Path:
    target = int(gib * 1024**3)
    # base: ELF-like libraries (random bytes after an ELF header) and OS text files
    base: list[Entry] = []
    lib_bytes = int(target * 0.35)
    for i in range(max(1, lib_bytes // (32 * 1024**2))):
        base.append(file(f"usr/lib/x86_64-linux-gnu/libfake{i}.so", b"\x7fELF" + os.urandom(32 * 1024**2 - 4)))
    for i in range(500):
        base.append(file(f"etc/conf.d/file{i}.conf", f"key{i} = value{i}\n" * 20))
    # site-packages: many small Python sources + distributions (one vulnerable)
    site: list[Entry] = [*dist_info(SITE, "requests", "2.19.0"), *dist_info(SITE, "numpy", "1.26.4")]
    sources = _python_sources()
    src_bytes, n = int(target * 0.15), 0
    while src_bytes > 0:
        data = sources[n % len(sources)]
        site.append(file(f"{SITE}/pkg{n // 200}/mod{n}.py", data))
        src_bytes -= len(data)
        n += 1
    # data: large incompressible-ish files
    data_layer = [
        file(f"opt/data/shard{i}.bin", os.urandom(48 * 1024**2))
        for i in range(max(1, int(target * 0.3) // (48 * 1024**2)))
    ]
    # model: a pickle of float arrays (list of bytes blobs stands in for numpy buffers)
    weights = {"layers": [os.urandom(8 * 1024**2) for _ in range(max(1, int(target * 0.2) // (8 * 1024**2)))]}
    model = [file("opt/model/model.pkl", pickle.dumps(weights, protocol=4))]
    image = Image(layers=[base, site, data_layer, model], user="app")
    tars = image.tars()
    config = json.dumps(image.config(tars)).encode()
    path = dest / "image.tar"
    with tarfile.open(path, "w") as out:
        names = []
        for t in tars:
            blob = gzip.compress(t, compresslevel=1, mtime=0)
            name = f"blobs/sha256/{sha256(blob)[7:]}"
            names.append(name)
            _add(out, name, blob)
        cname = f"blobs/sha256/{sha256(config)[7:]}"
        _add(out, cname, config)
        _add(out, "manifest.json", json.dumps([{"Config": cname, "RepoTags": ["bench:1"], "Layers": names}]).encode())
    return path


def _add(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    out.addfile(info, io.BytesIO(data))


#: runs ``aisec ARGS`` and reports the process's own peak RSS (``VmHWM``: ``ru_maxrss`` of a child would
#: carry this benchmark's own memory, which holds the built image, across fork + exec)
CHILD = r"""
import json, sys
from airflow_aisec.cli import main
try:
    code = main(sys.argv[1:])
finally:
    hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print(json.dumps({"peak_mib": hwm / 1024}), file=sys.stderr)
"""


def _child(args: list[str]) -> tuple[float, float, str]:
    """``(wall seconds, peak RSS MiB of the child itself, stdout)`` of a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    peak = 0.0
    for line in reversed(proc.stderr.strip().splitlines()):
        if line.startswith('{"peak_mib"'):
            peak = json.loads(line)["peak_mib"]
            break
    return wall, peak, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="approximate uncompressed image size in GiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = build(Path(tmp), args.gib)
        print(f"built {path.stat().st_size / 1024**3:.2f} GiB archive in {time.perf_counter() - t0:.0f} s")
        listing = (
            "import tarfile,gzip,sys,json;t=tarfile.open(sys.argv[1]);"
            "m=json.load(t.extractfile('manifest.json'))[0]\n"
            "for n in m['Layers']:\n"
            "  for i in tarfile.open(fileobj=gzip.GzipFile(fileobj=t.extractfile(n)),mode='r|'): pass"
        )
        wall, _, _ = _child([sys.executable, "-c", listing, str(path)])
        print(f"floor: stream every layer with tarfile (decompress + list): {wall:.1f} s")
        aisec = [
            sys.executable,
            "-c",
            CHILD,
            "scan-image",
            str(path),
            "--osv-db",
            str(OSV),
            "--format",
            "json",
        ]
        wall, peak_mib, out = _child(aisec)
        report = json.loads(out)
        if report["status"] == "error":
            print(
                f"aisec scan-image (whole process): {wall:.1f} s, peak RSS {peak_mib:.0f} MiB; ERROR: {report['summary']}"
            )
            return
        m = report["metrics"]
        print(
            f"aisec scan-image (whole process): {wall:.1f} s, peak RSS {peak_mib:.0f} MiB; status {report['status']}; "
            f"{m['layers']} layers, {m['files']} files, {m['bytes_uncompressed'] / 1024**3:.2f} GiB uncompressed, "
            f"{m['python_packages']} packages ({m['vulnerable_packages']} vulnerable), {m['model_files']} model file(s), "
            f"{m['binaries_not_secret_scanned']} binaries not secret-scanned"
        )


if __name__ == "__main__":
    main()
