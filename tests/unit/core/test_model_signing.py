"""ECDSA keys for the model-signing format, and the signature-format choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_aisec.core import signing
from airflow_aisec.core.integrity import resolve_signature_format
from airflow_aisec.core.model_signing import default_bundle_path, is_ecdsa_pem
from airflow_aisec.exceptions import AisecInputError


@pytest.fixture
def ec_keys(tmp_path: Path) -> tuple[Path, Path]:
    priv, pub = tmp_path / "ec.key", tmp_path / "ec.pub"
    signing.generate_ecdsa_keypair(priv, pub)
    return priv, pub


def test_ecdsa_keys_load_with_one_key_id(ec_keys: tuple[Path, Path]) -> None:
    priv, pub = ec_keys
    sk, vk = signing.load_signing_key(priv), signing.load_verify_key(pub)
    assert sk.algorithm == vk.algorithm == signing.ECDSA
    assert sk.key_id == vk.key_id == signing.load_verify_key(priv).key_id
    assert b"PRIVATE" not in vk._material  # a verify key never keeps private material
    assert is_ecdsa_pem(priv.read_bytes()) and is_ecdsa_pem(pub.read_bytes())
    assert "PRIVATE" not in repr(sk)


def test_ecdsa_key_refuses_the_legacy_format_and_public_key_cannot_sign(ec_keys: tuple[Path, Path]) -> None:
    priv, pub = ec_keys
    with pytest.raises(AisecInputError, match="model-signing format only"):
        signing.sign(b"data", signing.load_signing_key(priv))
    with pytest.raises(AisecInputError, match="public key, not a private key"):
        signing.load_signing_key(pub)


def test_signature_format_follows_the_key(ec_keys: tuple[Path, Path], tmp_path: Path) -> None:
    ec = signing.load_signing_key(ec_keys[0])
    ed_priv, ed_pub = tmp_path / "ed.key", tmp_path / "ed.pub"
    signing.generate_ed25519_keypair(ed_priv, ed_pub)
    ed = signing.load_signing_key(ed_priv)
    assert resolve_signature_format("auto", ec) == "model-signing"
    assert resolve_signature_format("auto", ed) == "aisec"
    assert resolve_signature_format("auto", None) == "aisec"
    with pytest.raises(AisecInputError, match="needs an ECDSA"):
        resolve_signature_format("model-signing", ed)
    with pytest.raises(AisecInputError, match="signs in the model-signing format"):
        resolve_signature_format("aisec", ec)
    with pytest.raises(AisecInputError, match="signature_format must be one of"):
        resolve_signature_format("cosign", ec)
    assert default_bundle_path("models/m1/") == "models/m1.sig"
