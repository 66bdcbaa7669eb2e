"""The secured training example DAG: a clean run publishes a signed model; a tampered dataset is refused."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.airflow_helpers import load_example_dag, run_dag, task_states, xcom
from tests.conftest import DAGS_FOLDER, REPO_ROOT

pytestmark = pytest.mark.integration

TASKS = [
    "audit_dependencies",
    "export_dataset",
    "verify_dataset_provenance",
    "validate_dataset",
    "split_dataset",
    "train_model",
    "hash_and_sign_model",
    "scan_model",
    "robustness_gate",
    "write_ml_bom",
    "record_model_provenance",
    "publish_model",
]


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def dag(airflow_db):
    return load_example_dag("aisec_secure_training")


def test_export_is_deterministic_across_processes_and_matches_the_pin(tmp_path, dag):
    import importlib.util
    import os

    from aisec_demo.training import export_dataset_csv

    path = DAGS_FOLDER / "aisec_secure_training.py"
    spec = importlib.util.spec_from_file_location("aisec_secure_training_mod", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    here = export_dataset_csv(str(tmp_path / "here.csv"))
    code = "import sys\nfrom aisec_demo.training import export_dataset_csv\nprint(export_dataset_csv(sys.argv[1]))\n"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(DAGS_FOLDER)}
    other = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "other.csv")],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
    ).stdout.split()[-1]
    assert here == other == module.DATASET_SHA256  # the pinned known-good digest is what the export produces
    assert sha256(tmp_path / "here.csv") == sha256(tmp_path / "other.csv") == here


def test_clean_run_trains_signs_and_publishes(airflow_db, dag):
    import airflow_aisec.utils.paths as paths

    dr = run_dag(dag)
    states = task_states(dr)
    assert states == dict.fromkeys(TASKS, "success"), states
    assert str(dr.state) == "success"
    scan = xcom(dr, "scan_model")
    assert scan["status"] == "pass"
    assert scan["metrics"]["files_scanned"] == 2  # model.pkl (sklearn pickle, allowlisted) + metrics.json
    assert scan["metrics"]["globals_dangerous"] == 0
    robust = xcom(dr, "robustness_gate")
    assert robust["check"] == "robustness" and robust["status"] == "pass"
    assert robust["metrics"]["n_rows"] == 20 and robust["metrics"]["n_queries"] > 0
    assert robust["details"]["model"]["evidence"] == "manifest"

    prov = xcom(dr, "verify_dataset_provenance")
    dataset = Path(prov["details"]["source"]["uri"])
    statement = json.loads(Path(prov["details"]["statement"]["path"]).read_bytes())
    # the statement's subject digest is the dataset's actual SHA-256 (and the pinned one)
    assert statement["subject"] == [{"name": "breast_cancer.csv", "digest": {"sha256": sha256(dataset)}}]
    assert Path(prov["details"]["statement"]["signature_path"]).is_file()
    expected = statement["predicate"]["buildDefinition"]["externalParameters"]["expected"]["digest"]
    assert expected == f"sha256:{sha256(dataset)}"  # ... which is the known-good digest pinned in the DAG
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"].startswith(
        f"aisec_secure_training/{dr.run_id}/"
    )

    assert xcom(dr, "validate_dataset")["status"] == "pass"
    split = xcom(dr, "split_dataset")
    train_path = paths.data_dir("secure_training", "splits", "train.parquet")
    assert split["details"]["splits"]["train"]["path"] == str(train_path)
    assert split["details"]["splits"]["train"]["sha256"] == sha256(train_path)

    record = xcom(dr, "record_model_provenance", "return_value")
    model_statement = json.loads(Path(record["path"]).read_bytes())
    deps = {d["name"]: d for d in model_statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["training-dataset"]["digest"]["sha256"] == sha256(dataset)
    assert deps["split:train"]["digest"]["sha256"] == sha256(train_path)
    assert deps["training-code"]["digest"]["sha256"] == sha256(DAGS_FOLDER / "aisec_secure_training.py")
    helpers = deps["training-code:training.py"]  # the demo's training step is training code too
    assert helpers["digest"]["sha256"] == sha256(DAGS_FOLDER / "aisec_demo" / "training.py")
    sbom = xcom(dr, "audit_dependencies")["details"]["sbom"]
    assert deps["training-environment-sbom"]["digest"]["sha256"] == sha256(sbom["path"])

    ml_bom = xcom(dr, "write_ml_bom")  # CycloneDX 1.6 ML-BOM: model, data and environment
    bom_path = ml_bom["details"]["bom"]["path"]
    assert ml_bom["details"]["bom"]["sha256"] == sha256(bom_path)
    bom = json.loads(Path(bom_path).read_bytes())
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    model_dir = paths.data_dir("secure_training", "staging", "model")
    assert {c["name"]: c["hashes"][0]["content"] for c in model["components"]}["model.pkl"] == sha256(
        model_dir / "model.pkl"
    )
    datasets = {c["name"]: c["hashes"][0]["content"] for c in bom["components"] if c["type"] == "data"}
    assert datasets == {
        "training-dataset": sha256(dataset),
        **{f"split:{n}": s["sha256"] for n, s in split["details"]["splits"].items()},
    }
    assert datasets["split:train"] == sha256(train_path)
    metrics = {m["type"] for m in model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]}
    assert {"accuracy", "roc_auc"} <= metrics

    published = xcom(dr, "publish_model", "return_value")
    assert published["digest"] == f"sha256:{xcom(dr, 'hash_and_sign_model')['details']['digest']}"
    assert (Path(published["path"]) / "model" / "model.pkl").is_file()
    assert (Path(published["path"]) / "model.intoto.json.sig").is_file()
    from airflow_aisec.core import dsse
    from airflow_aisec.core.signing import load_verify_key

    envelope = (Path(published["path"]) / "model.intoto.json.dsse.json").read_bytes()
    from airflow_aisec.utils.paths import data_dir

    public_key = load_verify_key(data_dir("secure_training") / "keys" / "signing.pub")
    assert dsse.verify_statement_envelope(envelope, public_key) == model_statement
    vsa = json.loads((Path(published["path"]) / "model.vsa.json").read_bytes())
    assert vsa["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert vsa["predicate"]["verificationResult"] == "PASSED"
    assert vsa["subject"][0]["digest"] == {"sha256": xcom(dr, "hash_and_sign_model")["details"]["digest"]}
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == dr.run_id).all()
        extras = {e.source_task_id: dict(e.extra) for e in events}
    assert extras["publish_model"]["digest"] == published["digest"]
    assert extras["verify_dataset_provenance"]["dataset_digest"] == f"sha256:{sha256(dataset)}"


def test_tampered_dataset_is_refused_and_training_never_runs(airflow_db, dag):
    dr = run_dag(dag, conf={"tamper": True})
    states = task_states(dr)
    assert states["audit_dependencies"] == states["export_dataset"] == "success"
    assert states["verify_dataset_provenance"] == "failed"
    assert {states[t] for t in TASKS[3:]} == {"upstream_failed"}
    assert str(dr.state) == "failed"
    report = xcom(dr, "verify_dataset_provenance")
    assert [f["id"] for f in report["findings"]] == ["AISEC-PROV-DIGEST"]
    assert "digest mismatch" in report["summary"]
    assert xcom(dr, "train_model", "return_value") is None


def test_the_demo_poisoning_would_also_be_caught_by_validation(tmp_path, dag):
    """Defence in depth: had provenance been bypassed, the label-shift heuristic flags the same tampering."""
    import pandas as pd
    from aisec_demo.training import export_dataset_csv, poison_dataset_csv

    from airflow_aisec.core.validation import build_reference_profile, validate_dataframe

    path = str(tmp_path / "d.csv")
    export_dataset_csv(path)
    profile = build_reference_profile(pd.read_csv(path), label_column="target")
    poison_dataset_csv(path)
    report = validate_dataframe(pd.read_csv(path), subject=path, reference=profile, label_column="target")
    assert [f.id for f in report.findings] == ["AISEC-DV-LABEL-SHIFT"]
