"""The one "is this remote?" answer: file:// handled alike everywhere, malformed / unsupported URIs refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils.uri import (
    CREDENTIAL_SCHEMES,
    REMOTE_SCHEMES,
    is_remote,
    local_path,
    parse_storage_uri,
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///tmp/x.parquet", "/tmp/x.parquet"),
        ("FILE:///tmp/x.parquet", "/tmp/x.parquet"),
        ("File://localhost/tmp/x", "/tmp/x"),
        ("file:/tmp/x", "/tmp/x"),
        ("/abs/x.csv", "/abs/x.csv"),
        ("rel/x.csv", "rel/x.csv"),
        ("run:2026.csv", "run:2026.csv"),  # a colon in a file name is not a scheme
        ("C:/data/x.csv", "C:/data/x.csv"),  # a drive letter is not a scheme
    ],
)
def test_local_forms(uri, expected):
    assert not is_remote(uri)
    assert local_path(uri) == expected


def test_tilde_is_expanded_and_pathlike_accepted(monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    assert local_path("~/data/x.csv") == "/home/someone/data/x.csv"
    assert local_path(Path("/a/b")) == "/a/b"
    with pytest.raises(AisecInputError, match="malformed URI 's3:/x'"):
        is_remote(Path("s3://x"))  # a path object collapses "//": still refused, not read as a local folder


@pytest.mark.parametrize(
    ("uri", "scheme", "bucket", "key"),
    [
        ("s3://bucket/a/b.parquet", "s3", "bucket", "a/b.parquet"),
        ("S3://Bucket/k", "s3", "Bucket", "k"),  # scheme case-insensitive, bucket kept as given
        ("gs://b", "gs", "b", ""),
        ("memory://logs/a.jsonl", "memory", "logs", "a.jsonl"),
    ],
)
def test_remote_forms(uri, scheme, bucket, key):
    parsed = parse_storage_uri(uri)
    assert is_remote(uri) and parsed.scheme == scheme and parsed.bucket == bucket and parsed.key == key
    assert parsed.uri == f"{scheme}://{bucket}" + (f"/{key}" if key else "")
    assert parsed.needs_connection == (scheme in CREDENTIAL_SCHEMES)
    with pytest.raises(AisecInputError, match="is object storage"):
        local_path(uri)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3:/x", "malformed URI 's3:/x'"),
        ("s3://", "no bucket"),
        ("s3:///key", "no bucket"),
        ("memory://", "nothing after"),
        ("file://", "malformed URI"),
        ("file://data/x.csv", "names host 'data'"),
        ("ftp://host/x", "unsupported storage scheme 'ftp'"),
        ("http://host/x", "unsupported storage scheme 'http'"),
        (" s3://b/k", "does not follow a scheme"),
        ("data/s3://b/k", "does not follow a scheme"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("a\x00b", "NUL"),
        ("s3://b/\x00", "NUL"),
    ],
)
def test_malformed_or_unsupported_fail_closed(uri, message):
    with pytest.raises(AisecInputError, match=message):
        parse_storage_uri(uri)
    with pytest.raises(AisecInputError, match=message):
        is_remote(uri)


@pytest.mark.parametrize("value", [b"s3://b/k", 3, None])
def test_non_text_refused(value):
    with pytest.raises(AisecInputError, match="must be a string or path"):
        parse_storage_uri(value)


def test_opened_object_storage_path_is_remote():
    class Opened:
        fs = object()
        path = "bucket/key"

    assert is_remote(Opened())


_SCHEME = st.from_regex(r"[A-Za-z][A-Za-z0-9+.\-]{0,8}", fullmatch=True)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(scheme=_SCHEME, rest=_TEXT, sep=st.sampled_from(["://", ":/", ":", ":///"]))
def test_any_uri_like_text_is_classified_or_refused(scheme, rest, sep):
    """Never a crash, never a remote answer for an unsupported scheme, never a local path holding '://'."""
    uri = scheme + sep + rest
    try:
        parsed = parse_storage_uri(uri)
    except AisecInputError:
        with pytest.raises(AisecInputError, match=r"URI|scheme|NUL|empty"):  # the message names the problem
            parse_storage_uri(uri)
        return
    if parsed.is_remote:
        assert parsed.scheme in REMOTE_SCHEMES and sep == "://"
        assert parsed.uri.startswith(parsed.scheme + "://")
    else:
        assert "://" not in local_path(uri)
        assert "\x00" not in parsed.path


@given(st.text(max_size=60))
def test_any_text_has_one_consistent_answer(text):
    """``is_remote`` and ``local_path`` agree: exactly one of them answers, or both refuse alike."""
    try:
        remote = is_remote(text)
    except AisecInputError:
        with pytest.raises(AisecInputError):
            local_path(text)
        return
    if remote:
        with pytest.raises(AisecInputError, match="is object storage"):
            local_path(text)
    else:
        path = local_path(text)
        assert isinstance(path, str) and "\x00" not in path
        if not text.lower().startswith("file:") and not text.startswith("~"):
            assert path == text  # plain paths pass through unchanged


@given(st.sampled_from(sorted(CREDENTIAL_SCHEMES)), st.sampled_from(["", "FILE", "File"]))
def test_file_scheme_never_mistaken_for_remote(scheme, file_case):
    if file_case:
        assert local_path(f"{file_case}:///{scheme}/x") == f"/{scheme}/x"
    assert is_remote(f"{scheme.upper()}://bucket/key")


def test_same_answer_as_os_for_plain_paths(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"x")
    for form in (str(target), f"file://{target}", f"FILE://{target}", f"file://localhost{target}"):
        assert os.path.isfile(local_path(form))
