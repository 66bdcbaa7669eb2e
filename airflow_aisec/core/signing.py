"""Detached signatures over manifest bytes: Ed25519 (public-key) and HMAC-SHA256 (shared secret).

A signature document is small JSON written next to the manifest (``<manifest>.sig``)::

    {"schema": "aisec.signature/v1", "algorithm": "ed25519", "key_id": "…16 hex…",
     "signed_sha256": "<sha256 of the signed bytes>", "signature": "<base64>"}

The exact manifest bytes are signed and verified *before* the manifest is parsed. Key material is
held in :class:`SigningKey`/:class:`VerifyKey` objects whose ``repr`` never shows it; nothing here
logs keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import AisecInputError

SIGNATURE_SCHEMA = "aisec.signature/v1"
SIGN_ALGORITHMS = ("ed25519", "hmac-sha256")


def _key_id(material: bytes, algorithm: str) -> str:
    prefix = b"aisec-hmac-key-id:" if algorithm == "hmac-sha256" else b""
    return hashlib.sha256(prefix + material).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    """A private signing key. Build with :func:`load_signing_key`."""

    algorithm: str
    key_id: str
    _material: Any = field(repr=False)  # Ed25519PrivateKey or HMAC secret bytes


@dataclass(frozen=True)
class VerifyKey:
    """A verification key (Ed25519 public key or HMAC secret). Build with :func:`load_verify_key`."""

    algorithm: str
    key_id: str
    _material: Any = field(repr=False)


def _read_key_bytes(source: str | bytes | Path, what: str) -> bytes:
    if isinstance(source, bytes):
        return source
    text = str(source)
    if "-----BEGIN" in text:
        return text.encode()
    path = Path(text)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AisecInputError(f"{what} file not found: {path}") from None
    except OSError as exc:
        raise AisecInputError(f"{what} file is not readable: {path} ({exc.strerror})") from None


def load_signing_key(source: str | bytes | Path, algorithm: str | None = None) -> SigningKey:
    """Load a signing key from a PEM file/text (Ed25519) or a secret (HMAC-SHA256).

    :param source: path of a key file, PEM text, or raw secret bytes.
    :param algorithm: ``ed25519`` or ``hmac-sha256``; default: ``ed25519`` for PEM, else HMAC.
    """
    data = _read_key_bytes(source, "signing key")
    algorithm = (algorithm or ("ed25519" if b"-----BEGIN" in data else "hmac-sha256")).lower()
    if algorithm == "ed25519":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise AisecInputError(f"signing key is not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise AisecInputError(f"signing key is {type(key).__name__}, not Ed25519")
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return SigningKey("ed25519", _key_id(raw, "ed25519"), key)
    if algorithm == "hmac-sha256":
        secret = data.strip()
        if len(secret) < 16:
            raise AisecInputError("HMAC secret is too short (at least 16 bytes)")
        return SigningKey("hmac-sha256", _key_id(secret, algorithm), secret)
    raise AisecInputError(f"unknown signing algorithm {algorithm!r}; choose one of {SIGN_ALGORITHMS}")


def load_verify_key(source: str | bytes | Path, algorithm: str | None = None) -> VerifyKey:
    """Load a verification key: an Ed25519 public (or private) PEM, or an HMAC secret."""
    data = _read_key_bytes(source, "verification key")
    algorithm = (algorithm or ("ed25519" if b"-----BEGIN" in data else "hmac-sha256")).lower()
    if algorithm == "ed25519":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

        key: Any
        try:
            if b"PRIVATE KEY" in data:
                private = serialization.load_pem_private_key(data, password=None)
                if not isinstance(private, Ed25519PrivateKey):
                    raise AisecInputError(f"verification key is {type(private).__name__}, not Ed25519")
                key = private.public_key()
            else:
                key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise AisecInputError(f"verification key is not a PEM key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise AisecInputError(f"verification key is {type(key).__name__}, not Ed25519")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return VerifyKey("ed25519", _key_id(raw, "ed25519"), key)
    signing = load_signing_key(data, "hmac-sha256") if algorithm == "hmac-sha256" else None
    if signing is None:
        raise AisecInputError(f"unknown signing algorithm {algorithm!r}; choose one of {SIGN_ALGORITHMS}")
    return VerifyKey(signing.algorithm, signing.key_id, signing._material)


def generate_ed25519_keypair(private_path: str | Path, public_path: str | Path, *, overwrite: bool = False) -> str:
    """Write a new Ed25519 key pair as PEM files (private key mode 0600 from its first byte); return the key id.

    An existing key file is never replaced unless ``overwrite`` is true (a lost signing key cannot be
    recovered), and neither path may be a symlink, a directory or a special file.
    """
    from airflow_aisec.utils.fs import check_output_path

    if os.path.abspath(private_path) == os.path.abspath(public_path):
        raise AisecInputError(f"keygen: private and public key paths are the same file ({private_path})")
    for path in (private_path, public_path):
        check_output_path(path, exclusive=not overwrite)

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from airflow_aisec.utils.fs import write_bytes_atomic

    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_bytes_atomic(private_path, private_pem, private=True, exclusive=not overwrite)
    write_bytes_atomic(public_path, public_pem, exclusive=not overwrite)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _key_id(raw, "ed25519")


def sign(data: bytes, key: SigningKey) -> dict[str, Any]:
    """Sign ``data``; return the signature document."""
    if key.algorithm == "ed25519":
        signature = key._material.sign(data)
    else:
        signature = hmac.new(key._material, data, hashlib.sha256).digest()
    return {
        "schema": SIGNATURE_SCHEMA,
        "algorithm": key.algorithm,
        "key_id": key.key_id,
        "signed_sha256": hashlib.sha256(data).hexdigest(),
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def parse_signature(data: bytes | str, source: str = "signature") -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise AisecInputError(f"{source} is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("schema") != SIGNATURE_SCHEMA:
        raise AisecInputError(f"{source} is not an {SIGNATURE_SCHEMA} document")
    for key in ("algorithm", "key_id", "signature"):
        if not isinstance(doc.get(key), str):
            raise AisecInputError(f"{source} is missing {key!r}")
    return doc


def verify(data: bytes, signature_doc: dict[str, Any], key: VerifyKey) -> tuple[bool, str]:
    """Check ``signature_doc`` over ``data`` with ``key``; return ``(ok, reason)``. Never raises on a bad signature."""
    if signature_doc.get("algorithm") != key.algorithm:
        return False, f"signature algorithm {signature_doc.get('algorithm')!r} does not match the key ({key.algorithm})"
    if signature_doc.get("key_id") != key.key_id:
        return False, f"signature was made with key {signature_doc.get('key_id')}, not {key.key_id}"
    try:
        raw = base64.b64decode(signature_doc["signature"], validate=True)
    except (ValueError, TypeError):
        return False, "signature is not valid base64"
    if key.algorithm == "ed25519":
        from cryptography.exceptions import InvalidSignature

        try:
            key._material.verify(raw, data)
        except InvalidSignature:
            return False, "Ed25519 signature does not match the manifest bytes"
        return True, "Ed25519 signature valid"
    expected = hmac.new(key._material, data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, raw):
        return False, "HMAC-SHA256 signature does not match the manifest bytes"
    return True, "HMAC-SHA256 signature valid"
