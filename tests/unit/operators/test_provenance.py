"""DatasetProvenanceOperator in real DAG runs: one passing task and one task per refusal cause."""

from __future__ import annotations

import hashlib
import json
import os

import pendulum
import pytest

from airflow_aisec.core.integrity import hash_artifact
from airflow_aisec.core.signing import generate_ed25519_keypair, load_signing_key
from tests.airflow_helpers import run_dag, task_states, xcom


def asset_events(dag_run, task_id):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .filter(AssetEvent.source_run_id == dag_run.run_id, AssetEvent.source_task_id == task_id)
            .all()
        )
        return [dict(r.extra) for r in rows]


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    base = tmp_path_factory.mktemp("prov")
    allowed = base / "allowed"
    allowed.mkdir()
    data = allowed / "train.csv"
    data.write_text("a,b,label\n1,2,0\n3,4,1\n")
    generate_ed25519_keypair(base / "k.pem", base / "k.pub")
    generate_ed25519_keypair(base / "other.pem", base / "other.pub")
    good_manifest = base / "good.manifest.json"
    hash_artifact(data, manifest_path=good_manifest, signing_key=load_signing_key(base / "k.pem"))
    forged = base / "forged.manifest.json"
    hash_artifact(data, manifest_path=forged, signing_key=load_signing_key(base / "other.pem"))
    stale = base / "stale" / "train.csv"
    stale.parent.mkdir()
    stale.write_text("a,b,label\n1,2,1\n3,4,1\n")
    stale_manifest = base / "stale.manifest.json"
    hash_artifact(stale, manifest_path=stale_manifest)
    return {
        "base": base,
        "allowed": allowed,
        "data": data,
        "digest": hashlib.sha256(data.read_bytes()).hexdigest(),
        "good_manifest": good_manifest,
        "forged": forged,
        "stale_manifest": stale_manifest,
    }


