from __future__ import annotations

import hashlib
import json
import os

import pytest

from airflow_aisec.core import provenance as prov
from airflow_aisec.core.integrity import hash_artifact
from airflow_aisec.core.signing import generate_ed25519_keypair, load_signing_key
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import validate


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "datasets"
    root.mkdir()
    path = root / "train.csv"
    path.write_text("a,b,label\n1,2,0\n3,4,1\n")
    return path


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def only_finding(report):
    assert report.status == "fail"
    assert len(report.findings) == 1
    return report.findings[0]


# ------------------------------------------------------------------ URIs and the allowlist
@pytest.mark.parametrize(
    ("uri", "allow", "ok"),
    [
        ("s3://bucket/data/train.csv", ["s3://bucket"], True),
        ("s3://bucket/data/train.csv", ["s3://bucket/data"], True),
        ("s3://bucket/data/train.csv", ["s3://bucket/data/"], True),
        ("s3://bucket/data-evil/train.csv", ["s3://bucket/data"], False),
        ("s3://bucketx/data/train.csv", ["s3://bucket"], False),
        ("s3://BUCKET/data/x.csv?versionId=abc", ["s3://bucket/data"], False),  # bucket names are case-sensitive
        ("gs://bucket/data/x.csv", ["s3://bucket"], False),
    ],
)
def test_allowlist_matches_on_path_boundaries(uri, allow, ok):
    assert (prov.allowed_source(prov.parse_uri(uri), allow) is not None) is ok


