"""Demo side of ``aisec_secure_training``: land the dataset (and poison it on request), train, evidence.

The recipe keeps the security chain (audit → provenance → validation → split → hash/sign → scan);
these TaskFlow tasks are the parts a real pipeline replaces with its own: where the data comes from,
the estimator, and how the model is recorded and published. All paths are under ``$AISEC_DATA_DIR``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import get_current_context, task

LABEL = "target"
SEED = 42
#: ``MLBomOperator`` options of the recipe: the upstream tasks the ML-BOM is built from, the model's task.
ML_BOM = {
    "model_task": "classification",
    "audit_task_id": "audit_dependencies",
    "provenance_task_id": "verify_dataset_provenance",
    "split_task_id": "split_dataset",
    "performance_task_id": "train_model",
}


def export_dataset_csv(path: str) -> str:
    """Write ``load_breast_cancer`` as CSV deterministically (atomic); return its SHA-256."""
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


@task
def export_dataset(dataset: str, profile: str, private_key: str, public_key: str, params=None) -> dict:
    """Land the dataset in the approved source, its reference profile and a demo signing key.

    With ``{"tamper": true}`` the dataset is then poisoned (label flipping): the drill the provenance
    pin must catch.
    """
    from sklearn.datasets import load_breast_cancer

    from airflow_aisec.core.signing import generate_ed25519_keypair
    from airflow_aisec.core.validation import build_reference_profile
    from airflow_aisec.utils.fs import write_json_atomic

    digest = export_dataset_csv(dataset)
    write_json_atomic(profile, build_reference_profile(load_breast_cancer(as_frame=True).frame, label_column=LABEL))
    if not Path(private_key).exists():
        generate_ed25519_keypair(private_key, public_key)
    tampered = bool((params or {}).get("tamper"))
    if tampered:
        poison_dataset_csv(dataset)
    return {"dataset": dataset, "exported_sha256": digest, "tampered": tampered, "profile": profile}


@task
def train_model(model_dir: str, min_accuracy: float = 0.9, ti=None) -> dict:
    """Fit the scikit-learn pipeline on the recorded train split; refuse a model under the release bar."""
    import pickle
    import shutil

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
    shutil.rmtree(model_dir, ignore_errors=True)
    Path(model_dir).mkdir(parents=True)
    write_bytes_atomic(Path(model_dir, "model.pkl"), pickle.dumps(model, protocol=5))
    write_json_atomic(Path(model_dir, "metrics.json"), metrics)
    if metrics["accuracy"] < min_accuracy:
        raise ValueError(f"model accuracy {metrics['accuracy']} is below the release bar {min_accuracy}")
    return metrics


def _dependencies(audit: dict, data: dict, split: dict, code_files: Sequence[str]) -> list[dict[str, Any]]:
    """The model's resolved dependencies: dataset (+ its statement), splits, environment SBOM, code."""
    digest = data["details"]["observed"]["digest"].split(":", 1)[1]
    deps: list[dict[str, Any]] = [
        {
            "name": "training-dataset",
            "uri": data["details"]["source"]["canonical"],
            "digest": {"sha256": digest},
            "annotations": {"provenanceStatementSha256": data["details"]["statement"]["sha256"]},
        }
    ]
    for name, s in split["details"]["splits"].items():
        deps.append(
            {
                "name": f"split:{name}",
                "uri": f"file://{s['path']}",
                "digest": {"sha256": s["sha256"]},
                "annotations": {"rows": s["rows"], "seed": SEED},
            }
        )
    sbom = audit["details"]["sbom"]
    deps.append(
        {
            "name": "training-environment-sbom",
            "uri": f"file://{sbom['path']}",
            "digest": {"sha256": sbom["sha256"]},
            "annotations": {"format": sbom["format"], "components": sbom["components"]},
        }
    )
    for i, path in enumerate(code_files):
        code = Path(path).resolve()
        name = "training-code" if i == 0 else f"training-code:{code.name}"
        deps.append(
            {"name": name, "uri": f"file://{code}", "digest": {"sha256": hashlib.sha256(code.read_bytes()).hexdigest()}}
        )
    return deps


