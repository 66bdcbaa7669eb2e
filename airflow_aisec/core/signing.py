"""Detached signatures over manifest bytes: Ed25519 (public-key) and HMAC-SHA256 (shared secret).

A signature document is small JSON written next to the manifest (``<manifest>.sig``)::

    {"schema": "aisec.signature/v1", "algorithm": "ed25519", "key_id": "…16 hex…",
     "signed_sha256": "<sha256 of the signed bytes>", "signature": "<base64>"}

The exact manifest bytes are signed and verified *before* the manifest is parsed. Key material is
held in :class:`SigningKey`/:class:`VerifyKey` objects whose ``repr`` never shows it; nothing here
logs keys.

Key types are bound to algorithms (no algorithm confusion): PEM material is only ever an Ed25519 key,
and an HMAC secret may not be PEM, SSH, JWK or DER key material (a *public* key used as an HMAC
secret would let anyone forge signatures), nor short or low-entropy. A signature document is
untrusted strict JSON; its algorithm must be the configured key's algorithm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import AisecInputError

SIGNATURE_SCHEMA = "aisec.signature/v1"
SIGN_ALGORITHMS = ("ed25519", "hmac-sha256")
#: ECDSA keys (P-256/384/521) sign only in the OpenSSF model-signing format (see core/model_signing.py).
ECDSA = "ecdsa"
#: Shortest HMAC secret accepted (bytes) and the least estimated entropy (bits).
HMAC_MIN_BYTES = 16
HMAC_MIN_ENTROPY_BITS = 64
#: Raw signature lengths per algorithm.
SIGNATURE_BYTES = {"ed25519": 64, "hmac-sha256": 32}
MAX_KEY_FILE_BYTES = 64 * 1024
#: DER object identifiers of public-key algorithms (Ed25519, X25519, Ed448, RSA, EC, DSA).
_KEY_OIDS = (
    bytes.fromhex("06032b6570"),
    bytes.fromhex("06032b656e"),
    bytes.fromhex("06032b6571"),
    bytes.fromhex("06092a864886f70d010101"),
    bytes.fromhex("06072a8648ce3d0201"),
    bytes.fromhex("06072a8648ce380401"),
)
_SSH_PREFIXES = (b"ssh-", b"ecdsa-sha2-", b"sk-ssh-", b"sk-ecdsa-", b"rsa-sha2-")


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
    from airflow_aisec.core.hashing import read_evidence
    from airflow_aisec.exceptions import AisecUndecidableError

    path = Path(text)
    if not path.exists():
        raise AisecInputError(f"{what} file not found: {path}")
    try:  # never blocks on a FIFO, bounded size
        return read_evidence(path, f"{what} file", limit=MAX_KEY_FILE_BYTES)
    except AisecUndecidableError as exc:
        raise AisecInputError(str(exc)) from None


def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN" in data


#: An SSH public key line: the key type then its base64 blob, anywhere in the text (authorized_keys
#: options, known_hosts host names or a comment may surround it).
_SSH_LINE = re.compile(rb"(?:^|[\s,\"])(?:ssh-|ecdsa-sha2-|sk-ssh-|sk-ecdsa-|rsa-sha2-)[A-Za-z0-9@._-]*\s+AAAA")
#: The SSH wire encoding of a key: a 4-byte length then the key type name.
_SSH_WIRE = re.compile(rb"\x00\x00\x00[\x07-\x40](?:ssh-|ecdsa-sha2-|sk-ssh-|sk-ecdsa-|rsa-sha2-)")
_JWK_FIELDS = re.compile(rb'"(kty|crv|x|n|e)"\s*:')


def _text_views(secret: bytes) -> list[bytes]:
    """``secret`` and, when it is UTF-16/32 text (a BOM, or NUL bytes), that text re-encoded as UTF-8."""
    views = [secret]
    if secret.startswith(b"\xef\xbb\xbf"):
        views.append(secret[3:])
    if b"\x00" in secret or secret[:2] in (b"\xff\xfe", b"\xfe\xff"):
        for encoding in ("utf-32", "utf-32-le", "utf-32-be", "utf-16", "utf-16-le", "utf-16-be"):
            try:
                views.append(secret.decode(encoding).lstrip("\ufeff").strip().encode("utf-8"))
            except (UnicodeDecodeError, UnicodeEncodeError):
                continue
    return views


def _is_jwk(text: bytes) -> bool:
    if b"{" not in text:
        return False
    if _JWK_FIELDS.search(text):
        return True
    if b"\\u" not in text:  # key names could only hide behind JSON escapes
        return False
    from airflow_aisec.utils import strictjson as sj

    try:
        doc = sj.loads(text, source="HMAC secret")
    except AisecInputError:
        return False
    stack = [doc]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            if {"kty", "crv", "x", "n", "e"} & set(obj):
                return True
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)
    return False


def _looks_like_key_material(secret: bytes) -> str | None:
    """What kind of public/private key material ``secret`` is, or ``None`` (see :func:`check_hmac_secret`).

    Also recognised: the same material as UTF-16/32 text (a PowerShell redirect), an SSH key line
    anywhere in the text (``authorized_keys`` options, ``known_hosts``), the bare base64 or hex of an
    SSH key blob, and JWK field names written as JSON escapes.
    """
    for view in _text_views(secret):
        kind = _key_material_kind(view)
        if kind is not None:
            return kind
    return None


def _key_material_kind(secret: bytes) -> str | None:
    if _is_pem(secret) or b"-----END" in secret:
        return "PEM key material"
    if secret.startswith(_SSH_PREFIXES) or b"OPENSSH" in secret or b"SSH2 PUBLIC KEY" in secret:
        return "an SSH key"
    if _SSH_LINE.search(secret):
        return "an SSH key"
    if _is_jwk(secret):
        return "a JWK key"
    candidates = [secret]
    compact = re.sub(rb"\s+", b"", secret)
    tokens = [compact, *re.split(rb"[\s,]+", secret.strip())]
    for token in dict.fromkeys(tokens):
        if re.fullmatch(rb"[A-Za-z0-9+/=_-]{16,}", token):
            for decoder in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    candidates.append(decoder(token + b"=" * (-len(token) % 4)))
                except ValueError:
                    pass
        if re.fullmatch(rb"(?:[0-9a-fA-F]{2})+", token):
            candidates.append(bytes.fromhex(token.decode("ascii")))
    for blob in candidates:
        if blob[:1] == b"\x30" and any(oid in blob for oid in _KEY_OIDS):
            return "DER-encoded key material"
        if _SSH_WIRE.match(blob):
            return "an SSH key"
    return None


def _entropy_bits(secret: bytes) -> float:
    counts: dict[int, int] = {}
    for b in secret:
        counts[b] = counts.get(b, 0) + 1
    n = len(secret)
    per_byte = -sum(c / n * math.log2(c / n) for c in counts.values())
    return per_byte * n


def _estimated_bits(secret: bytes) -> float:
    """The least of three estimates: the byte entropy of ``secret``, of its shortest repeating unit
    (``changeme-changeme-…``), and of its successive differences plus one byte (``abcdef…``, ``0123…``)."""
    estimate = _entropy_bits(secret)
    n = len(secret)
    for period in range(1, n // 2 + 1):
        if secret[period:] == secret[:-period]:
            estimate = min(estimate, _entropy_bits(secret[:period]))
            break
    if n > 1:
        deltas = bytes((b - a) % 256 for a, b in zip(secret, secret[1:], strict=False))
        estimate = min(estimate, _entropy_bits(deltas) + 8)
    return estimate


def check_hmac_secret(secret: bytes) -> bytes:
    """Refuse an HMAC secret that is key material, too short, or obviously low-entropy; return it.

    Refused: PEM blocks of any kind (public keys, certificates, private keys), SSH keys, JWK JSON,
    DER key structures (raw, base64 or hex), fewer than :data:`HMAC_MIN_BYTES` bytes, fewer than 8
    distinct byte values, or an estimated entropy (length times the empirical per-byte Shannon
    entropy, also of the shortest repeating unit and of the successive byte differences, so runs like
    ``abcdef…`` and repetitions like ``changeme-changeme-…`` count for little) under
    :data:`HMAC_MIN_ENTROPY_BITS` bits. The message never contains the secret.
    """
    kind = _looks_like_key_material(secret)
    if kind is not None:
        raise AisecInputError(
            f"HMAC secret is {kind}, not a shared secret: a public key cannot be an HMAC secret "
            "(use algorithm ed25519 with a public key, or a random secret of 32+ bytes)"
        )
    if len(secret) < HMAC_MIN_BYTES:
        raise AisecInputError(f"HMAC secret is too short (at least {HMAC_MIN_BYTES} bytes)")
    if len(set(secret)) < 8 or _estimated_bits(secret) < HMAC_MIN_ENTROPY_BITS:
        raise AisecInputError(
            f"HMAC secret is low-entropy (estimated under {HMAC_MIN_ENTROPY_BITS} bits); use 32+ random bytes"
        )
    return secret


def _algorithm_for(data: bytes, algorithm: str | None, what: str) -> str:
    """Bind key material to an algorithm: PEM is Ed25519, anything else an HMAC secret."""
    pem = _is_pem(data)
    chosen = (algorithm or ("ed25519" if pem else "hmac-sha256")).lower()
    if chosen not in SIGN_ALGORITHMS:
        raise AisecInputError(f"unknown signing algorithm {chosen[:40]!r}; choose one of {SIGN_ALGORITHMS}")
    if chosen == "ed25519" and not pem:
        raise AisecInputError(f"{what} for ed25519 must be a PEM key, not a raw secret")
    return chosen


def _ecdsa_key(data: bytes, algorithm: str | None, *, private: bool) -> tuple[str, bytes] | None:
    """``(key_id, PEM)`` when ``data`` is an ECDSA key (P-256/384/521) for the model-signing format, else None.

    The PEM kept is the private key (signing) or the public key (verification). An ECDSA key only
    signs in the model-signing format; :func:`sign` refuses it.
    """
    if algorithm not in (None, ECDSA) or not _is_pem(data):
        return None
    from airflow_aisec.core.model_signing import ecdsa_public_pem, is_ecdsa_pem

    if not is_ecdsa_pem(data):
        if algorithm == ECDSA:
            raise AisecInputError("key is not an unencrypted ECDSA PEM key on P-256, P-384 or P-521")
        return None
    if private and b"PRIVATE KEY" not in data:
        raise AisecInputError("signing key is an ECDSA public key, not a private key")
    public = ecdsa_public_pem(data) if b"PRIVATE KEY" in data else data
    from cryptography.hazmat.primitives import serialization

    der = serialization.load_pem_public_key(public).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _key_id(der, ECDSA), (data if private else public)


def load_signing_key(source: str | bytes | Path, algorithm: str | None = None) -> SigningKey:
    """Load a signing key from a PEM file/text (Ed25519) or a secret (HMAC-SHA256).

    :param source: path of a key file, PEM text, or raw secret bytes.
    :param algorithm: ``ed25519`` or ``hmac-sha256``; default: ``ed25519`` for PEM, else HMAC.
    """
    data = _read_key_bytes(source, "signing key")
    ecdsa = _ecdsa_key(data, algorithm, private=True)
    if ecdsa is not None:
        return SigningKey(ECDSA, ecdsa[0], ecdsa[1])
    algorithm = _algorithm_for(data, algorithm, "signing key")
    if algorithm == "ed25519":
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise AisecInputError(f"signing key is not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise AisecInputError(f"signing key is {type(key).__name__}, not Ed25519")
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return SigningKey("ed25519", _key_id(raw, "ed25519"), key)
    secret = check_hmac_secret(data.strip())
    return SigningKey("hmac-sha256", _key_id(secret, algorithm), secret)


def load_verify_key(source: str | bytes | Path, algorithm: str | None = None) -> VerifyKey:
    """Load a verification key: an Ed25519 public (or private) PEM, or an HMAC secret."""
    data = _read_key_bytes(source, "verification key")
    ecdsa = _ecdsa_key(data, algorithm, private=False)
    if ecdsa is not None:
        return VerifyKey(ECDSA, ecdsa[0], ecdsa[1])
    algorithm = _algorithm_for(data, algorithm, "verification key")
    if algorithm == "ed25519":
        from cryptography.exceptions import UnsupportedAlgorithm
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
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise AisecInputError(f"verification key is not a PEM key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise AisecInputError(f"verification key is {type(key).__name__}, not Ed25519")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return VerifyKey("ed25519", _key_id(raw, "ed25519"), key)
    signing = load_signing_key(data, "hmac-sha256")
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


def generate_ecdsa_keypair(private_path: str | Path, public_path: str | Path, *, overwrite: bool = False) -> str:
    """Write a new ECDSA P-256 key pair (PEM; the model-signing format's key type); return the key id."""
    from airflow_aisec.utils.fs import check_output_path, write_bytes_atomic

    if os.path.abspath(private_path) == os.path.abspath(public_path):
        raise AisecInputError(f"keygen: private and public key paths are the same file ({private_path})")
    for path in (private_path, public_path):
        check_output_path(path, exclusive=not overwrite)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_bytes_atomic(private_path, private_pem, private=True, exclusive=not overwrite)
    write_bytes_atomic(public_path, public_pem, exclusive=not overwrite)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _key_id(der, ECDSA)


def sign(data: bytes, key: SigningKey) -> dict[str, Any]:
    """Sign ``data``; return the signature document."""
    if key.algorithm not in SIGN_ALGORITHMS:
        raise AisecInputError(
            f"a {key.algorithm} key signs in the model-signing format only, not in {SIGNATURE_SCHEMA}"
        )
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
    """Parse an untrusted signature document (strict JSON, exact fields and types); ``AisecInputError`` if malformed."""
    from airflow_aisec.utils import strictjson as sj

    doc = sj.loads(data, source=source, max_bytes=MAX_KEY_FILE_BYTES)
    if not isinstance(doc, dict) or doc.get("schema") != SIGNATURE_SCHEMA:
        raise AisecInputError(f"{source} is not an {SIGNATURE_SCHEMA} document")
    for key in ("algorithm", "key_id", "signature"):
        if not isinstance(doc.get(key), str):
            raise AisecInputError(f"{source} is missing {key!r} (or it is not a string)")
    extra = set(doc) - {"schema", "algorithm", "key_id", "signed_sha256", "signature"}
    if extra:
        raise AisecInputError(f"{source}: unexpected field(s) {sorted(extra)[:5]}")
    if doc["algorithm"] not in SIGN_ALGORITHMS:
        raise AisecInputError(f"{source}: unknown signature algorithm {doc['algorithm'][:40]!r}")
    if not re.fullmatch(r"[0-9a-f]{16}", doc["key_id"]):
        raise AisecInputError(f"{source}: key_id must be 16 lowercase hex digits")
    signed = sj.get_str(doc, "signed_sha256", source, None)
    if signed is not None and not re.fullmatch(r"[0-9a-f]{64}", signed):
        raise AisecInputError(f"{source}: signed_sha256 must be 64 lowercase hex digits")
    if len(doc["signature"]) > 256:
        raise AisecInputError(f"{source}: signature of {len(doc['signature'])} characters is too long")
    return dict(doc)


def verify(data: bytes, signature_doc: dict[str, Any], key: VerifyKey) -> tuple[bool, str]:
    """Check ``signature_doc`` over ``data`` with ``key``; return ``(ok, reason)``. Never raises on a bad signature.

    The document's algorithm must be the key's algorithm (an HMAC document never verifies with an
    Ed25519 key and vice versa), the key ids must match, and the signature must have the
    algorithm's length.
    """
    if key.algorithm not in SIGN_ALGORITHMS:
        return False, f"key algorithm {key.algorithm!r} is not supported"
    if signature_doc.get("algorithm") != key.algorithm:
        return (
            False,
            f"signature algorithm {str(signature_doc.get('algorithm'))[:40]!r} does not match the key ({key.algorithm})",
        )
    if signature_doc.get("key_id") != key.key_id:
        return False, f"signature was made with key {str(signature_doc.get('key_id'))[:20]}, not {key.key_id}"
    signed = signature_doc.get("signed_sha256")
    if signed is not None and not hmac.compare_digest(str(signed), hashlib.sha256(data).hexdigest()):
        return False, "signature does not match: it was made over different bytes (signed_sha256 differs)"
    try:
        raw = base64.b64decode(str(signature_doc["signature"]), validate=True)
    except (ValueError, TypeError):
        return False, "signature is not valid base64"
    if len(raw) != SIGNATURE_BYTES[key.algorithm]:
        return (
            False,
            f"signature has {len(raw)} bytes; {key.algorithm} signatures have {SIGNATURE_BYTES[key.algorithm]}",
        )
    if key.algorithm == "ed25519":
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        if not isinstance(key._material, Ed25519PublicKey):
            return False, "Ed25519 verification needs an Ed25519 public key"
        try:
            key._material.verify(raw, data)
        except InvalidSignature:
            return False, "Ed25519 signature does not match the manifest bytes"
        return True, "Ed25519 signature valid"
    if not isinstance(key._material, bytes):
        return False, "HMAC verification needs a secret"
    expected = hmac.new(key._material, data, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, raw):
        return False, "HMAC-SHA256 signature does not match the manifest bytes"
    return True, "HMAC-SHA256 signature valid"