def test_local_paths_are_resolved_before_matching(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "outside.csv"
    outside.write_text("x")
    link = allowed / "link.csv"
    link.symlink_to(outside)
    assert prov.allowed_source(prov.parse_uri(str(allowed / "f.csv")), [str(allowed)]) == str(allowed)
    assert prov.allowed_source(prov.parse_uri(str(allowed / ".." / "outside.csv")), [str(allowed)]) is None
    assert prov.allowed_source(prov.parse_uri(str(link)), [str(allowed)]) is None  # symlink escapes
    assert prov.allowed_source(prov.parse_uri(f"file://{allowed}/f.csv"), [str(allowed)]) is not None


def test_object_keys_with_dot_segments_are_refused():
    with pytest.raises(AisecInputError, match=r"'\.\.' path segments"):
        prov.parse_uri("s3://bucket/data/../secret.csv")


def test_version_id_is_parsed_from_the_uri():
    uri = prov.parse_uri("s3://bucket/k/x.parquet?versionId=v123")
    assert (uri.bucket, uri.path, uri.version_id, uri.canonical) == (
        "bucket",
        "k/x.parquet",
        "v123",
        "s3://bucket/k/x.parquet",
    )


# ------------------------------------------------------------------ verify_dataset: pass
def test_verified_dataset_yields_an_in_toto_slsa_statement(dataset, tmp_path):
    out = tmp_path / "out" / "statement.intoto.json"
    report, statement = prov.verify_dataset(
        str(dataset),
        allow_sources=[str(dataset.parent)],
        expected_digest=f"sha256:{sha256(dataset).upper()}",
        builder_id="https://airflow.example/",
        invocation_id="dag/run/task/1",
        statement_path=out,
    )
    assert report.status == "pass", report.summary
    validate(report.to_dict())
    assert statement == json.loads(out.read_bytes())
    prov.validate_statement(statement)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [{"name": "train.csv", "digest": {"sha256": sha256(dataset)}}]
    dep = statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]
    assert dep["uri"] == f"file://{os.path.realpath(dataset)}"
    assert dep["annotations"]["version"] == f"sha256:{sha256(dataset)}"
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == "https://airflow.example/"
    assert run["metadata"]["invocationId"] == "dag/run/task/1"
    assert report.details["statement"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert report.details["observed"]["digest"] == f"sha256:{sha256(dataset)}"


def test_directory_dataset_verified_against_a_signed_manifest(tmp_path):
    data = tmp_path / "ds"
    (data / "part").mkdir(parents=True)
    (data / "part" / "a.csv").write_text("x\n1\n")
    (data / "b.csv").write_text("y\n2\n")
    generate_ed25519_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    manifest_path = tmp_path / "ds.manifest.json"
    hash_artifact(data, manifest_path=manifest_path, signing_key=load_signing_key(tmp_path / "k.pem"))
    report, statement = prov.verify_dataset(
        str(data),
        allow_sources=[str(tmp_path)],
        manifest=prov.ManifestInput(manifest_path, signature=f"{manifest_path}.sig", public_key=tmp_path / "k.pub"),
        require_signature=True,
    )
    assert report.status == "pass", report.summary
    assert report.details["signature"]["verified"] is True
    assert sorted(s["name"] for s in statement["subject"]) == ["b.csv", "part/a.csv"]


def test_statement_signature_covers_the_exact_bytes(dataset, tmp_path):
    from airflow_aisec.core.signing import load_verify_key, parse_signature, verify

    generate_ed25519_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    out = tmp_path / "s.intoto.json"
    report, _ = prov.verify_dataset(
        str(dataset),
        allow_sources=[str(dataset.parent)],
        expected_digest=sha256(dataset),
        statement_path=out,
        statement_signing_key=load_signing_key(tmp_path / "k.pem"),
    )
    assert report.details["statement"]["signature_path"] == f"{out}.sig"
    assert "AML.M0013" in report.tags
    key = load_verify_key(tmp_path / "k.pub")
    doc = parse_signature(open(f"{out}.sig").read())
    assert verify(out.read_bytes(), doc, key)[0] is True
    assert verify(out.read_bytes().replace(b"train.csv", b"trainX.csv"), doc, key)[0] is False


def test_require_version_is_satisfied_locally_by_the_content_pin(dataset):
    report, _ = prov.verify_dataset(
        str(dataset), allow_sources=[str(dataset.parent)], expected_digest=sha256(dataset), require_version=True
    )
    assert report.status == "pass"
    assert report.details["observed"]["version"]["version"] == f"sha256:{sha256(dataset)}"


# ------------------------------------------------------------------ verify_dataset: every refusal
def test_source_outside_allowlist_is_refused_without_reading(tmp_path):
    missing = tmp_path / "elsewhere" / "nope.csv"  # would be MISSING if it were read
    report, statement = prov.verify_dataset(str(missing), allow_sources=["/srv/datasets"], expected_digest="0" * 64)
    finding = only_finding(report)
    assert finding.id == "AISEC-PROV-SOURCE"
    assert "outside the allowlist" in report.summary
    assert statement is None


def test_digest_mismatch_is_refused_and_no_statement_is_written(dataset, tmp_path):
    out = tmp_path / "s.json"
    report, statement = prov.verify_dataset(
        str(dataset), allow_sources=[str(dataset.parent)], expected_digest="ab" * 32, statement_path=out
    )
    finding = only_finding(report)
    assert finding.id == "AISEC-PROV-DIGEST"
    assert "digest mismatch" in report.summary
    assert finding.details["observed"] == f"sha256:{sha256(dataset)}"
    assert statement is None
    assert not out.exists()


def test_missing_data_is_refused(tmp_path):
    report, _ = prov.verify_dataset(str(tmp_path / "gone.csv"), allow_sources=[str(tmp_path)], expected_digest="0" * 64)
    assert only_finding(report).id == "AISEC-PROV-MISSING"
    assert "missing or unreadable" in report.summary


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads anything")
def test_unreadable_data_is_refused(dataset):
    dataset.chmod(0)
    try:
        report, _ = prov.verify_dataset(str(dataset), allow_sources=[str(dataset.parent)], expected_digest="0" * 64)
    finally:
        dataset.chmod(0o644)
    assert only_finding(report).id == "AISEC-PROV-MISSING"


def test_manifest_mismatch_is_refused(dataset, tmp_path):
    manifest_path = tmp_path / "m.json"
    hash_artifact(dataset, manifest_path=manifest_path)
    dataset.write_text("a,b,label\n1,2,1\n3,4,1\n")  # a flipped label
    report, _ = prov.verify_dataset(
        str(dataset), allow_sources=[str(dataset.parent)], manifest=prov.ManifestInput(manifest_path)
    )
    finding = only_finding(report)
    assert finding.id == "AISEC-PROV-MANIFEST"
    assert "train.csv changed" in report.summary


def test_bad_signature_is_refused(dataset, tmp_path):
    generate_ed25519_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    generate_ed25519_keypair(tmp_path / "other.pem", tmp_path / "other.pub")
    manifest_path = tmp_path / "m.json"
    hash_artifact(dataset, manifest_path=manifest_path, signing_key=load_signing_key(tmp_path / "other.pem"))
    report, _ = prov.verify_dataset(
        str(dataset),
        allow_sources=[str(dataset.parent)],
        manifest=prov.ManifestInput(manifest_path, signature=f"{manifest_path}.sig", public_key=tmp_path / "k.pub"),
    )
    assert only_finding(report).id == "AISEC-PROV-SIGNATURE"
    assert "bad manifest signature" in report.summary


def test_unsigned_manifest_is_refused_when_a_signature_is_required(dataset, tmp_path):
    manifest_path = tmp_path / "m.json"
    hash_artifact(dataset, manifest_path=manifest_path)
    report, _ = prov.verify_dataset(
        str(dataset),
        allow_sources=[str(dataset.parent)],
        manifest=prov.ManifestInput(manifest_path),
        require_signature=True,
    )
    assert only_finding(report).id == "AISEC-PROV-SIGNATURE"


def test_edited_manifest_is_an_input_error(dataset, tmp_path):
    manifest_path = tmp_path / "m.json"
    hash_artifact(dataset, manifest_path=manifest_path)
    doc = json.loads(manifest_path.read_text())
    doc["entries"][0]["digest"] = "0" * 64
    manifest_path.write_text(json.dumps(doc))
    with pytest.raises(AisecInputError, match="root digest does not match"):
        prov.verify_dataset(str(dataset), allow_sources=[str(tmp_path)], manifest=prov.ManifestInput(manifest_path))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"allow_sources": []}, "allow_sources is empty"),
        ({"allow_sources": ["/x"], "expected_digest": None}, "exactly one of expected_digest or manifest"),
        ({"allow_sources": ["/x"], "expected_digest": "xyz"}, "not a sha256 hex digest"),
        ({"allow_sources": ["/x"], "expected_digest": "sha512:" + "0" * 128}, "uses 'sha512'"),
    ],
)
def test_bad_arguments_name_the_input(kwargs, match):
    kwargs.setdefault("expected_digest", "0" * 64)
    with pytest.raises(AisecInputError, match=match):
        prov.verify_dataset("/x/data.csv", **kwargs)


