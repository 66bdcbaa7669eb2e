"""Artifact integrity: hash and sign a model artifact, verify it before use, catch a tampered copy.

The security chain: ``hash_and_sign`` writes an ``aisec.manifest/v1`` manifest (SHA-256 of every file)
plus a detached Ed25519 signature and emits an asset event carrying the digest; ``verify_artifact``
(deferrable sensor) waits for artifact and manifest, checks the signature and every file;
``verify_tampered`` fails closed on a copy whose weights were changed.

Demo parts (``aisec_demo.drills``): ``build_artifact`` writes a small artifact and a demo key pair (in
production the key lives in an ``aisec_signing_key`` connection); ``tamper_copy`` flips bytes in the
weights; ``confirm_tamper_caught`` (``all_done``) asserts the report names the changed file, so the run
succeeds while showing the failure.

**Storage.** Files live under ``$AISEC_DATA_DIR/artifact_integrity``: with Celery workers on separate
hosts it must be a shared filesystem. **On Kubernetes** (KubernetesExecutor, no shared disk) mount a
ReadWriteMany volume or an object-store mount at ``AISEC_DATA_DIR``, or give the operators ``s3://``
paths with an AWS connection; the deferrable sensor waits in the triggerer, not in a worker pod.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, chain
from aisec_demo import drills as demo

from airflow_aisec.operators.integrity import ArtifactHashOperator, ArtifactIntegrityOperator
from airflow_aisec.sensors.integrity import ArtifactIntegritySensor
from airflow_aisec.utils.paths import data_dir

BASE = data_dir("artifact_integrity")  # shared storage root for this DAG's files
ARTIFACT = str(BASE / "model")
MANIFEST = str(BASE / "model.manifest.json")
TAMPERED = str(BASE / "model-tampered")
PRIVATE_KEY, PUBLIC_KEY = str(BASE / "keys" / "signing.pem"), str(BASE / "keys" / "signing.pub")

with DAG(
    dag_id="aisec_artifact_integrity",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisec", "example", "integrity"],
    doc_md=__doc__,
) as dag:
    # [START aisec_artifact_integrity]
    hash_and_sign = ArtifactHashOperator(
        task_id="hash_and_sign",
        path=ARTIFACT,
        manifest_path=MANIFEST,
        signing_key_path=PRIVATE_KEY,
        outlets=[Asset("aisec://artifacts/demo-model")],
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
    verify_tampered = ArtifactIntegrityOperator(
        task_id="verify_tampered", path=TAMPERED, manifest_path=MANIFEST, public_key_path=PUBLIC_KEY
    )

    chain(
        demo.build_artifact(ARTIFACT, PRIVATE_KEY, PUBLIC_KEY),  # your training output goes here
        hash_and_sign,
        verify_artifact,
        demo.tamper_copy(ARTIFACT, TAMPERED),  # drill: a backdoored weight
        verify_tampered,
        demo.confirm_tamper_caught(),
    )
    # [END aisec_artifact_integrity]
