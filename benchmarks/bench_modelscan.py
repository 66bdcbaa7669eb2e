"""Figures for the model scan, the model server and the bounded load test (never pass/fail).

Run: ``.venv/bin/python benchmarks/bench_modelscan.py`` (≈1 min). Figures depend on machine load.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
import tempfile
import time


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from airflow_aisec.core import modelscan as ms
    from airflow_aisec.core.loadtest import run_load_test

    # the stand-in model server is demo code shipped with the example DAGs (dags/aisec_demo/)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dags"))
    from aisec_demo.model_server import ModelServer, sha256_file

    tmp = tempfile.mkdtemp(prefix="aisec-bench-")
    rng = np.random.default_rng(0)

    # 1. opcode-heavy pickle: symbolic walk speed
    obj = [{"id": i, "name": f"n{i}", "w": float(i)} for i in range(200_000)]
    path = os.path.join(tmp, "many.pkl")
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=4)
    scan, dt = _timed(lambda: ms.scan_file(path))
    print(
        f"pickle walk: {scan.opcodes:,} opcodes, {os.path.getsize(path) / 1e6:.1f} MB in {dt:.2f}s "
        f"= {scan.opcodes / dt / 1e6:.2f} M opcodes/s ({scan.verdict})"
    )

    # 2. large joblib: array data skipped, hashing dominates
    X = rng.normal(size=(400, 8))
    model = {
        "forest": RandomForestClassifier(n_estimators=50, random_state=0).fit(X, (X[:, 0] > 0).astype(int)),
        "embeddings": rng.normal(size=(25_000_000,)).astype(np.float64),  # 200 MB
    }
    path = os.path.join(tmp, "big.joblib")
    joblib.dump(model, path)
    size = os.path.getsize(path)
    scan, dt = _timed(lambda: ms.scan_file(path))
    print(
        f"joblib {size / 1e6:.0f} MB (forest + 200 MB array): {dt:.2f}s = {size / dt / 1e9:.2f} GB/s "
        f"incl. SHA-256; {scan.joblib_arrays} arrays skipped ({scan.verdict})"
    )
    _, dt_load = _timed(lambda: joblib.load(path))
    print(f"  for comparison joblib.load (unsafe) of the same file: {dt_load:.2f}s")

    # 3. safetensors: 2000 tensors, 64 MB
    header, offset = {}, 0
    for i in range(2000):
        n = 8192
        header[f"layer{i}.weight"] = {"dtype": "F32", "shape": [n], "data_offsets": [offset, offset + 4 * n]}
        offset += 4 * n
    raw = json.dumps(header).encode()
    path = os.path.join(tmp, "m.safetensors")
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    scan, dt = _timed(lambda: ms.scan_file(path))
    print(f"safetensors 2000 tensors / {os.path.getsize(path) / 1e6:.0f} MB: {dt * 1000:.0f} ms ({scan.verdict})")

    # 4. model server + bounded load test (loopback)
    path = os.path.join(tmp, "lr.joblib")
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), path)
    body = json.dumps({"features": X[0].tolist()}).encode()
    with ModelServer(
        path,
        expected_sha256=sha256_file(path),
        log_path=os.path.join(tmp, "inf.jsonl"),
        exempt_clients=["aisec-loadtest"],
    ) as srv:
        for c in (1, 10):
            rep = run_load_test(srv.url + "/predict", requests=1000, concurrency=c, payload=body)
            m = rep.metrics
            print(
                f"load test 1000 req c={c}: {m['throughput_rps']} req/s, p50 {m['latency_p50_ms']:.1f} ms, "
                f"p95 {m['latency_p95_ms']:.1f} ms, p99 {m['latency_p99_ms']:.1f} ms, errors {m['error_rate']:.1%}"
            )

    from airflow_aisec.core.inference_audit import audit_log

    rep, dt = _timed(lambda: audit_log(os.path.join(tmp, "inf.jsonl"), exempt_clients=["aisec-loadtest"]))
    print(f"inference audit of {rep.metrics['requests']} log lines: {dt * 1000:.0f} ms ({rep.status})")


if __name__ == "__main__":
    main()
