"""Partitioned hashing operators: argument checks, and a merge that refuses an incomplete set of parts."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.operators.integrity import (
    ArtifactHashOperator,
    ArtifactPartitionPlanOperator,
    ManifestMergeOperator,
)
from tests.airflow_helpers import run_dag, task_states, xcom

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def test_partition_needs_a_part_path_and_no_signing_key():
    with pytest.raises(ValueError, match="partition= needs manifest_path"):
        ArtifactHashOperator(task_id="h", path="/d", partition="1/2")
    with pytest.raises(ValueError, match="no signing key"):
        ArtifactHashOperator(task_id="h", path="/d", partition="1/2", manifest_path="/p", signing_key_path="/k")
    assert "partition" in ArtifactHashOperator.template_fields


@pytest.mark.parametrize("n", [0, 10_001, True, "4"])
def test_plan_partition_count_is_checked(n):
    with pytest.raises(ValueError, match="partitions must be an integer in 1..10000"):
        ArtifactPartitionPlanOperator(task_id="p", path="/d", partitions=n)


def test_merge_part_paths_from_paths_or_reports():
    op = ManifestMergeOperator(
        task_id="m", parts=["/p/1.json", {"details": {"part_path": "file:///p/2.json"}}], manifest_path="/m.json"
    )
    assert op.part_paths() == ["/p/1.json", "/p/2.json"]
    op.parts = ["/p/1.json", {"details": {"part_path": "/p/2.json", "part_digest": "abc"}}]
    assert op._parts() == [("/p/1.json", None), ("/p/2.json", "abc")]  # a report binds its file to its digest
    for bad in ("/p/1.json", [{"details": {}}], [3]):
        op.parts = bad
        with pytest.raises(AisecInputError, match="part"):
            op.part_paths()
    with pytest.raises(ValueError, match="not both"):
        ManifestMergeOperator(task_id="m", parts=[], manifest_path="/m", signing_key_path="/k", signing_conn_id="c")


def test_merge_of_an_incomplete_set_fails_closed(airflow_db, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        (data / f"f{i}").write_bytes(b"x" * (i + 1) * 1000)
    part, manifest = tmp_path / "part-1.json", tmp_path / "manifest.json"
    with DAG("t_partition_incomplete", schedule=None, start_date=START) as dag:
        h = ArtifactHashOperator(task_id="hash_1", path=str(data), manifest_path=str(part), partition="1/2")
        m = ManifestMergeOperator(task_id="merge", parts=[str(part)], manifest_path=str(manifest))
        h >> m
    dr = run_dag(dag)
    assert task_states(dr) == {"hash_1": "success", "merge": "failed"}
    report = xcom(dr, "merge")
    assert report["status"] == "error"
    assert "missing partition(s) 2/2" in report["summary"]
    assert xcom(dr, "hash_1")["details"]["partition"] == "1/2"
    assert not manifest.exists()


def test_merge_refuses_a_part_replaced_after_its_hashing_task(airflow_db, tmp_path):
    """The hashing tasks' reports bind the merge to the parts they wrote: a part replaced in between (here by
    the part of the same partition over altered content of the same size) fails the merge, nothing written."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        (data / f"f{i}").write_bytes(b"x" * (i + 1) * 1000)
    manifest = tmp_path / "manifest.json"

    with DAG("t_partition_swap", schedule=None, start_date=START) as dag:
        hashes = [
            ArtifactHashOperator(
                task_id=f"hash_{k}", path=str(data), manifest_path=str(tmp_path / f"p{k}.json"), partition=f"{k}/2"
            )
            for k in (1, 2)
        ]
        from airflow.sdk import task

        @task(task_id="swap")
        def swap() -> None:
            from airflow_aisec.core.partition import hash_partition_artifact

            originals = {f: (data / f).read_bytes() for f in ("f0", "f1", "f2", "f3")}
            for f, content in originals.items():
                (data / f).write_bytes(b"y" * len(content))
            hash_partition_artifact(data, "2/2", part_path=tmp_path / "p2.json")  # a valid part, other content
            for f, content in originals.items():
                (data / f).write_bytes(content)

        m = ManifestMergeOperator(task_id="merge", parts=[h.output for h in hashes], manifest_path=str(manifest))
        hashes >> swap() >> m
    dr = run_dag(dag)
    assert task_states(dr)["merge"] == "failed"
    report = xcom(dr, "merge")
    assert report["status"] == "error" and "not the part its hashing task reported" in report["summary"]
    assert not manifest.exists()
