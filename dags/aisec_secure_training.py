"""Secured training pipeline: only verified, validated data reaches the model, and the model's lineage is signed.

Runs as-is on local files under ``$AISEC_DATA_DIR/secure_training`` (default ``$AIRFLOW_HOME/aisec``):

0. ``audit_dependencies`` audits the training environment against the offline OSV snapshot
   (``$AISEC_OSV_DB``, else the one bundled in ``data/osv``) and writes its CycloneDX SBOM, whose digest
   becomes an input of the model's provenance.
1. ``export_dataset`` lands the Wisconsin breast-cancer dataset bundled with scikit-learn as CSV
   (byte-for-byte deterministic) in the approved source folder, plus a reference profile and a demo
   signing key. With ``{"tamper": true}`` it then flips labels of 40 rows — a poisoned dataset.
2. ``verify_dataset_provenance`` checks the source allowlist and the known-good SHA-256 pinned below,
   writes a signed in-toto/SLSA statement and logs the dataset digest on the ``aisec://datasets/breast-cancer``
   asset. A tampered dataset is refused here: training never runs and the DAG run fails (fail closed).
3. ``validate_dataset`` runs a Great Expectations suite plus poisoning heuristics (label shift,
   duplicates, out-of-range rows, new labels) against the reference profile.
4. ``split_dataset`` splits reproducibly (seed 42, stratified) and records each split's digest; the train
   split stays at ``$AISEC_DATA_DIR/secure_training/splits/train.parquet`` (the monitoring DAG's reference).
5. ``train_model`` fits a scikit-learn pipeline; ``hash_and_sign_model`` writes a signed manifest and
   ``scan_model`` walks the pickle's opcodes (never unpickling) so only allowlisted constructors ship.
6. ``record_model_provenance`` writes the model's in-toto/SLSA statement (inputs: dataset digest,
   split digests, code digest), signed with the same key.
7. ``publish_model`` re-verifies the signed manifest, copies the model into the local registry folder and
   emits ``aisec://models/breast-cancer-classifier`` with the model digest.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Asset, Param, chain, dag, task

from airflow_aisec.operators.audit import DependencyAuditOperator
from airflow_aisec.operators.integrity import ArtifactHashOperator
from airflow_aisec.operators.modelscan import ModelArtifactScanOperator
from airflow_aisec.operators.provenance import DatasetProvenanceOperator
from airflow_aisec.operators.robustness import AdversarialRobustnessOperator
from airflow_aisec.operators.split import ReproducibleSplitOperator
from airflow_aisec.operators.validation import DataValidationOperator
from airflow_aisec.utils.paths import data_dir, repo_data_file

MODEL_NAME = "breast-cancer-classifier"
BASE = data_dir("secure_training")
SOURCE_DIR = BASE / "source"  # the approved source: the only place training data may come from
DATASET = str(SOURCE_DIR / "breast_cancer.csv")
#: Known-good SHA-256 of the deterministic CSV export of ``sklearn.datasets.load_breast_cancer``.
DATASET_SHA256 = "75a1d74a59df9cb0a78ecc0a36085bf8a85239557f178d3b8d758e88b26416e1"
PROFILE = str(BASE / "reference" / "breast_cancer.profile.json")
SPLITS_DIR = str(BASE / "splits")
TRAIN_SPLIT = str(BASE / "splits" / "train.parquet")  # reference data of the monitoring DAG
TEST_SPLIT = str(BASE / "splits" / "test.parquet")  # held-out rows the robustness gate attacks
STAGING = BASE / "staging"
MODEL_DIR = str(STAGING / "model")
MODEL_MANIFEST = str(STAGING / "model.manifest.json")
MODEL_STATEMENT = str(STAGING / "model.intoto.json")
REGISTRY = BASE / "registry"
PRIVATE_KEY = str(BASE / "keys" / "signing.pem")
PUBLIC_KEY = str(BASE / "keys" / "signing.pub")
SBOM = str(BASE / "sbom" / "training-environment.cdx.json")
OSV_DB = os.environ.get("AISEC_OSV_DB") or str(repo_data_file("osv", "pypa-advisory-db-2024-10-10.zip"))
LABEL = "target"
SEED = 42

DATASET_ASSET = Asset("aisec://datasets/breast-cancer")
SPLITS_ASSET = Asset("aisec://datasets/breast-cancer/splits")
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


def export_dataset_csv(path: str) -> str:
    """Write ``load_breast_cancer`` as CSV deterministically (atomic); return its SHA-256."""
    import hashlib
    import io

    from sklearn.datasets import load_breast_cancer

    from airflow_aisec.utils.fs import write_bytes_atomic

    frame = load_breast_cancer(as_frame=True).frame
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    data = buf.getvalue().encode("utf-8")
    write_bytes_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def poison_dataset_csv(path: str, rows: int = 40) -> None:
    """Flip the label of ``rows`` malignant samples in place (a label-flipping poisoning attack)."""
    import pandas as pd

    from airflow_aisec.utils.fs import atomic_writer

    frame = pd.read_csv(path)
    victims = frame.index[frame[LABEL] == 0][:rows]
    frame.loc[victims, LABEL] = 1
    with atomic_writer(path, "w") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")


@dag(
    dag_id="aisec_secure_training",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisec", "example", "provenance", "training"],
    params={"tamper": Param(False, type="boolean", description="poison the dataset after it lands (demo)")},
    doc_md=__doc__,
)
def aisec_secure_training():
    audit = DependencyAuditOperator(task_id="audit_dependencies", osv_db=OSV_DB, sbom_path=SBOM)

    @task
    def export_dataset(params=None) -> dict:
        from pathlib import Path

        from sklearn.datasets import load_breast_cancer

        from airflow_aisec.core.signing import generate_ed25519_keypair
        from airflow_aisec.core.validation import build_reference_profile
        from airflow_aisec.utils.fs import write_json_atomic

        digest = export_dataset_csv(DATASET)
        profile = build_reference_profile(load_breast_cancer(as_frame=True).frame, label_column=LABEL)
        write_json_atomic(PROFILE, profile)
        if not Path(PRIVATE_KEY).exists():
            generate_ed25519_keypair(PRIVATE_KEY, PUBLIC_KEY)
        tampered = bool((params or {}).get("tamper"))
        if tampered:
            poison_dataset_csv(DATASET)
        return {"dataset": DATASET, "exported_sha256": digest, "tampered": tampered, "profile": PROFILE}

    verify_provenance = DatasetProvenanceOperator(
        task_id="verify_dataset_provenance",
        dataset_uri=DATASET,
        allow_sources=[str(SOURCE_DIR)],
        expected_digest=f"sha256:{DATASET_SHA256}",
        require_version=True,
        statement_signing_key_path=PRIVATE_KEY,
        outlets=[DATASET_ASSET],
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
        output_dir=SPLITS_DIR,
        seed=SEED,
        test_size=0.2,
        stratify_column=LABEL,
        outlets=[SPLITS_ASSET],
    )

    @task
    def train_model(ti=None) -> dict:
        import pickle
        import shutil
        from pathlib import Path

        import pandas as pd
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, roc_auc_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

        splits = ti.xcom_pull(task_ids="split_dataset", key="aisec_report")["details"]["splits"]
        train = pd.read_parquet(splits["train"]["path"])
        test = pd.read_parquet(splits["test"]["path"])
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
        model.fit(train.drop(columns=[LABEL]), train[LABEL])
        x_test = test.drop(columns=[LABEL])
        metrics = {
            "accuracy": round(float(accuracy_score(test[LABEL], model.predict(x_test))), 6),
            "roc_auc": round(float(roc_auc_score(test[LABEL], model.predict_proba(x_test)[:, 1])), 6),
            "train_rows": len(train),
            "test_rows": len(test),
        }
        shutil.rmtree(MODEL_DIR, ignore_errors=True)
        Path(MODEL_DIR).mkdir(parents=True)
        write_bytes_atomic(Path(MODEL_DIR, "model.pkl"), pickle.dumps(model, protocol=5))
        write_json_atomic(Path(MODEL_DIR, "metrics.json"), metrics)
        if metrics["accuracy"] < 0.9:
            raise ValueError(f"model accuracy {metrics['accuracy']} is below the release bar 0.9")
        return metrics

    hash_and_sign = ArtifactHashOperator(
        task_id="hash_and_sign_model",
        path=MODEL_DIR,
        manifest_path=MODEL_MANIFEST,
        signing_key_path=PRIVATE_KEY,
    )

    @task
    def record_model_provenance(ti=None) -> dict:
        import hashlib
        from pathlib import Path

        import sklearn

        from airflow_aisec.core.provenance import MODEL_BUILD_TYPE, build_statement, write_statement
        from airflow_aisec.core.signing import load_signing_key
        from airflow_aisec.operators.provenance import builder_id_for_deployment

        audit_report = ti.xcom_pull(task_ids="audit_dependencies", key="aisec_report")
        data_report = ti.xcom_pull(task_ids="verify_dataset_provenance", key="aisec_report")
        split_report = ti.xcom_pull(task_ids="split_dataset", key="aisec_report")
        model_report = ti.xcom_pull(task_ids="hash_and_sign_model", key="aisec_report")
        dataset_digest = data_report["details"]["observed"]["digest"].split(":", 1)[1]
        dependencies = [
            {
                "name": "training-dataset",
                "uri": data_report["details"]["source"]["canonical"],
                "digest": {"sha256": dataset_digest},
                "annotations": {"provenanceStatementSha256": data_report["details"]["statement"]["sha256"]},
            }
        ]
        for name, s in split_report["details"]["splits"].items():
            dependencies.append(
                {
                    "name": f"split:{name}",
                    "uri": f"file://{s['path']}",
                    "digest": {"sha256": s["sha256"]},
                    "annotations": {"rows": s["rows"], "seed": SEED},
                }
            )
        sbom = audit_report["details"]["sbom"]
        dependencies.append(
            {
                "name": "training-environment-sbom",
                "uri": f"file://{sbom['path']}",
                "digest": {"sha256": sbom["sha256"]},
                "annotations": {"format": sbom["format"], "components": sbom["components"]},
            }
        )
        code = Path(__file__).resolve()
        dependencies.append(
            {
                "name": "training-code",
                "uri": f"file://{code}",
                "digest": {"sha256": hashlib.sha256(code.read_bytes()).hexdigest()},
            }
        )
        model = model_report["details"]
        subjects = [{"name": f"{MODEL_NAME}/{e['path']}", "digest": {"sha256": e["digest"]}} for e in model["entries"]]
        statement = build_statement(
            subjects=subjects,
            build_type=MODEL_BUILD_TYPE,
            external_parameters={
                "model": MODEL_NAME,
                "estimator": "StandardScaler+LogisticRegression(max_iter=1000)",
                "seed": SEED,
                "split": split_report["details"]["parameters"],
            },
            internal_parameters={"scikit-learn": sklearn.__version__},
            resolved_dependencies=dependencies,
            builder_id=builder_id_for_deployment(),
            invocation_id=f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.try_number}",
            byproducts=[
                {
                    "name": "model-manifest",
                    "uri": f"file://{MODEL_MANIFEST}",
                    "digest": {"sha256": model["root_digest"]},
                }
            ],
        )
        written = write_statement(MODEL_STATEMENT, statement, load_signing_key(PRIVATE_KEY))
        return {**written, "model_digest": model["digest"], "dataset_digest": dataset_digest}

    @task(outlets=[MODEL_ASSET])
    def publish_model(ti=None, outlet_events=None) -> dict:
        import shutil
        from pathlib import Path

        from airflow_aisec.core.integrity import verify_artifact
        from airflow_aisec.core.signing import load_verify_key
        from airflow_aisec.utils.fs import write_json_atomic

        record = ti.xcom_pull(task_ids="record_model_provenance")
        check = verify_artifact(
            MODEL_DIR, manifest_path=MODEL_MANIFEST, verify_key=load_verify_key(PUBLIC_KEY), require_signature=True
        )
        if check.status != "pass":  # the staged model changed after it was signed
            raise RuntimeError(f"refusing to publish: {check.summary}")
        version = record["model_digest"][:16]
        target = REGISTRY / MODEL_NAME / version
        tmp = REGISTRY / MODEL_NAME / f".{version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(MODEL_DIR, tmp / "model")
        for evidence in (MODEL_MANIFEST, f"{MODEL_MANIFEST}.sig", MODEL_STATEMENT, f"{MODEL_STATEMENT}.sig"):
            shutil.copy2(evidence, tmp / Path(evidence).name)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)  # the version folder appears complete or not at all
        entry = {
            "model": MODEL_NAME,
            "version": version,
            "digest": f"sha256:{record['model_digest']}",
            "dataset_digest": f"sha256:{record['dataset_digest']}",
            "statement_sha256": record["sha256"],
            "path": str(target),
            "run_id": ti.run_id,
        }
        write_json_atomic(REGISTRY / MODEL_NAME / "latest.json", entry)
        outlet_events[MODEL_ASSET].extra = entry
        return entry

    scan_model = ModelArtifactScanOperator(task_id="scan_model", paths=MODEL_DIR)

    # black-box evasion attacks on the model verified against the manifest, before it is published
    robustness_gate = AdversarialRobustnessOperator(
        task_id="robustness_gate",
        data_path=TEST_SPLIT,
        model_path=f"{MODEL_DIR}/model.pkl",
        manifest_path=MODEL_MANIFEST,
        label_column=LABEL,
        min_robust_accuracy=0.8,
        sample_size=20,
        seed=SEED,
        time_budget_seconds=300,
    )

    trained = train_model()
    chain(audit, export_dataset(), verify_provenance, validate, split, trained, hash_and_sign, scan_model)
    chain(scan_model, robustness_gate, record_model_provenance(), publish_model())


aisec_secure_training()
