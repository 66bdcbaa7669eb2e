"""Artifact hashing and integrity verification operators.

.. code-block:: python

    hash_model = ArtifactHashOperator(
        task_id="hash_model",
        path="/models/churn/v3",
        manifest_path="/models/churn/v3.manifest.json",
        signing_conn_id="aisec_signing_key_default",
        outlets=[Asset("aisec://models/churn")],
    )
    verify_model = ArtifactIntegrityOperator(
        task_id="verify_model",
        path="/models/churn/v3",
        manifest_path="/models/churn/v3.manifest.json",
        signing_conn_id="aisec_signing_key_default",
        require_signature=True,
    )
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.core.signing import SigningKey, VerifyKey


def resolve_path(path: str, conn_id: str | None) -> Any:
    """A local path string, or an ``ObjectStoragePath`` bound to ``conn_id`` (see :mod:`airflow_aisec.hooks.storage`)."""
    from airflow_aisec.hooks.storage import resolve_storage

    return resolve_storage(path, conn_id, what="artifact")


def _local_or_none(path: str | None) -> str | None:
    """Manifests and signatures are local files: ``file://`` stripped, object storage refused (named)."""
    from airflow_aisec.utils.uri import local_path

    return local_path(str(path)) if path else None


def resolve_signing_key(key_path: str | None, conn_id: str | None) -> SigningKey | None:
    if key_path and conn_id:
        raise AisecInputError("give signing_key_path or signing_conn_id, not both")
    if key_path:
        from airflow_aisec.core.signing import load_signing_key

        return load_signing_key(key_path)
    if conn_id:
        from airflow_aisec.hooks.signing import SigningKeyHook

        return SigningKeyHook(signing_conn_id=conn_id).get_signing_key()
    return None


def resolve_verify_key(key_path: str | None, conn_id: str | None) -> VerifyKey | None:
    if key_path and conn_id:
        raise AisecInputError("give public_key_path or signing_conn_id, not both")
    if key_path:
        from airflow_aisec.core.signing import load_verify_key

        return load_verify_key(key_path)
    if conn_id:
        from airflow_aisec.hooks.signing import SigningKeyHook

        return SigningKeyHook(signing_conn_id=conn_id).get_verify_key()
    return None


