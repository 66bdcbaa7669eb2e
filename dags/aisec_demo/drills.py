"""Demo data and drills of the smaller recipes: artifacts to sign, tampered copies, drift windows, and the
tasks that assert a drill was caught (trigger rule ``all_done``: the run succeeds while showing a failure).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task


@task
def build_artifact(artifact_dir: str, private_key: str, public_key: str) -> str:
    """A small model-artifact directory (config, weights, tokenizer) and a demo Ed25519 key pair."""
    import json
    import random
    import shutil
    from pathlib import Path

    from airflow_aisec.core.signing import generate_ed25519_keypair

    root = Path(artifact_dir)
    shutil.rmtree(root, ignore_errors=True)
    (root / "tokenizer").mkdir(parents=True)
    rng = random.Random(42)
    (root / "weights.bin").write_bytes(bytes(rng.getrandbits(8) for _ in range(256 * 1024)))
    (root / "config.json").write_text(json.dumps({"model": "demo-classifier", "layers": 4}, indent=2))
    (root / "tokenizer" / "vocab.txt").write_text("\n".join(f"token{i}" for i in range(1000)))
    if not Path(private_key).exists():
        generate_ed25519_keypair(private_key, public_key)
    return artifact_dir


@task
def tamper_copy(artifact_dir: str, tampered_dir: str) -> str:
    """Copy the artifact and flip bytes in the weights (a backdoored weight)."""
    import shutil
    from pathlib import Path

    shutil.rmtree(tampered_dir, ignore_errors=True)
    shutil.copytree(artifact_dir, tampered_dir)
    weights = Path(tampered_dir, "weights.bin")
    data = bytearray(weights.read_bytes())
    data[1000:1004] = b"\x00\xde\xad\x00"
    weights.write_bytes(bytes(data))
    return tampered_dir


@task(trigger_rule="all_done")
def confirm_tamper_caught(ti=None) -> dict[str, Any]:
    """The tampered copy must have failed verification, naming exactly the changed file."""
    report = ti.xcom_pull(task_ids="verify_tampered", key="aisec_report")
    if not report or report["status"] != "fail":
        raise RuntimeError(f"the tampered copy was NOT caught: {report and report['summary']}")
    changed = [f["location"] for f in report["findings"] if f["id"] == "AISEC-INT-CHANGED"]
    if changed != ["weights.bin"]:
        raise RuntimeError(f"unexpected findings for the tampered copy: {changed}")
    return {"caught": True, "changed": changed, "summary": report["summary"]}


#: advisories (with a fix version) the audit must report for data/requirements/known-vulnerable.txt
EXPECTED_ADVISORIES = {"PYSEC-2018-28": "2.20.0", "PYSEC-2023-74": "2.31.0", "PYSEC-2021-66": "2.11.3"}


@task(trigger_rule="all_done")
def confirm_vulnerabilities_caught(ti=None) -> dict[str, Any]:
    """The known-vulnerable pins must have failed the audit, naming the expected advisories and fixes."""
    report = ti.xcom_pull(task_ids="audit_known_vulnerable", key="aisec_report")
    if not report or report["status"] != "fail":
        raise RuntimeError(f"known-vulnerable pins were NOT caught: {report and report['summary']}")
    fixes = {f["id"]: f["details"]["fix_versions"] for f in report["findings"]}
    missing = {i: v for i, v in EXPECTED_ADVISORIES.items() if v not in fixes.get(i, [])}
    if missing:
        raise RuntimeError(f"expected advisories (with fix versions) missing from the report: {missing}")
    return {"caught": sorted(fixes), "summary": report["summary"]}


@task
def generate_drift_data(reference: str, window: str) -> str:
    """Write a reference set and a live window in which ``age`` and ``income`` are shifted (deterministic)."""
    import os

    import numpy as np
    import pandas as pd

    os.makedirs(os.path.dirname(reference), exist_ok=True)
    rng = np.random.default_rng(42)

    def frame(shift: float, rows: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.normal(40 + 8 * shift, 12, rows).round(),
                "income": rng.lognormal(10 + shift, 0.5, rows),
                "tenure_months": rng.integers(0, 120, rows),
                "score": rng.normal(0, 1, rows),
                "segment": rng.choice(["retail", "smb", "enterprise"], rows, p=[0.6, 0.3, 0.1]),
                "n_products": rng.integers(1, 5, rows),
            }
        )

    frame(0.0, 20_000).to_parquet(reference, index=False)
    frame(0.5, 5_000).to_parquet(window, index=False)
    return window


@task
def generate_scale_drift_data(reference: str, window: str, rows: int = 40_000) -> str:
    """Write a reference set and a larger live window (several row groups, ``age`` shifted) for the
    partitioned drift recipe (deterministic)."""
    import os

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(os.path.dirname(reference), exist_ok=True)
    rng = np.random.default_rng(7)

    def table(shift: float, n: int) -> pa.Table:
        return pa.table(
            {
                "age": rng.normal(40 + 8 * shift, 12, n).round(),
                "income": rng.lognormal(10, 0.5, n),
                "score": rng.normal(0, 1, n),
                "segment": rng.choice(["retail", "smb", "enterprise"], n, p=[0.6, 0.3, 0.1]),
            }
        )

    pq.write_table(table(0.0, rows // 2), reference, row_group_size=5_000)
    pq.write_table(table(0.5, rows), window, row_group_size=5_000)
    return window
