"""DSSE (Dead Simple Signing Envelope) v1: sign and verify in-toto statements with an Ed25519 or ECDSA key.

An envelope is JSON::

    {"payloadType": "application/vnd.in-toto+json", "payload": "<base64 statement bytes>",
     "signatures": [{"keyid": "<key id>", "sig": "<base64 signature>"}]}

The signature covers the pre-authentication encoding (PAE) ``"DSSEv1" SP len(type) SP type SP
len(payload) SP payload`` (lengths in ASCII decimal), so the payload type is signed too: an envelope
whose ``payloadType`` was swapped, or whose type/payload boundary was moved, does not verify. Ed25519
signatures are the raw 64 bytes; ECDSA signatures are DER over SHA-256 (P-256), SHA-384 (P-384) or
SHA-512 (P-521), as securesystemslib and sigstore write them. HMAC secrets cannot sign envelopes
(nobody outside could verify them).

What a PASS means: one signature in the envelope is valid, under the configured public key, over the
PAE of exactly the envelope's payload type (which must be the expected one) and payload; only then
is the payload parsed and returned.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from airflow_aisec.exceptions import AisecInputError

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_ENVELOPE_BYTES = 16 * 2**20
#: Key algorithms that can sign envelopes.
DSSE_ALGORITHMS = ("ed25519", "ecdsa")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _ecdsa_hash(key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes

    size = key.curve.key_size
    return hashes.SHA256() if size <= 256 else hashes.SHA384() if size <= 384 else hashes.SHA512()


def sign_envelope(payload: bytes, key: Any, payload_type: str = INTOTO_PAYLOAD_TYPE) -> dict[str, Any]:
    """Sign ``payload`` into a DSSE envelope with ``key`` (:class:`~airflow_aisec.core.signing.SigningKey`)."""
    if key.algorithm not in DSSE_ALGORITHMS:
        raise AisecInputError(
            f"a DSSE envelope is signed with an Ed25519 or ECDSA key, not {key.algorithm} "
            "(an HMAC secret cannot be verified by anyone else)"
        )
    message = pae(payload_type, payload)
    if key.algorithm == "ed25519":
        sig = key._material.sign(message)
    else:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        private: Any = serialization.load_pem_private_key(key._material, password=None)
        sig = private.sign(message, ec.ECDSA(_ecdsa_hash(private)))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(sig).decode("ascii")}],
    }


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise AisecInputError(f"DSSE envelope: {what} must be a base64 string")
    try:  # standard or URL-safe alphabet, as the DSSE spec allows
        return base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise AisecInputError(f"DSSE envelope: {what} is not valid base64") from None


def parse_envelope(data: bytes | str, source: str = "DSSE envelope") -> dict[str, Any]:
    """Parse an untrusted envelope (strict JSON, the three DSSE fields); ``AisecInputError`` if malformed."""
    from airflow_aisec.utils import strictjson as sj

    doc = sj.loads(data, source=source, max_bytes=MAX_ENVELOPE_BYTES)
    if not isinstance(doc, dict):
        raise AisecInputError(f"{source} is not a JSON object")
    if not isinstance(doc.get("payloadType"), str) or "payload" not in doc:
        raise AisecInputError(f"{source} is not a DSSE envelope (payloadType and payload are required)")
    signatures = doc.get("signatures")
    if not isinstance(signatures, list):
        raise AisecInputError(f"{source}: signatures must be a list")
    if len(signatures) > 16:
        raise AisecInputError(f"{source}: {len(signatures)} signatures is too many")
    for s in signatures:
        if not isinstance(s, dict) or not isinstance(s.get("sig"), str):
            raise AisecInputError(f"{source}: every signature needs a base64 'sig' string")
    return dict(doc)


def _verify_one(message: bytes, sig: bytes, key: Any) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        if key.algorithm == "ed25519":
            if not isinstance(key._material, Ed25519PublicKey) or len(sig) != 64:
                return False
            key._material.verify(sig, message)
            return True
        public: Any = serialization.load_pem_public_key(key._material)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            return False
        public.verify(sig, message, ec.ECDSA(_ecdsa_hash(public)))
        return True
    except (InvalidSignature, ValueError):
        return False


def verify_envelope(
    envelope: dict[str, Any], key: Any, payload_type: str = INTOTO_PAYLOAD_TYPE
) -> tuple[bool, str, bytes | None]:
    """Verify ``envelope`` (from :func:`parse_envelope`) with ``key``; return ``(ok, reason, payload)``.

    ``payload`` is returned only when ``ok``. An unsigned envelope, a payload type other than
    ``payload_type``, or no valid signature under ``key`` is ``(False, reason, None)``.
    """
    if key.algorithm not in DSSE_ALGORITHMS:
        raise AisecInputError(f"a DSSE envelope verifies with an Ed25519 or ECDSA public key, not {key.algorithm}")
    if envelope.get("payloadType") != payload_type:
        got = str(envelope.get("payloadType"))[:60]
        return False, f"payloadType is {got!r}, expected {payload_type!r}", None
    signatures = envelope.get("signatures") or []
    if not signatures:
        return False, "the envelope is not signed", None
    payload = _b64(envelope.get("payload"), "payload")
    message = pae(payload_type, payload)
    for entry in signatures:
        if _verify_one(message, _b64(entry.get("sig"), "sig"), key):
            return True, f"DSSE signature valid (key {key.key_id})", payload
    return False, f"no signature in the envelope verifies with key {key.key_id}", None


def verify_statement_envelope(data: bytes | str, key: Any, source: str = "DSSE envelope") -> dict[str, Any]:
    """Parse, verify and decode an in-toto statement envelope; ``AisecInputError`` when it does not verify."""
    ok, reason, payload = verify_envelope(parse_envelope(data, source), key)
    if not ok or payload is None:
        raise AisecInputError(f"{source}: {reason}")
    try:
        statement = json.loads(payload)
    except ValueError:
        raise AisecInputError(f"{source}: the signed payload is not JSON") from None
    if not isinstance(statement, dict):
        raise AisecInputError(f"{source}: the signed payload is not a JSON object")
    return statement