class ArtifactHashOperator(AisecBaseOperator):
    """Hash a file or directory, write its manifest atomically, optionally sign it, and report the digest.

    The report's ``details.digest`` is the artifact digest (file digest, or the directory's root digest).
    Every outlet asset gets an event whose extra carries ``digest``, ``algorithm``, ``files``, ``bytes``
    and the manifest location.

    :param path: file or directory; local path or object-storage URI (``s3://…``). (templated)
    :param manifest_path: where to write the ``aisec.manifest/v2`` manifest (a local file); default: none, or
        ``<path>.manifest.json`` when signing. (templated)
    :param algorithm: ``sha256`` (default), ``sha512``, ``blake2b``, ``blake3`` (extra ``blake3``).
    :param workers: parallel hashing threads (default: CPU count, at most 8).
    :param follow_symlinks: follow links that stay inside ``path`` (default: record links, never follow).
    :param signing_key_path: PEM private key (Ed25519) or HMAC secret file to sign the manifest with.
    :param signing_conn_id: ``aisec_signing_key`` connection holding the key (instead of a file).
    :param storage_conn_id: Airflow connection for an object-storage ``path`` (required for ``s3://`` …:
        credentials are never taken from the worker's environment). (templated)
    :param conn_id: older name of ``storage_conn_id`` (still accepted).
    """

    aisec_check = "integrity"
    lineage_inputs = ("path",)
    lineage_outputs = ("manifest_path",)
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "path",
        "manifest_path",
        "signing_key_path",
        "storage_conn_id",
    )

    def __init__(
        self,
        *,
        path: str,
        manifest_path: str | None = None,
        algorithm: str = "sha256",
        workers: int | None = None,
        follow_symlinks: bool = False,
        signing_key_path: str | None = None,
        signing_conn_id: str | None = None,
        storage_conn_id: str | None = None,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_aisec.hooks.storage import storage_conn_id as pick_conn_id

        if signing_key_path and signing_conn_id:
            raise ValueError("give signing_key_path or signing_conn_id, not both")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        self.path = path
        self.manifest_path = manifest_path
        self.algorithm = algorithm
        self.workers = workers
        self.follow_symlinks = follow_symlinks
        self.signing_key_path = signing_key_path
        self.signing_conn_id = signing_conn_id
        self.storage_conn_id = pick_conn_id(storage_conn_id, conn_id, "conn_id")

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.integrity import hash_artifact

        data = self.run_check(
            context,
            subject=self.path,
            check=lambda: hash_artifact(
                resolve_path(self.path, self.storage_conn_id),
                algorithm=self.algorithm,
                workers=self.workers,
                follow_symlinks=self.follow_symlinks,
                manifest_path=_local_or_none(self.manifest_path),
                signing_key=resolve_signing_key(self.signing_key_path, self.signing_conn_id),
            ),
        )
        details = data["details"]
        self.emit_asset_events(
            context,
            {
                "digest": details["digest"],
                "algorithm": details["algorithm"],
                "files": data["metrics"]["files"],
                "bytes": data["metrics"]["bytes"],
                "manifest": details["manifest_path"],
                "signed": bool(details["signature_path"]),
            },
        )
        return data


def check_evidence_args(
    *,
    expected_digest: str | None,
    manifest_path: str | None,
    public_key_path: str | None,
    signing_conn_id: str | None,
    require_signature: bool | None,
) -> bool:
    """Validate the "what do we verify against" arguments shared by verifying operators.

    :return: the effective ``require_signature``: ``True`` by default once a key is configured.
    :raises ValueError: not exactly one of digest / manifest, or two key sources.
    """
    if (expected_digest is None) == (manifest_path is None):
        raise ValueError("give exactly one of expected_digest or manifest_path")
    if public_key_path and signing_conn_id:
        raise ValueError("give public_key_path or signing_conn_id, not both")
    return bool(public_key_path or signing_conn_id) if require_signature is None else require_signature


class VerificationArgs:
    """Arguments and logic shared by :class:`ArtifactIntegrityOperator` and the integrity sensor."""

    path: str
    expected_digest: str | None
    manifest_path: str | None
    signature_path: str | None
    public_key_path: str | None
    signing_conn_id: str | None
    require_signature: bool
    algorithm: str
    workers: int | None
    follow_symlinks: bool
    storage_conn_id: str | None

    VERIFY_TEMPLATE_FIELDS = (
        "path",
        "expected_digest",
        "manifest_path",
        "signature_path",
        "public_key_path",
        "storage_conn_id",
    )

    def _set_verification_args(
        self,
        *,
        path: str,
        expected_digest: str | None,
        manifest_path: str | None,
        signature_path: str | None,
        public_key_path: str | None,
        signing_conn_id: str | None,
        require_signature: bool | None,
        algorithm: str,
        workers: int | None,
        follow_symlinks: bool,
        storage_conn_id: str | None,
        conn_id: str | None,
    ) -> None:
        from airflow_aisec.hooks.storage import storage_conn_id as pick_conn_id

        self.require_signature = check_evidence_args(
            expected_digest=expected_digest,
            manifest_path=manifest_path,
            public_key_path=public_key_path,
            signing_conn_id=signing_conn_id,
            require_signature=require_signature,
        )
        self.path = path
        self.expected_digest = expected_digest
        self.manifest_path = manifest_path
        self.signature_path = signature_path
        self.public_key_path = public_key_path
        self.signing_conn_id = signing_conn_id
        self.algorithm = algorithm
        self.workers = workers
        self.follow_symlinks = follow_symlinks
        self.storage_conn_id = pick_conn_id(storage_conn_id, conn_id, "conn_id")

    def evidence_paths(self) -> list[str]:
        """What must exist before verification can start: the artifact and its manifest."""
        return [p for p in (self.path, self.manifest_path) if p]

    def verify(self) -> Any:
        """Run the verification and return the ``integrity`` report."""
        from airflow_aisec.core.integrity import verify_artifact

        return verify_artifact(
            resolve_path(self.path, self.storage_conn_id),
            expected_digest=self.expected_digest,
            manifest_path=_local_or_none(self.manifest_path),
            signature_path=_local_or_none(self.signature_path),
            verify_key=resolve_verify_key(self.public_key_path, self.signing_conn_id),
            require_signature=self.require_signature,
            algorithm=self.algorithm,
            workers=self.workers,
            follow_symlinks=self.follow_symlinks,
        )


class ArtifactIntegrityOperator(VerificationArgs, AisecBaseOperator):
    """Verify a file or directory against an expected digest or a (signed) manifest. Fails closed.

    Missing artifact, manifest or required signature, or an unreadable file, fail the task
    (``AirflowFailException``); so does a mismatch or a bad signature — after the report listing the
    differing files has been pushed to XCom.

    :param path: file or directory; local path or object-storage URI. (templated)
    :param expected_digest: hex digest (or ``"sha256:<hex>"``) of the file / directory root. (templated)
    :param manifest_path: ``aisec.manifest/v2`` (or v1) manifest to verify against. (templated)
    :param signature_path: the manifest's detached signature (default ``<manifest>.sig`` when a key is
        given). (templated)
    :param public_key_path: Ed25519 public key (PEM) or HMAC secret file. (templated)
    :param signing_conn_id: ``aisec_signing_key`` connection to take the verification key from.
    :param require_signature: refuse a manifest without a valid signature (default: ``True`` when a key
        is configured, else ``False``).
    :param algorithm: for ``expected_digest`` without an ``alg:`` prefix (default ``sha256``).
    :param workers: parallel hashing threads.
    :param follow_symlinks: follow links that stay inside ``path``.
    :param storage_conn_id: Airflow connection for an object-storage ``path`` (required for ``s3://`` …:
        credentials are never taken from the worker's environment). (templated)
    :param conn_id: older name of ``storage_conn_id`` (still accepted).
    """

    aisec_check = "integrity"
    lineage_inputs = ("path", "manifest_path")
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, *VerificationArgs.VERIFY_TEMPLATE_FIELDS)

    def __init__(
        self,
        *,
        path: str,
        expected_digest: str | None = None,
        manifest_path: str | None = None,
        signature_path: str | None = None,
        public_key_path: str | None = None,
        signing_conn_id: str | None = None,
        require_signature: bool | None = None,
        algorithm: str = "sha256",
        workers: int | None = None,
        follow_symlinks: bool = False,
        storage_conn_id: str | None = None,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_verification_args(
            path=path,
            expected_digest=expected_digest,
            manifest_path=manifest_path,
            signature_path=signature_path,
            public_key_path=public_key_path,
            signing_conn_id=signing_conn_id,
            require_signature=require_signature,
            algorithm=algorithm,
            workers=workers,
            follow_symlinks=follow_symlinks,
            storage_conn_id=storage_conn_id,
            conn_id=conn_id,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        data = self.run_check(context, subject=self.path, check=self.verify)
        self.emit_asset_events(context, {"digest": data["details"].get("digest"), "verified": True})
        return data
