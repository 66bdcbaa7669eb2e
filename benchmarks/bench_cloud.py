"""Cloud posture figures: IAM lint throughput (pure) and S3 posture cost per bucket against a loopback
moto server (API calls and wall time per bucket). Prints figures; never pass/fail.

    .venv/bin/python benchmarks/bench_cloud.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from airflow_aisec.core.aws import iam  # noqa: E402
from airflow_aisec.core.aws import s3 as s3_posture  # noqa: E402
from tests.fixtures.moto_server import start_moto_server, stop_moto_server  # noqa: E402


def bench_iam(n: int = 2000) -> None:
    docs = []
    for path in sorted((REPO / "data" / "iam").glob("*.json")):
        source, doc = iam.load_policy_file(path)
        docs.append((source, *iam.split_wrapped(source, doc)))
    batch = (docs * (n // len(docs) + 1))[:n]
    t0 = time.perf_counter()
    report = iam.lint_documents(batch, subject="bench", training_data_buckets=["acme-ml-training-data"])
    dt = time.perf_counter() - t0
    print(f"iam lint: {n} policy documents in {dt:.3f} s = {n / dt:,.0f} policies/s ({len(report.findings)} findings)")


def bench_s3(buckets: int = 20) -> None:
    server = start_moto_server()
    try:
        s3 = server.client("s3")
        names = [f"bench-{i:03d}" for i in range(buckets)]
        for name in names:
            s3.create_bucket(Bucket=name)
        t0 = time.perf_counter()
        report = s3_posture.check_s3_posture(s3, names, check_object_lock=True).to_dict()
        dt = time.perf_counter() - t0
        calls = report["metrics"]["api_calls"]
        print(
            f"s3 posture (moto, loopback): {buckets} buckets in {dt:.2f} s = {dt / buckets * 1000:.0f} ms/bucket, "
            f"{calls / buckets:.0f} API calls/bucket, {len(report['findings'])} findings"
        )
        t0 = time.perf_counter()
        report = s3_posture.check_s3_posture(s3, names, enforce=True).to_dict()
        dt = time.perf_counter() - t0
        print(
            f"s3 posture --enforce: {buckets} buckets in {dt:.2f} s, "
            f"{report['metrics']['remediations_applied']} settings changed, {report['metrics']['api_calls']} API calls"
        )
    finally:
        stop_moto_server(server.process)


if __name__ == "__main__":
    bench_iam()
    bench_s3()
    print(json.dumps({"note": "2-core machine shared with other work: figures are noisy"}))
