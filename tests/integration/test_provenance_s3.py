"""Dataset provenance on S3: VersionId / ETag pins against a real S3 API (moto server on loopback).

The moto server is started by this module's own fixture on 127.0.0.1 and a free port, and stopped
(and reaped) at the end; boto3 talks to it over HTTP like it would to AWS.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pendulum
import pytest

from airflow_aisec.core import provenance as prov
from tests.airflow_helpers import run_dag, task_states, xcom

pytestmark = pytest.mark.integration

V1 = b"a,b,label\n1,2,0\n3,4,1\n"
V2 = b"a,b,label\n1,2,1\n3,4,1\n"  # the same key overwritten with a flipped label


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # bounded wait: 30 s
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("moto server exited during start-up")
                time.sleep(0.1)
        else:
            pytest.fail("moto server did not start within 30 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def s3(s3_endpoint):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket="ml-data")
    client.put_bucket_versioning(Bucket="ml-data", VersioningConfiguration={"Status": "Enabled"})
    v1 = client.put_object(Bucket="ml-data", Key="train/data.csv", Body=V1)
    v2 = client.put_object(Bucket="ml-data", Key="train/data.csv", Body=V2)
    table = "x,label\n" + "".join(f"{i},{i % 2}\n" for i in range(20))
    client.put_object(Bucket="ml-data", Key="train/table.csv", Body=table.encode())
    client.create_bucket(Bucket="unversioned")
    client.put_object(Bucket="unversioned", Key="data.csv", Body=V1)
    return {
        "client": client,
        "endpoint": s3_endpoint,
        "v1": v1["VersionId"],
        "v2": v2["VersionId"],
        "etag1": v1["ETag"].strip('"'),
    }


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(s3, uri, **kw):
    kw.setdefault("allow_sources", ["s3://ml-data/train/", "s3://unversioned"])
    kw.setdefault("expected_digest", sha(V1))
    return prov.verify_dataset(uri, s3_client=s3["client"], **kw)


def test_pinned_version_is_read_even_after_the_key_was_overwritten(s3):
    report, statement = verify(s3, f"s3://ml-data/train/data.csv?versionId={s3['v1']}", require_version=True)
    assert report.status == "pass", report.summary
    dep = statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]
    assert dep["uri"] == "s3://ml-data/train/data.csv"
    assert dep["digest"] == {"sha256": sha(V1)}
    assert dep["annotations"]["version_id"] == s3["v1"]
    assert dep["annotations"]["etag"] == s3["etag1"]
    assert statement["subject"] == [{"name": "data.csv", "digest": {"sha256": sha(V1)}}]


def test_latest_version_with_the_old_digest_is_a_mismatch(s3):
    report, _ = verify(s3, "s3://ml-data/train/data.csv")
    assert [f.id for f in report.findings] == ["AISEC-PROV-DIGEST"]
    assert report.details["observed"]["version"]["version_id"] == s3["v2"]


def test_etag_pin(s3):
    ok, _ = verify(s3, "s3://ml-data/train/data.csv", etag=s3["etag1"], require_version=True, expected_digest=sha(V2))
    # the ETag of v1 no longer matches the latest object (v2): the pinned content is gone
    assert [f.id for f in ok.findings] == ["AISEC-PROV-MISSING"]
    assert "ETag" in ok.summary
    report, _ = verify(s3, f"s3://ml-data/train/data.csv?versionId={s3['v1']}", etag=s3["etag1"], require_version=True)
    assert report.status == "pass", report.summary


def test_unknown_version_missing_key_and_unpinned(s3):
    missing_version, _ = verify(s3, "s3://ml-data/train/data.csv?versionId=doesnotexist")
    assert [f.id for f in missing_version.findings] == ["AISEC-PROV-MISSING"]
    missing_key, _ = verify(s3, "s3://ml-data/train/nope.csv")
    assert [f.id for f in missing_key.findings] == ["AISEC-PROV-MISSING"]
    unpinned, _ = verify(s3, "s3://ml-data/train/data.csv", require_version=True)
    assert [f.id for f in unpinned.findings] == ["AISEC-PROV-UNPINNED"]
    outside, _ = verify(s3, "s3://ml-data/other/data.csv")
    assert [f.id for f in outside.findings] == ["AISEC-PROV-SOURCE"]


def test_unversioned_bucket_cannot_satisfy_a_version_pin(s3):
    report, _ = verify(s3, "s3://unversioned/data.csv?versionId=null", require_version=True)
    assert [f.id for f in report.findings] == ["AISEC-PROV-UNPINNED"]
    assert "'null' version" in report.summary


def test_operators_read_s3_through_an_airflow_connection(airflow_db, s3, monkeypatch, tmp_path):
    from airflow.sdk import DAG, Asset

    from airflow_aisec.operators.provenance import DatasetProvenanceOperator
    from airflow_aisec.operators.split import ReproducibleSplitOperator
    from airflow_aisec.operators.validation import DataValidationOperator

    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3["endpoint"], "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AISEC_TEST_S3", json.dumps(conn))
    with DAG("test_provenance_s3", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        DatasetProvenanceOperator(
            task_id="pinned",
            dataset_uri=f"s3://ml-data/train/data.csv?versionId={s3['v1']}",
            allow_sources=["s3://ml-data/train"],
            expected_digest=sha(V1),
            require_version=True,
            aws_conn_id="aisec_test_s3",
            outlets=[Asset("aisec://datasets/s3-test")],
        )
        DataValidationOperator(
            task_id="validate_s3",
            dataset_uri="s3://ml-data/train/table.csv",
            conn_id="aisec_test_s3",
            expectations=[
                {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "label", "value_set": [0]}}
            ],
        )
        ReproducibleSplitOperator(
            task_id="split_s3",
            dataset_uri="s3://ml-data/train/table.csv",
            conn_id="aisec_test_s3",
            output_dir=str(tmp_path / "splits"),
            seed=1,
            test_size=0.25,
            stratify_column="label",
        )
    dr = run_dag(dag)
    assert task_states(dr) == {"pinned": "success", "validate_s3": "failed", "split_s3": "success"}
    validation = xcom(dr, "validate_s3")
    assert validation["findings"][0]["details"]["unexpected_count"] == 10  # GX saw the S3 rows
    assert xcom(dr, "split_s3")["details"]["splits"]["test"]["rows"] == 5
    report = xcom(dr, "pinned")
    assert report["details"]["observed"]["version"]["version_id"] == s3["v1"]
    assert os.path.exists(report["details"]["statement"]["path"])
