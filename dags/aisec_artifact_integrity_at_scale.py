"""Artifact integrity at scale: hash one dataset on several workers, merge the parts into one signed manifest.

``plan`` lists the dataset once and returns one spec per partition (files balanced by bytes, with the
digest of the listing); ``hash_part`` is mapped over the specs, one task per partition, on as many
workers as the pool gives; ``merge`` joins the parts into the manifest a single ``ArtifactHashOperator``
would write (byte for byte, root digest included) and signs it; ``verify`` checks the dataset
against it. A part is refused if the dataset changed between planning and hashing, and the merge
refuses missing, repeated or edited parts.

Demo part: ``build_dataset`` writes a small sharded dataset and a demo key pair (in production the key
lives in an ``aisec_signing_key`` connection). Files live under ``$AISEC_DATA_DIR`` (shared storage
with Celery workers on several hosts); an ``s3://`` path with ``storage_conn_id`` works the same way.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, chain, task

from airflow_aisec.operators.integrity import (
    ArtifactHashOperator,
    ArtifactIntegrityOperator,
    ArtifactPartitionPlanOperator,
    ManifestMergeOperator,
)
from airflow_aisec.utils.paths import data_dir

BASE = data_dir("artifact_integrity_at_scale")  # shared storage root for this DAG's files
DATASET, MANIFEST = str(BASE / "corpus"), str(BASE / "corpus.manifest.json")
PARTS = str(BASE / "parts" / "{{ run_id }}")  # one folder of parts per run
PRIVATE_KEY, PUBLIC_KEY = str(BASE / "keys" / "signing.pem"), str(BASE / "keys" / "signing.pub")


@task
def build_dataset(root: str, private_key: str, public_key: str) -> str:
    """Twelve shards of varied sizes in two splits, and a demo Ed25519 key pair."""
    import random
    import shutil
    from pathlib import Path

    from airflow_aisec.core.signing import generate_ed25519_keypair

    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(7)
    for i in range(12):
        shard = Path(root, "train" if i < 9 else "test", f"shard-{i:03d}.bin")
        shard.parent.mkdir(parents=True, exist_ok=True)
        shard.write_bytes(rng.randbytes(rng.randint(1, 64) * 4096))
    if not Path(private_key).exists():
        generate_ed25519_keypair(private_key, public_key)
    return root


with DAG(
    dag_id="aisec_artifact_integrity_at_scale",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisec", "example", "integrity"],
    doc_md=__doc__,
) as dag:
    # [START aisec_artifact_integrity_at_scale]
    plan = ArtifactPartitionPlanOperator(task_id="plan", path=DATASET, partitions=4)
    hash_part = ArtifactHashOperator.partial(
        task_id="hash_part", path=DATASET, manifest_path=PARTS + "/part-{{ ti.map_index }}.json"
    ).expand(partition=plan.output)
    merge = ManifestMergeOperator(
        task_id="merge",
        parts=hash_part.output,  # the hashing tasks' reports: each names its part and binds it to its digest
        manifest_path=MANIFEST,
        signing_key_path=PRIVATE_KEY,
        outlets=[Asset("aisec://datasets/demo-corpus")],
    )
    verify = ArtifactIntegrityOperator(
        task_id="verify", path=DATASET, manifest_path=MANIFEST, public_key_path=PUBLIC_KEY
    )

    chain(build_dataset(DATASET, PRIVATE_KEY, PUBLIC_KEY), plan, hash_part, merge, verify)
    # [END aisec_artifact_integrity_at_scale]
