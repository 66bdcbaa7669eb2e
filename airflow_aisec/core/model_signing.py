"""OpenSSF model signing: sign and verify a model file or directory in the ``model-signing`` format.

The bundle is a Sigstore bundle holding a DSSE envelope over an in-toto statement that lists every
file of the model with its digest (the format written and read by the OpenSSF ``model-signing``
library and its ``model_signing sign`` / ``model_signing verify`` commands). This module drives that
library (the ``signing`` extra); it is imported lazily, never at parse time.

Key-based signing uses an ECDSA key on P-256, P-384 or P-521 (the curves that format supports; an
Ed25519 or HMAC key cannot make such a bundle). Certificate-based signing (a private key plus its
certificate chain) works offline. Keyless Sigstore signing needs network access to Sigstore's public
services and an OpenID Connect identity: without them it fails with an explicit error.

What a PASS means: the bundle's signature verifies with the given public key (or certificate chain),
and every file under the model path (except the paths the signer excluded, recorded in the signed
bundle, and git metadata such as ``.git``/``.gitignore`` which the format never covers) hashes to
the digest the bundle lists, with no file added or removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

FORMAT = "model-signing"
#: Curves the model-signing format accepts for key-based signing.
EC_CURVES = ("secp256r1", "secp384r1", "secp521r1")
MAX_BUNDLE_BYTES = 64 * 2**20


def _library() -> Any:
    try:
        import model_signing
    except ImportError as exc:  # the optional extra is missing
        raise AisecInputError(
            f"the model-signing format needs the `signing` extra (pip install 'airflow-aisec[signing]'): {exc}"
        ) from None
    return model_signing


def default_bundle_path(path: Any) -> str:
    """``<artifact>.sig``: the bundle path next to the artifact (the ``model_signing`` CLI's convention)."""
    return os.fspath(path).rstrip("/") + ".sig"


def is_ecdsa_pem(data: bytes) -> bool:
    """True when ``data`` is an (unencrypted) PEM private or public key on one of :data:`EC_CURVES`."""
    if b"-----BEGIN" not in data:
        return False
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key: Any
    try:
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and key.curve.name in EC_CURVES


def ecdsa_public_pem(private_pem: bytes) -> bytes:
    """The public half (PEM) of an ECDSA private key PEM."""
    from cryptography.hazmat.primitives import serialization

    key: Any = serialization.load_pem_private_key(private_pem, password=None)
    return bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@contextmanager
def _key_file(pem: bytes) -> Iterator[Path]:
    """The library reads keys from paths: hand it a private 0600 temporary file, removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="aisec-key-", suffix=".pem")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _hashing_config(ignore_paths: tuple[str, ...]) -> Any:
    ms = _library()
    return ms.hashing.Config().set_ignored_paths(paths=list(ignore_paths), ignore_git_paths=True)


def _check_model_path(model_path: Any) -> Path:
    path = Path(os.fspath(model_path))
    if not path.exists():
        raise AisecUndecidableError(f"model path not found: {path}")
    if path.is_symlink():
        raise AisecInputError(f"model path is a symbolic link: {path}")
    return path


def sign_model(
    model_path: Any,
    bundle_path: Any,
    *,
    private_key_pem: bytes | None = None,
    certificate_chain: tuple[Any, ...] = (),
    signing_certificate: Any = None,
    keyless: bool = False,
    identity_token: str | None = None,
    ignore_paths: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Sign ``model_path`` into the bundle ``bundle_path`` (written atomically); return its details.

    :param private_key_pem: ECDSA (P-256/384/521) private key PEM (key-based, or certificate-based
        together with ``signing_certificate``).
    :param signing_certificate: the key's certificate (path), for certificate-based signing.
    :param certificate_chain: certificate chain paths for certificate-based signing.
    :param keyless: sign with Sigstore (Fulcio + Rekor): needs the network and an OIDC identity.
    :param identity_token: an explicit OIDC token for keyless signing.
    :param ignore_paths: paths under ``model_path`` to leave out (recorded in the signed bundle).
    """
    ms = _library()
    path = _check_model_path(model_path)
    if keyless == (private_key_pem is not None):
        raise AisecInputError("give exactly one of a private key or keyless=True for model signing")
    from airflow_aisec.core.integrity import refuse_output_inside

    refuse_output_inside(bundle_path, path, "model-signing bundle")
    config = ms.signing.Config().set_hashing_config(_hashing_config(ignore_paths))
    tmp = Path(os.fspath(bundle_path) + f".tmp-{os.getpid()}")
    details: dict[str, Any] = {"signature_format": FORMAT, "bundle_path": os.fspath(bundle_path)}
    try:
        if keyless:
            details["signer"] = "sigstore-keyless"
            if not identity_token:  # never start an interactive browser / out-of-band OAuth flow in a task
                raise AisecInputError(
                    "keyless Sigstore signing needs an OpenID Connect identity token (identity_token, or the "
                    "SIGSTORE_ID_TOKEN environment variable for the CLI)"
                )
            try:
                config.use_sigstore_signer(identity_token=identity_token)
                config.sign(path, tmp)
            except Exception as exc:  # any network/OIDC failure: the library raises many types
                raise AisecUndecidableError(
                    "keyless Sigstore signing needs network access to Sigstore (Fulcio, Rekor) and a valid "
                    f"OpenID Connect identity token; it failed: {type(exc).__name__}: {_clip(str(exc), 200)}"
                ) from None
        else:
            assert private_key_pem is not None
            if not is_ecdsa_pem(private_key_pem) or b"PRIVATE KEY" not in private_key_pem:
                raise AisecInputError(
                    "the model-signing format signs with an unencrypted ECDSA private key on P-256, P-384 or "
                    "P-521 (Ed25519 and HMAC keys cannot make its bundles); create one with "
                    "`aisec keygen --type ecdsa-p256`"
                )
            with _key_file(private_key_pem) as key_path:
                if signing_certificate is not None:
                    details["signer"] = "certificate"
                    config.use_certificate_signer(
                        private_key=key_path,
                        signing_certificate=Path(os.fspath(signing_certificate)),
                        certificate_chain=[Path(os.fspath(c)) for c in certificate_chain],
                    )
                else:
                    details["signer"] = "ecdsa-key"
                    config.use_elliptic_key_signer(private_key=key_path)
                config.sign(path, tmp)
        os.replace(tmp, bundle_path)
    finally:
        tmp.unlink(missing_ok=True)
    return details


def verify_model(
    model_path: Any,
    bundle_path: Any,
    *,
    public_key_pem: bytes | None = None,
    certificate_chain: tuple[Any, ...] = (),
) -> tuple[bool, str]:
    """Verify ``model_path`` against the model-signing bundle ``bundle_path``; return ``(ok, reason)``.

    A wrong key, a tampered bundle, or a changed / added / removed file is ``(False, reason)``. A
    missing model or bundle raises :class:`AisecUndecidableError` (nothing to decide on); a key that is
    not ECDSA raises :class:`AisecInputError`.
    """
    ms = _library()
    path = _check_model_path(model_path)
    bundle = Path(os.fspath(bundle_path))
    if not bundle.is_file():
        raise AisecUndecidableError(f"model-signing bundle not found: {bundle}")
    if bundle.stat().st_size > MAX_BUNDLE_BYTES:
        return False, f"model-signing bundle is over {MAX_BUNDLE_BYTES} bytes"
    if (public_key_pem is None) == (not certificate_chain):
        raise AisecInputError(
            "give exactly one of a public key or a certificate chain to verify a model-signing bundle"
        )
    config = ms.verifying.Config()
    try:
        if public_key_pem is not None:
            if not is_ecdsa_pem(public_key_pem):
                raise AisecInputError(
                    "model-signing bundles verify with an ECDSA public key on P-256, P-384 or P-521 (PEM)"
                )
            if b"PRIVATE KEY" in public_key_pem:
                public_key_pem = ecdsa_public_pem(public_key_pem)
            with _key_file(public_key_pem) as key_path:
                config.use_elliptic_key_verifier(public_key=key_path)
                config.verify(path, bundle)
        else:
            config.use_certificate_verifier(certificate_chain=[Path(os.fspath(c)) for c in certificate_chain])
            config.verify(path, bundle)
    except AisecInputError:
        raise
    except Exception as exc:  # the library reports every refusal as an exception of varying type
        return False, f"{type(exc).__name__}: {_clip(str(exc))}"
    return True, "model-signing bundle verified: signature valid and every file matches"


def bundle_subject_digest(bundle_path: Any) -> dict[str, str] | None:
    """The subject digest a model-signing bundle's signed statement names (read after it verified), or None."""
    import base64
    import json

    try:
        doc = json.loads(Path(os.fspath(bundle_path)).read_bytes()[:MAX_BUNDLE_BYTES])
        statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
        digest = statement["subject"][0]["digest"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    if not isinstance(digest, dict) or not digest:
        return None
    return {str(k): str(v) for k, v in digest.items()}


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