@pytest.fixture(scope="module")
def dag_run(airflow_db, evidence):
    from airflow.sdk import DAG, Asset

    from airflow_aisec.operators.provenance import DatasetProvenanceOperator

    e = evidence
    allow = [str(e["allowed"])]
    with DAG("test_dataset_provenance", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        DatasetProvenanceOperator(
            task_id="verified",
            dataset_uri=str(e["data"]),
            allow_sources=allow,
            expected_digest=f"sha256:{e['digest']}",
            require_version=True,
            builder_id="https://airflow.test/",
            outlets=[Asset("aisec://datasets/test")],
        )
        DatasetProvenanceOperator(
            task_id="signed_manifest",
            dataset_uri=str(e["data"]),
            allow_sources=allow,
            manifest_path=str(e["good_manifest"]),
            public_key_path=str(e["base"] / "k.pub"),
            statement_path=str(e["base"] / "out" / "signed.intoto.json"),
            statement_signing_key_path=str(e["base"] / "k.pem"),
        )
        DatasetProvenanceOperator(
            task_id="outside_allowlist",
            dataset_uri=str(e["data"]),
            allow_sources=["/srv/approved-datasets"],
            expected_digest=e["digest"],
        )
        DatasetProvenanceOperator(
            task_id="digest_mismatch", dataset_uri=str(e["data"]), allow_sources=allow, expected_digest="ab" * 32
        )
        DatasetProvenanceOperator(
            task_id="manifest_mismatch",
            dataset_uri=str(e["data"]),
            allow_sources=allow,
            manifest_path=str(e["stale_manifest"]),
        )
        DatasetProvenanceOperator(
            task_id="bad_signature",
            dataset_uri=str(e["data"]),
            allow_sources=allow,
            manifest_path=str(e["forged"]),
            public_key_path=str(e["base"] / "k.pub"),
        )
        DatasetProvenanceOperator(
            task_id="missing_data",
            dataset_uri=str(e["allowed"] / "gone.csv"),
            allow_sources=allow,
            expected_digest=e["digest"],
        )
        DatasetProvenanceOperator(
            task_id="version_not_pinned",
            dataset_uri="s3://ml-data/train.csv",
            allow_sources=["s3://ml-data"],
            expected_digest=e["digest"],
            require_version=True,
            aws_conn_id=None,
        )
    return run_dag(dag)


def test_verified_dataset_passes_with_statement_and_asset_event(dag_run, evidence):
    assert task_states(dag_run)["verified"] == "success"
    report = xcom(dag_run, "verified")
    assert report["status"] == "pass"
    statement_path = report["details"]["statement"]["path"]
    assert statement_path.endswith("/attestations/verified.intoto.json")
    raw = open(statement_path, "rb").read()
    assert hashlib.sha256(raw).hexdigest() == report["details"]["statement"]["sha256"]
    statement = json.loads(raw)
    assert statement["subject"][0]["digest"]["sha256"] == evidence["digest"]
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == "https://airflow.test/"
    assert run["metadata"]["invocationId"] == f"test_dataset_provenance/{dag_run.run_id}/verified/1"
    events = asset_events(dag_run, "verified")
    assert len(events) == 1
    assert events[0]["dataset_digest"] == f"sha256:{evidence['digest']}"
    assert events[0]["version"] == f"sha256:{evidence['digest']}"
    assert events[0]["statement_sha256"] == report["details"]["statement"]["sha256"]


def test_signed_manifest_passes(dag_run, evidence):
    assert task_states(dag_run)["signed_manifest"] == "success"
    report = xcom(dag_run, "signed_manifest")
    assert report["details"]["signature"]["verified"] is True
    assert report["details"]["statement"]["path"] == str(evidence["base"] / "out" / "signed.intoto.json")
    assert os.path.exists(report["details"]["statement"]["path"])
    assert report["details"]["statement"]["signature_path"] == str(evidence["base"] / "out" / "signed.intoto.json.sig")


@pytest.mark.parametrize(
    ("task_id", "finding", "cause"),
    [
        ("outside_allowlist", "AISEC-PROV-SOURCE", "outside the allowlist"),
        ("digest_mismatch", "AISEC-PROV-DIGEST", "digest mismatch"),
        ("manifest_mismatch", "AISEC-PROV-MANIFEST", "manifest mismatch"),
        ("bad_signature", "AISEC-PROV-SIGNATURE", "bad manifest signature"),
        ("missing_data", "AISEC-PROV-MISSING", "missing or unreadable data"),
        ("version_not_pinned", "AISEC-PROV-UNPINNED", "version not pinned"),
    ],
)
def test_each_refusal_fails_the_task_and_names_the_cause(dag_run, task_id, finding, cause):
    assert task_states(dag_run)[task_id] == "failed"
    report = xcom(dag_run, task_id)
    assert report["status"] == "fail"
    assert [f["id"] for f in report["findings"]] == [finding]
    assert cause in report["summary"]
    assert "statement" not in report.get("details", {})
    assert asset_events(dag_run, task_id) == []


def test_constructor_validates_arguments():
    from airflow_aisec.operators.provenance import DatasetProvenanceOperator

    with pytest.raises(ValueError, match="exactly one of expected_digest or manifest_path"):
        DatasetProvenanceOperator(task_id="t", dataset_uri="/x", allow_sources=["/x"])
    with pytest.raises(ValueError, match="allow_sources must be a list"):
        DatasetProvenanceOperator(task_id="t", dataset_uri="/x", allow_sources="/x", expected_digest="0" * 64)


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        (["s3://a", "/data"], ["s3://a", "/data"]),
        ('["s3://a", "/data"]', ["s3://a", "/data"]),  # a Jinja template rendered to a JSON list
        ("s3://a/prefix", ["s3://a/prefix"]),
    ],
)
def test_templated_allowlist_is_normalised(rendered, expected):
    from airflow_aisec.operators.provenance import DatasetProvenanceOperator

    op = DatasetProvenanceOperator(
        task_id="t", dataset_uri="/x", allow_sources="{{ var.json.allow }}", expected_digest="0" * 64
    )
    op.allow_sources = rendered
    assert op._allowlist() == expected
