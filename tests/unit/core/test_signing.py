from __future__ import annotations

import json

import pytest

from airflow_aisec.core import signing
from airflow_aisec.exceptions import AisecInputError


@pytest.fixture
def ed_keys(tmp_path):
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    key_id = signing.generate_ed25519_keypair(priv, pub)
    return priv, pub, key_id


def test_ed25519_round_trip_and_tamper(ed_keys):
    priv, pub, key_id = ed_keys
    assert oct(priv.stat().st_mode & 0o777) == "0o600"
    sk, vk = signing.load_signing_key(priv), signing.load_verify_key(pub)
    assert sk.key_id == vk.key_id == key_id
    doc = signing.sign(b"manifest bytes", sk)
    assert signing.parse_signature(json.dumps(doc))["algorithm"] == "ed25519"
    assert signing.verify(b"manifest bytes", doc, vk) == (True, "Ed25519 signature valid")
    ok, reason = signing.verify(b"manifest bytes!", doc, vk)
    assert not ok
    assert "does not match" in reason


def test_signature_from_another_key_is_rejected(ed_keys, tmp_path):
    priv, _, _ = ed_keys
    other_priv, other_pub = tmp_path / "o.pem", tmp_path / "o.pub"
    signing.generate_ed25519_keypair(other_priv, other_pub)
    doc = signing.sign(b"data", signing.load_signing_key(priv))
    ok, reason = signing.verify(b"data", doc, signing.load_verify_key(other_pub))
    assert not ok
    assert "made with key" in reason
    # forging the key id does not help: the signature itself is checked
    doc["key_id"] = signing.load_verify_key(other_pub).key_id
    assert signing.verify(b"data", doc, signing.load_verify_key(other_pub))[0] is False


def test_hmac_round_trip_and_wrong_secret():
    secret = b"k3Jq9-vXw2Lp7Rt0Zs8N-secret"
    doc = signing.sign(b"data", signing.load_signing_key(secret, "hmac-sha256"))
    assert signing.verify(b"data", doc, signing.load_verify_key(secret, "hmac-sha256"))[0]
    assert not signing.verify(b"data", doc, signing.load_verify_key(b"another-secret-of-16+", "hmac-sha256"))[0]
    assert signing.load_verify_key(b"k3Jq9-vXw2Lp7Rt0Zs8N-secret").algorithm == "hmac-sha256"  # non-PEM → HMAC


def test_key_material_never_in_repr(ed_keys):
    secret = b"0123456789abcdef-very-secret"
    key = signing.load_signing_key(secret, "hmac-sha256")
    assert "very-secret" not in repr(key)
    assert "PRIVATE" not in repr(signing.load_signing_key(ed_keys[0]))


@pytest.mark.parametrize(
    ("source", "algorithm", "match"),
    [
        (b"short", "hmac-sha256", "too short"),
        (b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", None, "not an unencrypted PEM"),
        (b"0123456789abcdef0", "rsa", "unknown signing algorithm"),
    ],
)
def test_bad_keys_are_named(source, algorithm, match):
    with pytest.raises(AisecInputError, match=match):
        signing.load_signing_key(source, algorithm)


def test_missing_key_file_is_named(tmp_path):
    with pytest.raises(AisecInputError, match="signing key file not found"):
        signing.load_signing_key(tmp_path / "absent.pem")


def test_malformed_signature_documents(ed_keys):
    with pytest.raises(AisecInputError, match="invalid JSON"):
        signing.parse_signature("{", "sig")
    with pytest.raises(AisecInputError, match="is missing 'signature'"):
        signing.parse_signature(json.dumps({"schema": signing.SIGNATURE_SCHEMA, "algorithm": "ed25519", "key_id": "x"}))
    vk = signing.load_verify_key(ed_keys[1])
    doc = {"schema": signing.SIGNATURE_SCHEMA, "algorithm": "ed25519", "key_id": vk.key_id, "signature": "%%%"}
    assert signing.verify(b"d", doc, vk) == (False, "signature is not valid base64")
