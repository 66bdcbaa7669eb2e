from __future__ import annotations

import hashlib
import json
import os

import pytest

from airflow_aisec.core import integrity, signing
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import validate


@pytest.fixture
def artifact(tmp_path):
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(4096))
    (root / "config.json").write_text('{"a": 1}')
    (root / "sub" / "vocab.txt").write_text("a\nb\n")
    return root


@pytest.fixture
def keys(tmp_path):
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    signing.generate_ed25519_keypair(priv, pub)
    return signing.load_signing_key(priv), signing.load_verify_key(pub)


def test_hash_then_verify_signed_manifest(artifact, keys, tmp_path):
    manifest = tmp_path / "m.json"
    report = integrity.hash_artifact(artifact, manifest_path=manifest, signing_key=keys[0]).to_dict()
    validate(report)
    assert report["status"] == "pass"
    assert report["details"]["signature_path"] == f"{manifest}.sig"
    assert report["metrics"]["files"] == 3
    assert "AML.M0013" in report["tags"]
    ok = integrity.verify_artifact(artifact, manifest_path=manifest, verify_key=keys[1]).to_dict()
    assert ok["status"] == "pass"
    assert ok["details"]["signature_valid"] is True


def test_changes_added_removed_are_listed(artifact, tmp_path):
    manifest = tmp_path / "m.json"
    integrity.hash_artifact(artifact, manifest_path=manifest)
    (artifact / "weights.bin").write_bytes(b"backdoor")
    (artifact / "sub" / "vocab.txt").unlink()
    (artifact / "extra.pkl").write_bytes(b"payload")
    r = integrity.verify_artifact(artifact, manifest_path=manifest).to_dict()
    assert r["status"] == "fail"
    assert {(f["id"], f["location"]) for f in r["findings"]} == {
        ("AISEC-INT-CHANGED", "weights.bin"),
        ("AISEC-INT-REMOVED", "sub/vocab.txt"),
        ("AISEC-INT-ADDED", "extra.pkl"),
    }
    assert r["metrics"]["changed"] == 1


def test_tampered_manifest_fails_signature(artifact, keys, tmp_path):
    manifest = tmp_path / "m.json"
    integrity.hash_artifact(artifact, manifest_path=manifest, signing_key=keys[0])
    (artifact / "weights.bin").write_bytes(b"swapped")
    # attacker re-hashes and rewrites the manifest, but cannot re-sign it
    integrity.hash_artifact(artifact, manifest_path=manifest)
    r = integrity.verify_artifact(artifact, manifest_path=manifest, verify_key=keys[1]).to_dict()
    assert r["status"] == "fail"
    assert r["findings"][0]["id"] == "AISEC-INT-BAD-SIGNATURE"
    assert r["findings"][0]["severity"] == "critical"


def test_fail_closed_on_missing_evidence(artifact, keys, tmp_path):
    manifest = tmp_path / "m.json"
    with pytest.raises(AisecUndecidableError, match="manifest not found"):
        integrity.verify_artifact(artifact, manifest_path=manifest)
    integrity.hash_artifact(artifact, manifest_path=manifest)  # unsigned
    with pytest.raises(AisecUndecidableError, match="signature not found"):
        integrity.verify_artifact(artifact, manifest_path=manifest, verify_key=keys[1])
    with pytest.raises(AisecInputError, match="needs a verification key"):
        integrity.verify_artifact(artifact, manifest_path=manifest, require_signature=True)
    with pytest.raises(AisecUndecidableError, match="path not found"):
        integrity.verify_artifact(tmp_path / "gone", manifest_path=manifest)
    with pytest.raises(AisecInputError, match="exactly one"):
        integrity.verify_artifact(artifact)


def test_unreadable_file_makes_an_error_report(artifact, tmp_path, monkeypatch):
    manifest = tmp_path / "m.json"
    integrity.hash_artifact(artifact, manifest_path=manifest)
    target = str(artifact / "config.json")
    real_open = os.open

    def guarded_open(path, *a, **k):  # root reads everything: inject the permission error
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", guarded_open)
    r = integrity.verify_artifact(artifact, manifest_path=manifest).to_dict()
    assert r["status"] == "error"
    assert [f["id"] for f in r["findings"]] == ["AISEC-INT-UNREADABLE"]


def test_expected_digest_for_file_and_directory(artifact, tmp_path):
    f = artifact / "config.json"
    digest = hashlib.sha256(b'{"a": 1}').hexdigest()
    assert integrity.verify_artifact(f, expected_digest=digest).status == "pass"
    assert integrity.verify_artifact(f, expected_digest=f"SHA256:{digest.upper()}").status == "pass"
    bad = integrity.verify_artifact(f, expected_digest="0" * 64).to_dict()
    assert bad["status"] == "fail"
    assert bad["findings"][0]["details"]["actual"] == digest
    root = integrity.hash_artifact(artifact).details["digest"]
    assert integrity.verify_artifact(artifact, expected_digest=root).status == "pass"
    with pytest.raises(AisecInputError, match="not a sha256 hex digest"):
        integrity.verify_artifact(f, expected_digest="zz")


def test_manifest_file_written_atomically_and_canonical(artifact, tmp_path):
    manifest = tmp_path / "out" / "m.json"
    integrity.hash_artifact(artifact, manifest_path=manifest)
    doc = json.loads(manifest.read_text())
    assert doc["kind"] == "directory"
    assert manifest.read_bytes() == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    assert [p.name for p in manifest.parent.iterdir()] == ["m.json"]  # no temp files left behind