@task
def record_model_provenance(
    model_name: str, statement_path: str, manifest_path: str, private_key: str, code_file: str, ti=None
) -> dict:
    """Write the model's signed in-toto/SLSA statement from the upstream reports (XCom)."""
    import sklearn

    from airflow_aisec.core.provenance import MODEL_BUILD_TYPE, build_statement, write_statement
    from airflow_aisec.core.signing import load_signing_key
    from airflow_aisec.operators.provenance import builder_id_for_deployment

    def report(task_id: str) -> dict:
        return ti.xcom_pull(task_ids=task_id, key="aisec_report")

    data, split, model = report("verify_dataset_provenance"), report("split_dataset"), report("hash_and_sign_model")
    deps = _dependencies(report("audit_dependencies"), data, split, [code_file, __file__])
    entries = model["details"]["entries"]
    statement = build_statement(
        subjects=[{"name": f"{model_name}/{e['path']}", "digest": {"sha256": e["digest"]}} for e in entries],
        build_type=MODEL_BUILD_TYPE,
        external_parameters={
            "model": model_name,
            "estimator": "StandardScaler+LogisticRegression(max_iter=1000)",
            "seed": SEED,
            "split": split["details"]["parameters"],
        },
        internal_parameters={"scikit-learn": sklearn.__version__},
        resolved_dependencies=deps,
        builder_id=builder_id_for_deployment(),
        invocation_id=f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.try_number}",
        byproducts=[
            {
                "name": "model-manifest",
                "uri": f"file://{manifest_path}",
                "digest": {"sha256": model["details"]["root_digest"]},
            }
        ],
    )
    written = write_statement(statement_path, statement, load_signing_key(private_key))
    dataset_digest = data["details"]["observed"]["digest"].split(":", 1)[1]
    return {**written, "model_digest": model["details"]["digest"], "dataset_digest": dataset_digest}


@task
def publish_model(
    model_name: str, model_dir: str, manifest: str, statement: str, public_key: str, registry: str, ti=None
) -> dict:
    """Re-verify the signed manifest, then copy model + evidence into the registry folder atomically.

    The evidence is the signed manifest, the model's build-provenance statement (its DSSE envelope and
    legacy signature), and ``model.vsa.json``: the publish-time integrity decision as a SLSA
    Verification Summary. The task's outlet assets get the registry entry as their event's extra.
    """
    import shutil

    from airflow_aisec.core.integrity import verify_artifact
    from airflow_aisec.core.signing import load_verify_key
    from airflow_aisec.core.vsa import record_decision
    from airflow_aisec.utils.fs import write_json_atomic

    record = ti.xcom_pull(task_ids="record_model_provenance")
    check = verify_artifact(
        model_dir, manifest_path=manifest, verify_key=load_verify_key(public_key), require_signature=True
    )
    if check.status != "pass":  # the staged model changed after it was signed
        raise RuntimeError(f"refusing to publish: {check.summary}")
    version = record["model_digest"][:16]
    root = Path(registry, model_name)
    target, tmp = root / version, root / f".{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp / "model")
    for evidence in (manifest, f"{manifest}.sig", statement, f"{statement}.sig", f"{statement}.dsse.json"):
        shutil.copy2(evidence, tmp / os.path.basename(evidence))
    evidence = [manifest, f"{manifest}.sig"]
    record_decision(check, tmp / "model.vsa.json", check="integrity", resource=model_dir, evidence=evidence)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # the version folder appears complete or not at all
    entry = {
        "model": model_name,
        "version": version,
        "digest": f"sha256:{record['model_digest']}",
        "dataset_digest": f"sha256:{record['dataset_digest']}",
        "statement_sha256": record["sha256"],
        "path": str(target),
        "run_id": ti.run_id,
    }
    write_json_atomic(root / "latest.json", entry)
    context = get_current_context()
    for asset in context["task"].outlets:
        context["outlet_events"][asset].extra = entry
    return entry
