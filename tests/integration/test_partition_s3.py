"""Partitioned hashing of an ``s3://`` prefix (moto server on loopback): through the CLI (fsspec
credentials from the environment) and through the mapped operators (an Airflow AWS connection), the
merged manifest is byte-identical to a single pass; a prefix changed between planning and hashing is
refused."""

from __future__ import annotations

import json
import uuid

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_aisec.cli import main
from airflow_aisec.operators.integrity import (
    ArtifactHashOperator,
    ArtifactPartitionPlanOperator,
    ManifestMergeOperator,
)
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.fixtures.moto_server import moto_server  # noqa: F401

pytestmark = pytest.mark.integration
CONN_ID = "aisec_partition_s3"
SIZES = {"a/x.bin": 70_000, "a/y.bin": 5, "b/c/z.bin": 40_000, "top.bin": 90_000, "empty.bin": 0}


@pytest.fixture
def s3_dataset(moto_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": moto_server.endpoint_url, "region_name": "us-east-1"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    bucket = f"data-{uuid.uuid4().hex[:8]}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    for key, size in SIZES.items():
        s3.put_object(
            Bucket=bucket, Key=f"corpus/{key}", Body=key.encode() * (size // len(key)) + b"!" * (size % len(key))
        )
    return s3, f"s3://{bucket}/corpus"


def _cli(capsys, *argv):
    capsys.readouterr()
    code = main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_cli_partitions_of_an_s3_prefix_merge_into_the_single_pass_manifest(s3_dataset, tmp_path, capsys):
    s3, uri = s3_dataset
    single, merged = tmp_path / "single.json", tmp_path / "merged.json"
    assert _cli(capsys, "hash", uri, "-o", str(single))[0] == 0
    parts = [str(tmp_path / f"part-{k}.json") for k in (1, 2, 3)]
    for k, part in enumerate(parts, 1):
        assert _cli(capsys, "hash", uri, "--partition", f"{k}/3", "-o", part)[0] == 0
    code, report = _cli(capsys, "manifest", "merge", *parts, "-o", str(merged))
    assert code == 0, report["summary"]
    assert merged.read_bytes() == single.read_bytes()
    assert {e["path"] for e in json.loads(merged.read_text())["entries"]} == set(SIZES)
    again = tmp_path / "again.json"  # a second walk in the same process lists the store, not a stale cache
    assert _cli(capsys, "hash", uri, "-o", str(again))[0] == 0
    assert again.read_bytes() == single.read_bytes()
    assert json.loads(again.read_text())["directories"] == ["a", "b", "b/c"]

    bucket = uri.split("/")[2]
    s3.put_object(Bucket=bucket, Key="corpus/late.bin", Body=b"added after part 1")
    assert _cli(capsys, "hash", uri, "--partition", "2/3", "-o", parts[1])[0] == 0
    code, report = _cli(capsys, "manifest", "merge", *parts, "-o", str(tmp_path / "m2.json"))
    assert code == 2 and "has listing_digest" in report["summary"]
    assert not (tmp_path / "m2.json").exists()


def test_mapped_operators_on_an_s3_prefix(airflow_db, s3_dataset, tmp_path, capsys):
    _, uri = s3_dataset
    manifest = tmp_path / "manifest.json"
    with DAG("t_partition_s3", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        plan = ArtifactPartitionPlanOperator(task_id="plan", path=uri, partitions=2, storage_conn_id=CONN_ID)
        parts = ArtifactHashOperator.partial(
            task_id="hash_part",
            path=uri,
            manifest_path=str(tmp_path / "part-{{ ti.map_index }}.json"),
            storage_conn_id=CONN_ID,
        ).expand(partition=plan.output)
        ManifestMergeOperator(task_id="merge", parts=parts.output, manifest_path=str(manifest))
    dr = run_dag(dag)
    assert set(task_states(dr).values()) == {"success"}
    assert xcom(dr, "merge")["metrics"]["files"] == len(SIZES)
    # the operators name the prefix as the connection-bound path does; the entries and digests are the CLI's
    single = tmp_path / "single.json"
    assert _cli(capsys, "hash", uri, "-o", str(single))[0] == 0
    ours, cli = json.loads(manifest.read_text()), json.loads(single.read_text())
    assert ours["root_digest"] == cli["root_digest"]
    assert ours["entries"] == cli["entries"]
