"""The storage door: (uri, storage_conn_id) → local path or ObjectStoragePath; never ambient credentials."""

from __future__ import annotations

import json

import pytest

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.hooks.storage import StorageHook, resolve_storage, storage_conn_id

CONN_ID = "aisec_storage_unit"


@pytest.fixture
def aws_conn(monkeypatch):
    conn = {"conn_type": "aws", "login": "k", "password": "s", "extra": {"region_name": "us-east-1"}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    return CONN_ID


def test_local_paths_stay_local_strings(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("x\n1\n")
    for form in (str(f), f"file://{f}", f"FILE://{f}"):
        assert resolve_storage(form, None) == str(f)
        assert resolve_storage(form, "a_connection_local_paths_ignore") == str(f)
    hook = StorageHook()
    assert hook.exists(f"file://{f}") and not hook.exists(str(tmp_path / "missing"))
    assert hook.read_bytes(f"file://{f}") == b"x\n1\n"
    with pytest.raises(AisecInputError, match="not found"):
        hook.read_bytes(str(tmp_path / "missing.json"), what="reference profile")


def test_object_storage_without_a_connection_is_refused(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ambient")  # present, and still not used
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient")
    with pytest.raises(AisecInputError, match=r"dataset 's3://b/k' is object storage: give storage_conn_id"):
        resolve_storage("s3://b/k", None, what="dataset")
    with pytest.raises(AisecInputError, match="give storage_conn_id"):
        StorageHook().exists("gs://b/k")
    with pytest.raises(AisecInputError, match="give storage_conn_id"):
        StorageHook().s3_client("s3://b/k")


def test_undefined_connection_is_refused_not_replaced_by_the_environment():
    with pytest.raises(AisecInputError, match="connection 'aisec_no_such_conn' is not defined"):
        resolve_storage("s3://b/k", "aisec_no_such_conn")


def test_object_storage_through_the_named_connection(aws_conn):
    path = resolve_storage("S3://bucket/dir/x.parquet", aws_conn)
    assert type(path).__name__ == "ObjectStoragePath"
    assert path.conn_id == aws_conn and path.protocol == "s3"
    assert path.path.endswith("bucket/dir/x.parquet")


def test_malformed_and_unsupported_locations_fail_closed():
    for uri, message in (("s3:/x", "malformed URI"), ("ftp://h/x", "unsupported storage scheme"), ("", "empty")):
        with pytest.raises(AisecInputError, match=message):
            resolve_storage(uri, CONN_ID)


def test_memory_filesystem_needs_no_connection():
    import fsspec

    fsspec.filesystem("memory").pipe("/aisec-hook-test/a.json", b"{}")
    assert StorageHook().read_bytes("memory://aisec-hook-test/a.json") == b"{}"
    assert StorageHook().exists("memory://aisec-hook-test/a.json")


def test_s3_client_only_for_s3(aws_conn):
    with pytest.raises(AisecInputError, match="is not on S3"):
        StorageHook(aws_conn).s3_client("gs://b/k")
    assert StorageHook(aws_conn).s3_client("s3://b/k").meta.service_model.service_name == "s3"


def test_older_parameter_names_are_aliases():
    assert storage_conn_id(None, "old", "conn_id") == "old"
    assert storage_conn_id("new", None, "conn_id") == "new"
    assert storage_conn_id("same", "same", "conn_id") == "same"
    assert storage_conn_id(None, None, "conn_id") is None
    with pytest.raises(ValueError, match="give storage_conn_id or log_conn_id"):
        storage_conn_id("a", "b", "log_conn_id")
