"""S3 buckets are matched as they are read, the bytes hashed are the object looked at, a key requires a signature."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from airflow_aisec.core import hashing, signing
from airflow_aisec.core import provenance as prov


class _ClientError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class _SwappingS3:
    """A bucket whose object is overwritten between ``head_object`` and ``get_object`` (unversioned)."""

    def __init__(self, before: bytes, after: bytes, *, honour_if_match: bool = True) -> None:
        self.before, self.after, self.honour = before, after, honour_if_match
        self.calls: list[tuple[str, dict]] = []

    @staticmethod
    def _etag(data: bytes) -> str:
        return f'"{hashlib.md5(data).hexdigest()}"'

    def head_object(self, **kw):
        self.calls.append(("head_object", kw))
        return {"ETag": self._etag(self.before), "ContentLength": len(self.before), "VersionId": "null"}

    def get_object(self, **kw):
        self.calls.append(("get_object", kw))
        etag = self._etag(self.after)
        if self.honour and kw.get("IfMatch") and kw["IfMatch"] != etag:
            raise _ClientError("PreconditionFailed")
        return {"Body": io.BytesIO(self.after), "ETag": etag, "ContentLength": len(self.after)}


@pytest.mark.parametrize("honour_if_match", [True, False])
def test_object_overwritten_between_head_and_get_is_not_attested_with_the_old_etag(honour_if_match):
    client = _SwappingS3(b"good,1\n", b"evil,999\n", honour_if_match=honour_if_match)
    evil = hashlib.sha256(b"evil,999\n").hexdigest()
    report, statement = prov.verify_dataset(
        "s3://data/train.csv", allow_sources=["s3://data"], expected_digest=evil, s3_client=client
    )
    assert report.status == "fail" and statement is None
    assert report.findings[0].id == "AISEC-PROV-MISSING"
    assert "ETag" in report.findings[0].title
    get = [kw for name, kw in client.calls if name == "get_object"]
    assert get and get[0].get("IfMatch") == client._etag(b"good,1\n")


def test_unchanged_object_still_passes_and_the_statement_matches_what_was_read():
    client = _SwappingS3(b"good,1\n", b"good,1\n")
    good = hashlib.sha256(b"good,1\n").hexdigest()
    report, statement = prov.verify_dataset(
        "s3://data/train.csv", allow_sources=["s3://data"], expected_digest=good, s3_client=client
    )
    assert report.status == "pass", report.summary
    dep = statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]
    assert dep["digest"] == {"sha256": good}
    assert dep["annotations"]["etag"] == client._etag(b"good,1\n").strip('"')


@pytest.mark.parametrize(
    ("uri", "allow"),
    [
        ("s3://DATA/train.csv", "s3://data"),  # a legacy bucket with capitals is another bucket
        ("s3://Data/x/train.csv", "s3://data/x"),
        ("s3://\u212aeys/train.csv", "s3://keys"),  # KELVIN SIGN lowercases to 'k'
        ("s3://data/train.csv", "s3://DATA"),
    ],
)
def test_bucket_names_are_matched_exactly_as_they_are_read(uri, allow):
    parsed = prov.parse_uri(uri)
    assert prov.allowed_source(parsed, [allow]) is None
    report, statement = prov.verify_dataset(uri, allow_sources=[allow], expected_digest="0" * 64)
    assert report.status == "fail" and report.findings[0].id == "AISEC-PROV-SOURCE" and statement is None


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    signing.generate_ed25519_keypair(base / "k.pem", base / "k.pub")
    return base / "k.pem", base / "k.pub"


@pytest.mark.parametrize("as_mapping", [False, True])
def test_a_configured_key_requires_the_signature_in_the_core_api(tmp_path, key_pair, as_mapping):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_bytes(b"a,1\n")
    manifest = hashing.build_manifest(data)
    path = tmp_path / "m.json"
    path.write_bytes(hashing.manifest_bytes(manifest))  # unsigned: anyone could have written it
    ref = prov.ManifestInput(manifest if as_mapping else path, public_key=str(key_pair[1]))
    report, statement = prov.verify_dataset(str(data), allow_sources=[str(tmp_path)], manifest=ref)
    assert report.status == "fail" and statement is None
    assert report.findings[0].id == "AISEC-PROV-SIGNATURE"
    # signed, it passes
    key = signing.load_signing_key(key_pair[0])
    (tmp_path / "m.json.sig").write_bytes(json.dumps(signing.sign(path.read_bytes(), key)).encode())
    ok, _ = prov.verify_dataset(
        str(data), allow_sources=[str(tmp_path)], manifest=prov.ManifestInput(path, public_key=str(key_pair[1]))
    )
    assert ok.status == "pass", ok.summary