def test_s3_uri_without_client_and_unknown_schemes_are_input_errors():
    with pytest.raises(AisecInputError, match="needs an S3 client"):
        prov.verify_dataset("s3://b/k.csv", allow_sources=["s3://b"], expected_digest="0" * 64)
    with pytest.raises(AisecInputError, match="unsupported dataset URI scheme 'gs'"):
        prov.verify_dataset("gs://b/k.csv", allow_sources=["gs://b"], expected_digest="0" * 64)


# ------------------------------------------------------------------ statements
def test_statement_validation_rejects_incomplete_statements():
    good = prov.build_statement(
        subjects=[{"name": "m.pkl", "digest": {"sha256": "00"}}],
        build_type=prov.MODEL_BUILD_TYPE,
        external_parameters={},
        builder_id="b",
    )
    prov.validate_statement(good)
    with pytest.raises(AisecInputError, match="at least one subject"):
        prov.validate_statement({**good, "subject": []})
    with pytest.raises(AisecInputError, match="predicateType"):
        prov.validate_statement({**good, "predicateType": "https://slsa.dev/provenance/v0.2"})
    with pytest.raises(AisecInputError, match="needs a name and a digest"):
        prov.build_statement(subjects=[{"name": "x"}], build_type="t", external_parameters={})


def test_canonical_json_is_deterministic():
    assert prov.canonical_json({"b": 1, "a": [1, 2]}) == prov.canonical_json({"a": [1, 2], "b": 1})


def test_verification_steps_are_registered_in_order_and_documented():
    assert prov.STEPS.names() == [
        "allowed_source",
        "pinned_version",
        "readable_data",
        "plain_files",
        "manifest_signature",
        "known_good",
    ]
    assert all(step.doc and step.finds for step in prov.STEPS)
    ids = {fid for step in prov.STEPS for fid in step.finds}
    assert ids == {
        "AISEC-PROV-SOURCE",
        "AISEC-PROV-UNPINNED",
        "AISEC-PROV-MISSING",
        "AISEC-PROV-SPECIAL",
        "AISEC-PROV-LINK",
        "AISEC-PROV-DIGEST",
        "AISEC-PROV-SIGNATURE",
        "AISEC-PROV-MANIFEST",
    }
