"""Dataset provenance operator: verify where training data comes from and record it (in-toto / SLSA).

.. code-block:: python

    verify_data = DatasetProvenanceOperator(
        task_id="verify_data",
        dataset_uri="s3://ml-data/churn/train.parquet?versionId=3HL4kqtJlcpXroDTDmJ",
        allow_sources=["s3://ml-data/churn/"],
        expected_digest="sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        require_version=True,
        storage_conn_id="aws_default",
        outlets=[Asset("aisec://datasets/churn")],
    )

The in-toto statement is written next to the report, in ``attestations/<task_id>.intoto.json`` of the
report's folder (or, without a report directory, under ``data_dir("provenance", dag_id, run_id)``); its digest is in the report, and the
dataset digest + version are attached to every outlet asset event.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator
from airflow_aisec.operators.integrity import check_evidence_args

if TYPE_CHECKING:
    from airflow.sdk import Context


def builder_id_for_deployment() -> str:
    """The SLSA builder id of this Airflow deployment: ``[api] base_url`` when configured."""
    try:
        from airflow.configuration import conf

        base_url = conf.get("api", "base_url", fallback=None)
    except Exception:  # pragma: no cover - config not loadable
        base_url = None
    if base_url:
        return str(base_url)
    from airflow_aisec.core.provenance import default_builder_id

    return default_builder_id()


def invocation_id(context: Context) -> str:
    """``<dag_id>/<run_id>/<task_id>/<try_number>`` (plus ``[map_index]`` for mapped tasks)."""
    ti = context["ti"]
    ident = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'try_number', 1)}"
    map_index = getattr(ti, "map_index", -1)
    return ident if map_index is None or map_index < 0 else f"{ident}[{map_index}]"


class DatasetProvenanceOperator(AisecBaseOperator):
    """Verify a dataset's source, version pin and known-good digest (or signed manifest); record provenance.

    Fails closed, with a finding naming the cause, when the source is outside ``allow_sources``, a
    version is required but not pinned, the digest or manifest does not match, the data is missing or
    unreadable, or the manifest signature is bad. On success it writes an in-toto Statement v1 with a
    SLSA v1 provenance predicate (subjects = the dataset files and digests, resolvedDependencies = the
    source URI and version, builder id = this Airflow deployment, invocationId =
    dag_id/run_id/task_id/try) and attaches ``dataset_digest``, ``version`` and the statement digest to
    every outlet asset event.

    :param dataset_uri: local file/folder, ``file://`` URI, or ``s3://bucket/key[?versionId=…]``. (templated)
    :param allow_sources: URI prefixes, buckets (``s3://bucket``) or folders datasets may come from;
        matched on path boundaries after resolving local symlinks. (templated)
    :param expected_digest: known-good digest (``sha256:<hex>`` or hex) of the file / folder root. (templated)
    :param manifest_path: ``aisec.manifest/v2`` (or v1) manifest to verify against instead. (templated)
    :param signature_path: detached signature of the manifest (default ``<manifest>.sig`` when a key is
        given). (templated)
    :param public_key_path: Ed25519 public key (PEM) or HMAC secret file verifying the signature. (templated)
    :param signing_conn_id: ``aisec_signing_key`` connection holding the verification key instead.
    :param require_signature: refuse a manifest without a valid signature (default: ``True`` when a key
        is configured).
    :param require_version: refuse object-storage data whose URI pins no VersionId/ETag. Local data is
        pinned by its digest (see docs/provenance.md).
    :param expected_etag: S3 ETag pin (read with ``IfMatch``). (templated)
    :param storage_conn_id: Airflow (AWS) connection for ``s3://`` URIs (providers-amazon ``S3Hook``;
        default ``aws_default``). It must be defined: credentials are never taken from the worker's
        environment. (templated)
    :param aws_conn_id: older name of ``storage_conn_id`` (still accepted).
    :param statement_path: where to write the statement (default: next to the report). (templated)
    :param statement_signing_key_path: PEM private key (Ed25519 or ECDSA) or HMAC secret file: sign the
        statement in a DSSE envelope ``<statement>.dsse.json`` (Ed25519/ECDSA) and, for Ed25519/HMAC,
        the legacy ``<statement>.sig`` (``aisec.signature/v1``). (templated)
    :param statement_signing_conn_id: ``aisec_signing_key`` connection to sign the statement with instead.
    :param vsa_path: record the decision (pass or fail) as a SLSA Verification Summary Attestation here,
        in a DSSE envelope ``<vsa_path>.dsse.json`` too when the statement key is Ed25519 or ECDSA.
        (templated)
    :param builder_id: SLSA builder id (default: ``[api] base_url``, else ``airflow://<host>``). (templated)
    :param algorithm: digest algorithm (default ``sha256``).
    """

    aisec_check = "provenance"
    lineage_inputs = ("dataset_uri",)
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "dataset_uri",
        "allow_sources",
        "expected_digest",
        "manifest_path",
        "signature_path",
        "public_key_path",
        "expected_etag",
        "statement_path",
        "statement_signing_key_path",
        "vsa_path",
        "builder_id",
        "storage_conn_id",
    )
    ui_color = "#e8f5e9"

    def __init__(
        self,
        *,
        dataset_uri: str,
        allow_sources: Sequence[str],
        expected_digest: str | None = None,
        manifest_path: str | None = None,
        signature_path: str | None = None,
        public_key_path: str | None = None,
        signing_conn_id: str | None = None,
        require_signature: bool | None = None,
        require_version: bool = False,
        expected_etag: str | None = None,
        aws_conn_id: str | None = "aws_default",
        statement_path: str | None = None,
        statement_signing_key_path: str | None = None,
        vsa_path: str | None = None,
        statement_signing_conn_id: str | None = None,
        builder_id: str | None = None,
        algorithm: str = "sha256",
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if storage_conn_id and aws_conn_id not in (None, "aws_default", storage_conn_id):
            raise ValueError("give storage_conn_id or aws_conn_id (its older name), not both")
        if isinstance(allow_sources, str) and "{{" not in allow_sources:
            raise ValueError("allow_sources must be a list of URI prefixes, not a single string")
        self.require_signature = check_evidence_args(
            expected_digest=expected_digest,
            manifest_path=manifest_path,
            public_key_path=public_key_path,
            signing_conn_id=signing_conn_id,
            require_signature=require_signature,
        )
        if statement_signing_key_path and statement_signing_conn_id:
            raise ValueError("give statement_signing_key_path or statement_signing_conn_id, not both")
        self.dataset_uri = dataset_uri
        self.allow_sources = allow_sources
        self.expected_digest = expected_digest
        self.manifest_path = manifest_path
        self.signature_path = signature_path
        self.public_key_path = public_key_path
        self.signing_conn_id = signing_conn_id
        self.require_version = require_version
        self.expected_etag = expected_etag
        self.storage_conn_id = storage_conn_id or aws_conn_id
        self.statement_path = statement_path
        self.statement_signing_key_path = statement_signing_key_path
        self.vsa_path = vsa_path
        self.statement_signing_conn_id = statement_signing_conn_id
        self.builder_id = builder_id
        self.algorithm = algorithm

    def _allowlist(self) -> list[str]:
        """``allow_sources`` after templating: a list, or a JSON list / single prefix rendered as a string."""
        from airflow_aisec.exceptions import AisecInputError

        value = self.allow_sources
        if isinstance(value, str):
            from airflow_aisec.utils import strictjson

            text = value.strip()
            value = strictjson.loads(text, source="allow_sources") if text.startswith("[") else [text]
        if isinstance(value, (str, bytes)) or not all(isinstance(v, str) and v.strip() for v in value):
            raise AisecInputError("allow_sources must be a list of non-empty strings (URI prefixes, buckets, folders)")
        return list(value)

    def _s3_client(self) -> Any:
        """The boto3 S3 client of ``storage_conn_id`` (built lazily by the core, after the policy checks)."""
        from airflow_aisec.hooks.storage import StorageHook

        return StorageHook(self.storage_conn_id).s3_client(str(self.dataset_uri).split("?", 1)[0])

    def _statement_path(self, context: Context) -> str:
        """``attestations/<task_id>.intoto.json`` in the report's folder (or under ``data_dir("provenance")``)."""
        if self.statement_path:
            return str(self.statement_path)
        ti = context["ti"]
        report_path = self._resolve_report_path(context)
        if not report_path:
            from airflow_aisec.operators.base import report_file_path
            from airflow_aisec.utils.paths import data_dir

            map_index = -1 if ti.map_index is None else ti.map_index
            report_path = report_file_path(str(data_dir("provenance")), ti.dag_id, ti.run_id, ti.task_id, map_index)
        folder, name = os.path.split(report_path)
        return os.path.join(folder, "attestations", os.path.splitext(name)[0] + ".intoto.json")

    def _manifest(self) -> Any:
        from airflow_aisec.core.provenance import ManifestInput
        from airflow_aisec.operators.integrity import resolve_verify_key

        if self.manifest_path is None:
            return None
        key = resolve_verify_key(self.public_key_path, self.signing_conn_id)
        signature = self.signature_path or (f"{self.manifest_path}.sig" if key is not None else None)
        return ManifestInput(self.manifest_path, signature=signature, public_key=key)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.provenance import verify_dataset
        from airflow_aisec.operators.integrity import resolve_signing_key

        def check() -> Any:
            key = resolve_signing_key(self.statement_signing_key_path, self.statement_signing_conn_id)
            report = verify(key)
            if not self.vsa_path:
                return report
            from airflow_aisec.core.vsa import record_decision

            evidence = [self.manifest_path, self._manifest().signature if self.manifest_path else None]
            dsse_key = key if key is not None and key.algorithm != "hmac-sha256" else None
            return record_decision(
                report,
                self.vsa_path,
                check="provenance",
                resource=str(self.dataset_uri),
                evidence=evidence,
                signing_key=dsse_key,
            )

        def verify(key: Any) -> Any:
            return verify_dataset(
                str(self.dataset_uri),
                allow_sources=self._allowlist(),
                expected_digest=self.expected_digest,
                manifest=self._manifest(),
                require_signature=self.require_signature,
                require_version=self.require_version,
                etag=self.expected_etag,
                s3_client=self._s3_client,
                algorithm=self.algorithm,
                builder_id=self.builder_id or builder_id_for_deployment(),
                invocation_id=invocation_id(context),
                statement_path=self._statement_path(context),
                statement_signing_key=key,
            )[0]

        data = self.run_check(context, subject=str(self.dataset_uri), check=check)
        details = data["details"]
        version = details["observed"]["version"]
        extra = {
            "dataset_uri": details["source"]["uri"],
            "dataset_digest": details["observed"]["digest"],
            "version": version.get("version_id") or version.get("version"),
            "etag": version.get("etag"),
            "files": data["metrics"]["files"],
            "statement": details["statement"]["path"],
            "statement_sha256": details["statement"]["sha256"],
        }
        self.emit_asset_events(context, {k: v for k, v in extra.items() if v is not None})
        return data
