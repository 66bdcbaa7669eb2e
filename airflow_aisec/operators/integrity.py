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
    from airflow_aisec.report import Report


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
    :param workers: parallel hashing threads (default: one per CPU the task may use, at most 8).
    :param follow_symlinks: follow links that stay inside ``path`` (default: record links, never follow).
    :param signing_key_path: PEM private key (ECDSA P-256/384/521 for model-signing, or Ed25519) or HMAC
        secret file to sign with.
    :param signing_conn_id: ``aisec_signing_key`` connection holding the key (instead of a file).
    :param signature_format: ``auto`` (default: an OpenSSF model-signing bundle for an ECDSA key, the
        legacy ``aisec.signature/v1`` manifest signature for an Ed25519 or HMAC key), ``model-signing``
        or ``aisec``.
    :param bundle_path: where to write the model-signing bundle (default ``<path>.sig``). (templated)
    :param storage_conn_id: Airflow connection for an object-storage ``path`` (required for ``s3://`` …:
        credentials are never taken from the worker's environment). (templated)
    :param conn_id: older name of ``storage_conn_id`` (still accepted).
    :param partition: hash only this partition: ``"K/N"`` or a spec from
        :class:`ArtifactPartitionPlanOperator` (use ``.partial(...).expand(partition=plan.output)``);
        ``manifest_path`` then names the part, and :class:`ManifestMergeOperator` joins the parts and
        signs. (templated)
    """

    aisec_check = "integrity"
    lineage_inputs = ("path",)
    lineage_outputs = ("manifest_path",)
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "path",
        "manifest_path",
        "signing_key_path",
        "bundle_path",
        "storage_conn_id",
        "partition",
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
        signature_format: str = "auto",
        bundle_path: str | None = None,
        storage_conn_id: str | None = None,
        conn_id: str | None = None,
        partition: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_aisec.hooks.storage import storage_conn_id as pick_conn_id

        if signature_format not in ("auto", "model-signing", "aisec"):
            raise ValueError(f"signature_format must be auto, model-signing or aisec, not {signature_format!r}")
        if signing_key_path and signing_conn_id:
            raise ValueError("give signing_key_path or signing_conn_id, not both")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        if partition is not None and (signing_key_path or signing_conn_id or not manifest_path):
            raise ValueError("partition= needs manifest_path (the part) and no signing key (sign the merged manifest)")
        self.partition = partition
        self.path = path
        self.manifest_path = manifest_path
        self.algorithm = algorithm
        self.workers = workers
        self.follow_symlinks = follow_symlinks
        self.signing_key_path = signing_key_path
        self.signing_conn_id = signing_conn_id
        self.signature_format = signature_format
        self.bundle_path = bundle_path
        self.storage_conn_id = pick_conn_id(storage_conn_id, conn_id, "conn_id")

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.integrity import hash_artifact

        if self.partition is not None:
            return self._hash_partition(context)
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
                signature_format=self.signature_format,
                bundle_path=_local_or_none(self.bundle_path),
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

    def _hash_partition(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.partition import hash_partition_artifact

        assert self.manifest_path is not None  # checked in __init__
        return self.run_check(
            context,
            subject=self.path,
            check=lambda: hash_partition_artifact(
                resolve_path(self.path, self.storage_conn_id),
                self.partition,
                part_path=str(_local_or_none(self.manifest_path)),
                algorithm=self.algorithm,
                workers=self.workers,
                follow_symlinks=self.follow_symlinks,
            ),
        )


def check_evidence_args(
    *,
    expected_digest: str | None,
    manifest_path: str | None,
    public_key_path: str | None,
    signing_conn_id: str | None,
    require_signature: bool | None,
    bundle_path: str | None = None,
) -> bool:
    """Validate the "what do we verify against" arguments shared by verifying operators.

    :return: the effective ``require_signature``: ``True`` by default once a key is configured.
    :raises ValueError: not exactly one of digest / manifest / bundle, or two key sources.
    """
    if bundle_path is not None:
        if expected_digest is not None or manifest_path is not None:
            raise ValueError("give exactly one of expected_digest, manifest_path or bundle_path")
        if not (public_key_path or signing_conn_id):
            raise ValueError("bundle_path needs public_key_path or signing_conn_id (an ECDSA public key)")
    elif (expected_digest is None) == (manifest_path is None):
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
    bundle_path: str | None = None

    VERIFY_TEMPLATE_FIELDS = (
        "path",
        "expected_digest",
        "manifest_path",
        "bundle_path",
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
        bundle_path: str | None = None,
    ) -> None:
        from airflow_aisec.hooks.storage import storage_conn_id as pick_conn_id

        self.require_signature = check_evidence_args(
            expected_digest=expected_digest,
            manifest_path=manifest_path,
            bundle_path=bundle_path,
            public_key_path=public_key_path,
            signing_conn_id=signing_conn_id,
            require_signature=require_signature,
        )
        self.path = path
        self.expected_digest = expected_digest
        self.manifest_path = manifest_path
        self.bundle_path = bundle_path
        self.signature_path = signature_path
        self.public_key_path = public_key_path
        self.signing_conn_id = signing_conn_id
        self.algorithm = algorithm
        self.workers = workers
        self.follow_symlinks = follow_symlinks
        self.storage_conn_id = pick_conn_id(storage_conn_id, conn_id, "conn_id")

    def evidence_paths(self) -> list[str]:
        """What must exist before verification can start: the artifact and its manifest (or bundle)."""
        return [p for p in (self.path, self.manifest_path, self.bundle_path) if p]

    def verify(self) -> Any:
        """Run the verification and return the ``integrity`` report."""
        from airflow_aisec.core.integrity import verify_artifact

        return verify_artifact(
            resolve_path(self.path, self.storage_conn_id),
            expected_digest=self.expected_digest,
            manifest_path=_local_or_none(self.manifest_path),
            bundle_path=_local_or_none(self.bundle_path),
            signature_path=_local_or_none(self.signature_path),
            verify_key=resolve_verify_key(self.public_key_path, self.signing_conn_id),
            require_signature=self.require_signature and self.bundle_path is None,
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
    :param bundle_path: OpenSSF model-signing bundle to verify against, with the ECDSA public key
        ``public_key_path`` (or the connection's). (templated)
    :param signature_path: the manifest's detached signature (default ``<manifest>.sig`` when a key is
        given). (templated)
    :param public_key_path: ECDSA or Ed25519 public key (PEM) or HMAC secret file. (templated)
    :param signing_conn_id: ``aisec_signing_key`` connection to take the verification key from.
    :param require_signature: refuse a manifest without a valid signature (default: ``True`` when a key
        is configured, else ``False``).
    :param algorithm: for ``expected_digest`` without an ``alg:`` prefix (default ``sha256``).
    :param workers: parallel hashing threads.
    :param follow_symlinks: follow links that stay inside ``path``.
    :param storage_conn_id: Airflow connection for an object-storage ``path`` (required for ``s3://`` …:
        credentials are never taken from the worker's environment). (templated)
    :param conn_id: older name of ``storage_conn_id`` (still accepted).
    :param vsa_path: write the decision (pass or fail) as a SLSA Verification Summary Attestation here
        (an in-toto statement); with ``vsa_signing_key_path`` also its DSSE envelope
        ``<vsa_path>.dsse.json``. (templated)
    :param vsa_signing_key_path: Ed25519 or ECDSA private key (PEM) signing the VSA envelope. (templated)
    """

    aisec_check = "integrity"
    lineage_inputs = ("path", "manifest_path")
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        *VerificationArgs.VERIFY_TEMPLATE_FIELDS,
        "vsa_path",
        "vsa_signing_key_path",
    )

    def __init__(
        self,
        *,
        path: str,
        expected_digest: str | None = None,
        manifest_path: str | None = None,
        bundle_path: str | None = None,
        signature_path: str | None = None,
        public_key_path: str | None = None,
        signing_conn_id: str | None = None,
        require_signature: bool | None = None,
        algorithm: str = "sha256",
        workers: int | None = None,
        follow_symlinks: bool = False,
        storage_conn_id: str | None = None,
        conn_id: str | None = None,
        vsa_path: str | None = None,
        vsa_signing_key_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if vsa_signing_key_path and not vsa_path:
            raise ValueError("vsa_signing_key_path needs vsa_path")
        self.vsa_path = vsa_path
        self.vsa_signing_key_path = vsa_signing_key_path
        self._set_verification_args(
            path=path,
            expected_digest=expected_digest,
            manifest_path=manifest_path,
            bundle_path=bundle_path,
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

    def verify_and_record(self) -> Any:
        """Verify, then record the decision as a VSA when ``vsa_path`` is set."""
        report = self.verify()
        if not self.vsa_path:
            return report
        from airflow_aisec.core.vsa import record_decision

        return record_decision(
            report,
            self.vsa_path,
            check="integrity",
            resource=self.path,
            evidence=[_local_or_none(p) for p in (self.manifest_path, self.signature_path, self.bundle_path)],
            signing_key=resolve_signing_key(self.vsa_signing_key_path, None),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        data = self.run_check(context, subject=self.path, check=self.verify_and_record)
        self.emit_asset_events(context, {"digest": data["details"].get("digest"), "verified": True})
        return data


class ArtifactPartitionPlanOperator(AisecBaseOperator):
    """List an artifact once and return ``partitions`` specs for a mapped :class:`ArtifactHashOperator`.

    Each spec is ``{"partition": "K/N", "listing_digest", "files", "bytes"}``; a hashing task refuses to
    run when the artifact's listing no longer has that digest (changed since it was planned). The
    report (XCom ``aisec_report``) shows the balance; the return value is the list of specs.

    :param path: directory or file; local path or object-storage URI. (templated)
    :param partitions: how many parts (1 … 10 000).
    :param algorithm: the algorithm the parts and the manifest will use.
    :param follow_symlinks: as for :class:`ArtifactHashOperator`.
    :param storage_conn_id: Airflow connection for an object-storage ``path``. (templated)
    """

    aisec_check = "integrity"
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, "path", "storage_conn_id")

    def __init__(
        self,
        *,
        path: str,
        partitions: int,
        algorithm: str = "sha256",
        follow_symlinks: bool = False,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(partitions, int) or isinstance(partitions, bool) or not 1 <= partitions <= 10_000:
            raise ValueError(f"partitions must be an integer in 1..10000, not {partitions!r}")
        self.path = path
        self.partitions = partitions
        self.algorithm = algorithm
        self.follow_symlinks = follow_symlinks
        self.storage_conn_id = storage_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_aisec.core.partition import plan_report

        data = self.run_check(
            context,
            subject=self.path,
            check=lambda: plan_report(
                resolve_path(self.path, self.storage_conn_id),
                self.partitions,
                algorithm=self.algorithm,
                follow_symlinks=self.follow_symlinks,
            ),
        )
        return list(data["details"]["specs"])


class ManifestMergeOperator(AisecBaseOperator):
    """Merge the parts of a mapped :class:`ArtifactHashOperator` into the artifact's manifest; optionally sign it.

    The manifest is byte-identical to the one a single :class:`ArtifactHashOperator` writes. The merge
    refuses (``error``, nothing written) parts of different runs, missing or repeated partitions,
    entries in two parts or in the wrong one, a union that is not the planned listing, edited parts.
    Given the hashing tasks' reports, it also refuses a part file that is not the one its task wrote
    (its part digest differs from the one in the task's report): a part replaced on shared storage,
    even with a recomputed digest, is not merged and signed.

    :param parts: the part files: paths, or the reports the mapped hashing tasks return
        (``hash_parts.output``, which binds each file to its task's report). (templated)
    :param manifest_path: where to write the manifest (a local file). (templated)
    :param signing_key_path: PEM private key (Ed25519) or HMAC secret file to sign the manifest with.
    :param signing_conn_id: ``aisec_signing_key`` connection holding the key (instead of a file).
    """

    aisec_check = "integrity"
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, "parts", "manifest_path", "signing_key_path")
    subject_attributes = ("manifest_path",)

    def __init__(
        self,
        *,
        parts: Any,
        manifest_path: str,
        signing_key_path: str | None = None,
        signing_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if signing_key_path and signing_conn_id:
            raise ValueError("give signing_key_path or signing_conn_id, not both")
        self.parts = parts
        self.manifest_path = manifest_path
        self.signing_key_path = signing_key_path
        self.signing_conn_id = signing_conn_id

    def part_paths(self) -> list[str]:
        """The part files named by ``parts`` (paths, or hashing reports carrying ``details.part_path``)."""
        return [path for path, _ in self._parts()]

    def _parts(self) -> list[tuple[str, str | None]]:
        """``(path, part digest the hashing task reported)`` per part (the digest is ``None`` for a bare path)."""
        if isinstance(self.parts, (str, bytes)) or not hasattr(self.parts, "__iter__"):
            raise AisecInputError("parts must be a list of part files or of the hashing tasks' reports")
        out: list[tuple[str, str | None]] = []
        for item in self.parts:
            digest = None
            if isinstance(item, dict):
                details = item.get("details") or {}
                item, digest = details.get("part_path"), details.get("part_digest")
            if not isinstance(item, str) or not item:
                raise AisecInputError("every part must be a path or a partition-hashing report")
            out.append((str(_local_or_none(item)), digest if isinstance(digest, str) else None))
        return out

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.partition import merge_artifact_parts

        def merge() -> Report:
            parts = self._parts()  # read the mapped tasks' reports once
            return merge_artifact_parts(
                [path for path, _ in parts],
                manifest_path=str(_local_or_none(self.manifest_path)),
                signing_key=resolve_signing_key(self.signing_key_path, self.signing_conn_id),
                expected_part_digests=[digest for _, digest in parts],
            )

        data = self.run_check(context, subject=str(self.manifest_path), check=merge)
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
