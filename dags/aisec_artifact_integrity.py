"""Artifact integrity, end to end: hash and sign a model artifact, verify it, catch a tampered copy.

Runs as-is on local files under ``$AISEC_DATA_DIR/artifact_integrity`` (default ``$AIRFLOW_HOME/aisec``):

1. ``build_artifact`` writes a small model-artifact directory (config, weights, tokenizer) and an
   Ed25519 key pair for the demo (in production the key lives in an ``aisec_signing_key`` connection).
2. ``hash_and_sign`` writes the manifest + detached signature and emits an asset event carrying the digest.
3. ``verify_artifact`` (a sensor, deferrable) waits for artifact and manifest, checks the signature and
   every file.
4. ``tamper_copy`` copies the artifact and flips bytes in the weights; ``verify_tampered`` fails closed
   on it, and ``confirm_tamper_caught`` (trigger rule ``all_done``) asserts that the report names the
   changed file — so the run as a whole succeeds while showing the failure.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, chain, dag, task

from airflow_aisec.operators.integrity import ArtifactHashOperator, ArtifactIntegrityOperator
from airflow_aisec.sensors.integrity import ArtifactIntegritySensor
from airflow_aisec.utils.paths import data_dir

BASE = data_dir("artifact_integrity")
ARTIFACT = str(BASE / "model")
MANIFEST = str(BASE / "model.manifest.json")
TAMPERED = str(BASE / "model-tampered")
PRIVATE_KEY = str(BASE / "keys" / "signing.pem")
PUBLIC_KEY = str(BASE / "keys" / "signing.pub")
MODEL_ASSET = Asset("aisec://artifacts/demo-model")


@dag(
    dag_id="aisec_artifact_integrity",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisec", "example", "integrity"],
    doc_md=__doc__,
)
def aisec_artifact_integrity():
    @task
    def build_artifact() -> str:
        import json
        import random
        import shutil
        from pathlib import Path

        from airflow_aisec.core.signing import generate_ed25519_keypair

        root = Path(ARTIFACT)
        shutil.rmtree(root, ignore_errors=True)
        (root / "tokenizer").mkdir(parents=True)
        rng = random.Random(42)
        (root / "weights.bin").write_bytes(bytes(rng.getrandbits(8) for _ in range(256 * 1024)))
        (root / "config.json").write_text(json.dumps({"model": "demo-classifier", "layers": 4}, indent=2))
        (root / "tokenizer" / "vocab.txt").write_text("\n".join(f"token{i}" for i in range(1000)))
        if not Path(PRIVATE_KEY).exists():
            generate_ed25519_keypair(PRIVATE_KEY, PUBLIC_KEY)
        return ARTIFACT

    hash_and_sign = ArtifactHashOperator(
        task_id="hash_and_sign",
        path=ARTIFACT,
        manifest_path=MANIFEST,
        signing_key_path=PRIVATE_KEY,
        outlets=[MODEL_ASSET],
    )

    verify_artifact = ArtifactIntegritySensor(
        task_id="verify_artifact",
        path=ARTIFACT,
        manifest_path=MANIFEST,
        public_key_path=PUBLIC_KEY,
        deferrable=True,
        poke_interval=5,
        timeout=600,
    )

    @task
    def tamper_copy() -> str:
        import shutil
        from pathlib import Path

        shutil.rmtree(TAMPERED, ignore_errors=True)
        shutil.copytree(ARTIFACT, TAMPERED)
        weights = Path(TAMPERED, "weights.bin")
        data = bytearray(weights.read_bytes())
        data[1000:1004] = b"\x00\xde\xad\x00"  # a backdoored weight
        weights.write_bytes(bytes(data))
        return TAMPERED

    verify_tampered = ArtifactIntegrityOperator(
        task_id="verify_tampered",
        path=TAMPERED,
        manifest_path=MANIFEST,
        public_key_path=PUBLIC_KEY,
    )

    @task(trigger_rule="all_done")
    def confirm_tamper_caught(ti=None) -> dict:
        report = ti.xcom_pull(task_ids="verify_tampered", key="aisec_report")
        if not report or report["status"] != "fail":
            raise RuntimeError(f"the tampered copy was NOT caught: {report and report['summary']}")
        changed = [f["location"] for f in report["findings"] if f["id"] == "AISEC-INT-CHANGED"]
        if changed != ["weights.bin"]:
            raise RuntimeError(f"unexpected findings for the tampered copy: {changed}")
        return {"caught": True, "changed": changed, "summary": report["summary"]}

    chain(build_artifact(), hash_and_sign, verify_artifact, tamper_copy(), verify_tampered, confirm_tamper_caught())


aisec_artifact_integrity()
