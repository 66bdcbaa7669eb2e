"""Secured training: only verified, validated data reaches the model, and the model's lineage is signed.

The security chain: ``audit_dependencies`` (OSV audit + CycloneDX SBOM of the training environment) →
``verify_dataset_provenance`` (source allowlist + pinned SHA-256, signed in-toto statement; a tampered
dataset fails here and training never runs) → ``validate_dataset`` (Great Expectations suite + poisoning
heuristics against a reference profile) → ``split_dataset`` (seeded, digests recorded) → training →
``hash_and_sign_model`` (signed manifest) → ``scan_model`` (pickle opcodes, never unpickled) →
``write_ml_bom`` (CycloneDX 1.6 ML-BOM: model, data, environment + VEX) → ``record_model_provenance`` (signed statement: dataset, splits, SBOM, code) → ``publish_model``
(re-verifies the signature, emits ``aisec://models/breast-cancer-classifier``).

Demo parts (``aisec_demo.training``): the dataset is scikit-learn's bundled breast-cancer set, landed as
CSV with a demo signing key; ``{"tamper": true}`` poisons it after it lands (the run must fail).

**Storage.** Every file lives under ``$AISEC_DATA_DIR/secure_training`` (default ``$AIRFLOW_HOME/aisec``),
and tasks hand files to each other there: with Celery workers on separate hosts, ``AISEC_DATA_DIR`` must
be the same shared filesystem on every worker (NFS/EFS mount); report data travels by XCom.
**On Kubernetes** (KubernetesExecutor: one pod per task, no shared disk) mount a ReadWriteMany volume or
an object-store mount (S3 Mountpoint/gcsfuse CSI) at ``AISEC_DATA_DIR`` in the pod template, keep the
signing key in an ``aisec_signing_key`` connection instead of a file, and use ``s3://`` URIs where the
operator accepts them (provenance, validation, integrity).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Asset, Param, chain
from aisec_demo import data_file
from aisec_demo import training as demo

from airflow_aisec.operators.audit import DependencyAuditOperator
from airflow_aisec.operators.integrity import ArtifactHashOperator
from airflow_aisec.operators.mlbom import MLBomOperator
from airflow_aisec.operators.modelscan import ModelArtifactScanOperator
from airflow_aisec.operators.provenance import DatasetProvenanceOperator
from airflow_aisec.operators.robustness import AdversarialRobustnessOperator
from airflow_aisec.operators.split import ReproducibleSplitOperator
from airflow_aisec.operators.validation import DataValidationOperator
from airflow_aisec.utils.paths import data_dir

MODEL_NAME = "breast-cancer-classifier"
BASE = data_dir("secure_training")  # shared storage root for this DAG's files
SOURCE_DIR = str(BASE / "source")  # the approved source: the only place training data may come from
DATASET = str(BASE / "source" / "breast_cancer.csv")
#: Known-good SHA-256 of the deterministic CSV export of ``sklearn.datasets.load_breast_cancer``.
DATASET_SHA256 = "75a1d74a59df9cb0a78ecc0a36085bf8a85239557f178d3b8d758e88b26416e1"
PROFILE = str(BASE / "reference" / "breast_cancer.profile.json")
MODEL_DIR = str(BASE / "staging" / "model")
MODEL_MANIFEST = str(BASE / "staging" / "model.manifest.json")
MODEL_STATEMENT = str(BASE / "staging" / "model.intoto.json")
MODEL_BOM = str(BASE / "staging" / "model.mlbom.cdx.json")  # CycloneDX 1.6 ML-BOM
PRIVATE_KEY, PUBLIC_KEY = str(BASE / "keys" / "signing.pem"), str(BASE / "keys" / "signing.pub")
OSV_DB = os.environ.get("AISEC_OSV_DB") or data_file("osv", "pypa-advisory-db-2024-10-10.zip")
LABEL = "target"
MODEL_ASSET = Asset(f"aisec://models/{MODEL_NAME}")
#: Great Expectations 1.x suite (``{"type", "kwargs"}``; GX objects work as well).
EXPECTATIONS = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 500, "max_value": 1000}},
    {"type": "expect_column_to_exist", "kwargs": {"column": LABEL}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": LABEL}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": LABEL, "value_set": [0, 1]}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "mean radius"}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "mean radius", "min_value": 0, "max_value": 50},
    },
    {
        "type": "expect_column_proportion_of_unique_values_to_be_between",
        "kwargs": {"column": "mean area", "min_value": 0.5},
    },
]

with DAG(
    dag_id="aisec_secure_training",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisec", "example", "provenance", "training"],
    params={"tamper": Param(False, type="boolean", description="poison the dataset after it lands (demo)")},
    doc_md=__doc__,
) as dag:
    # [START aisec_secure_training]
    audit = DependencyAuditOperator(
        task_id="audit_dependencies", osv_db=OSV_DB, sbom_path=str(BASE / "sbom" / "training-environment.cdx.json")
    )
    verify_provenance = DatasetProvenanceOperator(
        task_id="verify_dataset_provenance",
        dataset_uri=DATASET,
        allow_sources=[SOURCE_DIR],
        expected_digest=f"sha256:{DATASET_SHA256}",
        require_version=True,
        statement_signing_key_path=PRIVATE_KEY,
        outlets=[Asset("aisec://datasets/breast-cancer")],
    )
    validate = DataValidationOperator(
        task_id="validate_dataset",
        dataset_uri=DATASET,
        expectations=EXPECTATIONS,
        reference=PROFILE,
        label_column=LABEL,
    )
    split = ReproducibleSplitOperator(
        task_id="split_dataset",
        dataset_uri=DATASET,
        output_dir=str(BASE / "splits"),  # splits/train.parquet: the monitoring DAG's reference
        seed=demo.SEED,
        test_size=0.2,
        stratify_column=LABEL,
        outlets=[Asset("aisec://datasets/breast-cancer/splits")],
    )
    hash_and_sign = ArtifactHashOperator(
        task_id="hash_and_sign_model", path=MODEL_DIR, manifest_path=MODEL_MANIFEST, signing_key_path=PRIVATE_KEY
    )
    scan_model = ModelArtifactScanOperator(task_id="scan_model", paths=MODEL_DIR)
    robustness_gate = AdversarialRobustnessOperator(  # black-box evasion attacks on the verified model
        task_id="robustness_gate",
        data_path=str(BASE / "splits" / "test.parquet"),
        model_path=MODEL_DIR + "/model.pkl",
        manifest_path=MODEL_MANIFEST,
        label_column=LABEL,
        min_robust_accuracy=0.8,
        sample_size=20,
        seed=demo.SEED,
        time_budget_seconds=300,
    )
    ml_bom = MLBomOperator(  # environment (audit SBOM), data (provenance, splits), metrics: upstream reports
        task_id="write_ml_bom", bom_path=MODEL_BOM, model_name=MODEL_NAME, manifest_path=MODEL_MANIFEST, **demo.ML_BOM
    )

    chain(
        audit,
        demo.export_dataset(DATASET, PROFILE, PRIVATE_KEY, PUBLIC_KEY),  # your data landing goes here
        verify_provenance,
        validate,
        split,
        demo.train_model(MODEL_DIR),  # your training goes here
        hash_and_sign,
        scan_model,
        robustness_gate,
        ml_bom,
        demo.record_model_provenance(MODEL_NAME, MODEL_STATEMENT, MODEL_MANIFEST, PRIVATE_KEY, __file__),
        demo.publish_model.override(outlets=[MODEL_ASSET])(
            MODEL_NAME, MODEL_DIR, MODEL_MANIFEST, MODEL_STATEMENT, PUBLIC_KEY, str(BASE / "registry")
        ),
    )
    # [END aisec_secure_training]
