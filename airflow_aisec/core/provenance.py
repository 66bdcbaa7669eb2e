"""Dataset provenance: source allowlist, version pinning, known-good digests, and in-toto statements.

:func:`verify_dataset` decides whether a dataset may be used for training and, when it may, records
*what exactly* was used as an `in-toto Statement v1 <https://github.com/in-toto/attestation>`_ with a
`SLSA v1 provenance <https://slsa.dev/spec/v1.0/provenance>`_ predicate. Every check fails closed,
with a finding naming the cause:

==========================  =====================================================================
finding id                  cause
==========================  =====================================================================
``AISEC-PROV-SOURCE``       the dataset URI is outside the source allowlist (nothing is read)
``AISEC-PROV-UNPINNED``     a pinned version is required but the dataset URI does not pin one
``AISEC-PROV-MISSING``      the data (or the pinned version) is missing or unreadable
``AISEC-PROV-SIGNATURE``    the manifest signature does not verify (or is required and absent)
``AISEC-PROV-DIGEST``       the dataset's digest differs from the known-good digest
``AISEC-PROV-MANIFEST``     the dataset differs from the (signed) manifest: every entry is compared
                            (added, removed, changed, type changed, file vs directory)
``AISEC-PROV-LINK``         a local dataset holds a symlink, a hard-linked file (more than one
                            name for the inode) or a mount point: content that may live outside
                            the allowlisted folder
``AISEC-PROV-SPECIAL``      a local dataset holds a FIFO, socket or device (never opened)
==========================  =====================================================================

What "pinned" means (``require_version=True``):

* **S3 objects** — the URI carries an object version, ``s3://bucket/key?versionId=…`` (or
  ``version_id=``), or an expected ``etag``. The object is then read *at that version* (``VersionId``
  / ``IfMatch``), so overwriting the key later cannot change what was verified; the observed
  VersionId and ETag go into the statement's ``resolvedDependencies``. An unversioned bucket cannot
  satisfy a VersionId pin: its objects only have the mutable ``null`` version, refused as unpinned.
  An ETag pin alone proves the content (for single-part uploads the ETag is the MD5) but not that it
  stays retrievable; prefer VersionId.
* **Local files and folders** — a path has no server-side version; the pin is content-addressed:
  the known-good digest or the (signed) manifest, which :func:`verify_dataset` always requires.
  ``require_version`` is therefore always satisfied locally and the statement records
  ``version = "sha256:<digest>"``.

No Airflow import: the operator resolves connections and passes a boto3 client; the CLI uses local
paths (and ``s3://`` through boto3's default credential chain). Hashing and signatures come from
:mod:`airflow_aisec.core.hashing` / ``signing``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import posixpath
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from airflow_aisec.exceptions import AisecInputError, AisecTransientError, AisecUndecidableError
from airflow_aisec.report import Report
from airflow_aisec.utils.uri import local_path, parse_storage_uri

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
#: ``buildType`` of dataset-verification statements (documented in docs/provenance.md).
DATASET_BUILD_TYPE = "https://airflow-aisec.dev/buildtypes/dataset-verification/v1"
#: ``buildType`` of model-training statements written by the secured training DAG.
MODEL_BUILD_TYPE = "https://airflow-aisec.dev/buildtypes/model-training/v1"
PROVENANCE_TAGS = ("OWASP-ML02", "AML.T0010.002", "AML.T0019", "AML.M0025")
_CHUNK = 1 << 20


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def default_builder_id() -> str:
    """A builder id for this machine when no Airflow deployment URL is configured."""
    return f"airflow://{socket.getfqdn() or 'localhost'}"


# ----------------------------------------------------------------------------- URIs and the allowlist
@dataclass(frozen=True)
class DatasetURI:
    """A parsed dataset location. ``canonical`` is what the allowlist is matched against."""

    raw: str
    scheme: str  # "file" or an object-store scheme ("s3")
    canonical: str  # file:///real/path or s3://bucket/key (no query)
    path: str = ""  # local path (file) or key (s3)
    bucket: str = ""
    version_id: str | None = None


def parse_uri(uri: str) -> DatasetURI:
    """Parse a local path / ``file://`` URI / ``s3://bucket/key[?versionId=…]``.

    Local paths are resolved with :func:`os.path.realpath` (symlinks and ``..`` cannot escape an
    allowlisted folder). Object keys containing ``.`` or ``..`` segments are refused.
    """
    if not isinstance(uri, (str, os.PathLike)) or not str(uri).strip():
        raise AisecInputError("dataset URI must be a non-empty string")
    text = str(uri).strip()
    if not parse_storage_uri(text).is_remote:  # plain path or file:// URI: one rule for every check
        real = os.path.realpath(local_path(text))
        return DatasetURI(raw=text, scheme="file", canonical=f"file://{real}", path=real)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if not parts.netloc:
        raise AisecInputError(f"dataset URI {text!r} has no bucket/host")
    key = parts.path.lstrip("/")
    if any(seg in (".", "..") for seg in key.split("/")):
        raise AisecInputError(f"dataset URI {text!r} contains '.' or '..' path segments")
    query = parse_qs(parts.query)
    versions = query.get("versionId") or query.get("version_id") or []
    version = versions[0] if versions else None
    # the bucket is matched exactly as it is read: S3 bucket names are case-sensitive (legacy buckets may hold
    # capitals), so ``s3://DATA`` is another bucket than ``s3://data`` and is not admitted by it
    canonical = f"{scheme}://{parts.netloc}/{key}" if key else f"{scheme}://{parts.netloc}"
    return DatasetURI(raw=text, scheme=scheme, canonical=canonical, path=key, bucket=parts.netloc, version_id=version)


def _canonical_prefix(entry: str) -> str:
    text = str(entry).strip()
    if not text:
        raise AisecInputError("allowlist entries must be non-empty")
    trailing = text.endswith("/")
    parsed = parse_uri(text)
    canon = parsed.canonical
    if trailing and not canon.endswith("/"):
        canon += "/"
    return canon


def allowed_source(uri: DatasetURI, allowlist: Sequence[str]) -> str | None:
    """The allowlist entry admitting ``uri``, or ``None``.

    Entries are URI prefixes matched on path boundaries: ``s3://bucket`` admits the whole bucket,
    ``s3://bucket/data`` admits ``s3://bucket/data`` and ``s3://bucket/data/…`` but not
    ``s3://bucket/data-evil``; ``/srv/datasets`` admits files under that real folder;
    ``https://host`` admits that host.
    """
    for entry in allowlist:
        prefix = _canonical_prefix(entry)
        if uri.canonical == prefix.rstrip("/") or uri.canonical.startswith(prefix.rstrip("/") + "/"):
            return str(entry)
    return None


# ----------------------------------------------------------------------------- datasets
class Dataset(Protocol):
    uri: DatasetURI

    def version_info(self) -> dict[str, Any]: ...

    def subjects(self, algorithm: str) -> list[dict[str, Any]]: ...


class LocalDataset:
    """A local file or folder. Version = its content digest (module docstring).

    Only plain files and folders are admitted: a symlink (whose target may lie outside the allowlist
    and is not what was hashed), a hard-linked file (the same inode may be reachable, and writable,
    from outside the allowlisted folder), an entry on another filesystem (a bind or other mount) and
    a special file are all recorded in :attr:`refused` and refuse the dataset.
    """

    def __init__(self, uri: DatasetURI) -> None:
        self.uri = uri
        self.path = Path(uri.path)
        self.manifest: dict[str, Any] | None = None
        self.refused: dict[str, list[str]] = {}

    def _require(self) -> None:
        if not os.path.lexists(self.path):
            raise FileNotFoundError(f"dataset {str(self.path)!r} does not exist")
        if not os.access(self.path, os.R_OK):
            raise PermissionError(f"dataset {str(self.path)!r} is not readable")

    def version_info(self) -> dict[str, Any]:
        self._require()
        return {"kind": "content-addressed", "pinned": True}

    def subjects(self, algorithm: str) -> list[dict[str, Any]]:
        from airflow_aisec.core.integrity import artifact_digest, compute_manifest

        self._require()
        specials: dict[str, str] = {}
        observe: dict[str, Any] = {}
        manifest = compute_manifest(self.path, algorithm, on_special=specials.__setitem__, observe=observe)
        self.manifest = manifest
        self.refused = {
            "symlinks": list(observe.get("symlinks") or []),
            "hardlinks": list(observe.get("hardlinks") or []),
            "mounts": list(observe.get("foreign_device") or []),
            "special": sorted(f"{rel} ({kind})" for rel, kind in specials.items()),
            "tree_preimage": ["."] if observe.get("tree_preimage") else [],
        }
        files = [
            {"name": e["path"], "size": int(e["size"]), "digest": {algorithm: e["digest"]}} for e in manifest["entries"]
        ]
        if manifest["kind"] == "directory":
            files.append({"name": ".", "root": True, "digest": {algorithm: artifact_digest(manifest)}})
        return files


def _client_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str((response.get("Error") or {}).get("Code") or "") or None
    return None


class S3Object:
    """One S3 object read through a boto3 client, optionally pinned to a VersionId and/or ETag."""

    def __init__(self, uri: DatasetURI, client: Any, *, etag: str | None = None) -> None:
        if not uri.path:
            raise AisecInputError(f"dataset URI {uri.raw!r} names a bucket, not an object")
        self.uri = uri
        self.client = client
        self.pinned_etag = etag.strip('"') if etag else None
        self._head: dict[str, Any] | None = None

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"Bucket": self.uri.bucket, "Key": self.uri.path}
        if self.uri.version_id:
            kwargs["VersionId"] = self.uri.version_id
        return kwargs

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(**kwargs)
        except Exception as exc:
            code = _client_error_code(exc)
            where = self.uri.raw
            if code in ("404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket", "NotFound"):
                raise FileNotFoundError(f"{where} does not exist (S3 {code})") from exc
            if code in ("400", "InvalidArgument") and self.uri.version_id:
                raise FileNotFoundError(f"{where}: version {self.uri.version_id!r} does not exist (S3 {code})") from exc
            if code in ("412", "PreconditionFailed"):
                raise FileNotFoundError(
                    f"{where}: ETag differs from the pinned (or just observed) ETag (S3 {code})"
                ) from exc
            if code in ("403", "AccessDenied"):
                raise PermissionError(f"{where} is not readable (S3 {code})") from exc
            if code in ("SlowDown", "503", "500", "RequestTimeout", "InternalError") or code is None:
                raise AisecTransientError(f"{where}: S3 {method} failed: {code or type(exc).__name__}") from exc
            raise AisecUndecidableError(f"{where}: S3 {method} failed: {code}") from exc

    def version_info(self) -> dict[str, Any]:
        head = self._call("head_object", **self._kwargs())
        self._head = head
        version_id = head.get("VersionId")
        if version_id == "null":
            version_id = None
        etag = str(head.get("ETag", "")).strip('"') or None
        info = {
            "kind": "s3",
            "version_id": version_id,
            "etag": etag,
            "size": head.get("ContentLength"),
            "last_modified": str(head.get("LastModified")) if head.get("LastModified") else None,
            "pinned": bool(self.uri.version_id or self.pinned_etag),
            "pinned_version_id": self.uri.version_id,
            "pinned_etag": self.pinned_etag,
        }
        if self.pinned_etag and etag != self.pinned_etag:
            raise FileNotFoundError(f"{self.uri.raw}: ETag {etag!r} differs from the pinned ETag {self.pinned_etag!r}")
        return info

    def subjects(self, algorithm: str) -> list[dict[str, Any]]:
        kwargs = self._kwargs()
        head = self._head or {}
        if not self.uri.version_id and head.get("VersionId") not in (None, "null"):
            kwargs["VersionId"] = head["VersionId"]  # read exactly the version we looked at
        observed_etag = str(head.get("ETag", "")).strip('"') or None
        if self.pinned_etag or observed_etag:  # the bytes hashed are the object version_info() described
            kwargs["IfMatch"] = f'"{self.pinned_etag or observed_etag}"'
        from airflow_aisec.core.hashing import new_hasher

        response = self._call("get_object", **kwargs)
        body = response["Body"]
        digest = new_hasher(algorithm)
        size = 0
        try:
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
        finally:
            body.close()
        got_etag = str(response.get("ETag", "")).strip('"') or None
        want_etag = self.pinned_etag or observed_etag
        got_version = response.get("VersionId")
        want_version = kwargs.get("VersionId")
        if (
            (want_etag and got_etag and got_etag != want_etag)
            or (want_version and got_version not in (None, want_version))
            or (head.get("ContentLength") is not None and int(head["ContentLength"]) != size)
        ):
            raise FileNotFoundError(
                f"{self.uri.raw}: the object read (ETag {got_etag!r}, version {got_version!r}, {size} bytes) is not "
                f"the one looked at (ETag {want_etag!r}, version {want_version!r}); it changed while it was read"
            )
        return [{"name": posixpath.basename(self.uri.path), "size": size, "digest": {algorithm: digest.hexdigest()}}]


def open_dataset(uri: str, *, s3_client: Any = None, etag: str | None = None) -> Dataset:
    """The :class:`Dataset` for ``uri`` (``s3://`` needs ``s3_client``)."""
    parsed = parse_uri(uri)
    if parsed.scheme == "file":
        if etag:
            raise AisecInputError("an ETag pin only applies to object storage, not to local files")
        return LocalDataset(parsed)
    if parsed.scheme in ("s3", "s3a"):
        if s3_client is None:
            raise AisecInputError(f"dataset URI {uri!r} needs an S3 client (an AWS connection)")
        return S3Object(parsed, s3_client, etag=etag)
    raise AisecInputError(f"unsupported dataset URI scheme {parsed.scheme!r} in {uri!r} (local paths and s3://)")


# ----------------------------------------------------------------------------- statements
def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, 2-space indent, UTF-8, trailing newline)."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def build_statement(
    *,
    subjects: Sequence[Mapping[str, Any]],
    build_type: str,
    external_parameters: Mapping[str, Any],
    resolved_dependencies: Sequence[Mapping[str, Any]] = (),
    internal_parameters: Mapping[str, Any] | None = None,
    builder_id: str | None = None,
    invocation_id: str | None = None,
    started_on: str | None = None,
    finished_on: str | None = None,
    byproducts: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """An in-toto Statement v1 with a SLSA v1 provenance predicate.

    :param subjects: ``[{"name", "digest": {"sha256": hex}}]`` — what the statement is about.
    :param resolved_dependencies: SLSA ResourceDescriptors (``uri``, ``digest``, ``name``, ``annotations``).
    """
    from airflow_aisec import __version__

    subject_list = []
    for s in subjects:
        if not s.get("name") or not s.get("digest"):
            raise AisecInputError("every statement subject needs a name and a digest")
        subject_list.append({"name": str(s["name"]), "digest": {k: str(v) for k, v in dict(s["digest"]).items()}})
    metadata: dict[str, Any] = {}
    if invocation_id:
        metadata["invocationId"] = invocation_id
    metadata["startedOn"] = started_on or now_rfc3339()
    metadata["finishedOn"] = finished_on or now_rfc3339()
    internal = {"tool": {"name": "airflow-aisec", "version": __version__}}
    internal.update(dict(internal_parameters or {}))
    run_details: dict[str, Any] = {
        "builder": {"id": builder_id or default_builder_id(), "version": {"airflow-aisec": __version__}},
        "metadata": metadata,
    }
    if byproducts:
        run_details["byproducts"] = [dict(b) for b in byproducts]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject_list,
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type,
                "externalParameters": dict(external_parameters),
                "internalParameters": internal,
                "resolvedDependencies": [dict(d) for d in resolved_dependencies],
            },
            "runDetails": run_details,
        },
    }


def write_statement(
    path: str | os.PathLike[str], statement: Mapping[str, Any], signing_key: Any = None
) -> dict[str, Any]:
    """Write ``statement`` atomically as canonical JSON; return ``{"path", "sha256"}`` of the bytes written.

    With ``signing_key`` (a :class:`airflow_aisec.core.signing.SigningKey`) a detached
    ``aisec.signature/v1`` signature over exactly those bytes is written to ``<path>.sig`` (Ed25519 or
    HMAC-SHA256, the project's manifest-signature format; not a DSSE envelope).
    """
    from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

    data = canonical_json(statement)
    write_bytes_atomic(path, data)
    out: dict[str, Any] = {"path": str(path), "sha256": hashlib.sha256(data).hexdigest()}
    if signing_key is not None:
        from airflow_aisec.core.signing import sign

        signature = sign(data, signing_key)
        write_json_atomic(f"{path}.sig", signature)
        out.update(signature_path=f"{path}.sig", key_id=signature["key_id"], signature_algorithm=signature["algorithm"])
    return out


def validate_statement(statement: Any) -> dict[str, Any]:
    """Structural check of an in-toto v1 statement with a SLSA v1 predicate; raise ``AisecInputError``."""
    if not isinstance(statement, Mapping):
        raise AisecInputError("statement must be a JSON object")
    if statement.get("_type") != STATEMENT_TYPE:
        raise AisecInputError(f"statement _type must be {STATEMENT_TYPE!r}")
    if statement.get("predicateType") != SLSA_PROVENANCE_V1:
        raise AisecInputError(f"statement predicateType must be {SLSA_PROVENANCE_V1!r}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise AisecInputError("statement needs at least one subject")
    for s in subjects:
        if (
            not isinstance(s, Mapping)
            or not s.get("name")
            or not isinstance(s.get("digest"), Mapping)
            or not s["digest"]
        ):
            raise AisecInputError("every statement subject needs a name and a non-empty digest map")
    predicate = statement.get("predicate") or {}
    build = predicate.get("buildDefinition") or {}
    run = predicate.get("runDetails") or {}
    if not build.get("buildType") or "externalParameters" not in build:
        raise AisecInputError("SLSA predicate needs buildDefinition.buildType and externalParameters")
    if not (run.get("builder") or {}).get("id"):
        raise AisecInputError("SLSA predicate needs runDetails.builder.id")
    return dict(statement)


# ----------------------------------------------------------------------------- verification
def normalise_digest(value: str, algorithm: str = "sha256") -> str:
    """``"sha256:ABC…"`` / ``"abc…"`` → ``"abc…"`` (lowercase hex); checks the length for the algorithm."""
    text = str(value).strip().lower()
    if ":" in text:
        algo, _, text = text.partition(":")
        if algo != algorithm:
            raise AisecInputError(f"expected digest uses {algo!r}, the check uses {algorithm!r}")
    expected_len = hashlib.new(algorithm).digest_size * 2 if algorithm in hashlib.algorithms_available else None
    if not text or any(c not in "0123456789abcdef" for c in text) or (expected_len and len(text) != expected_len):
        raise AisecInputError(f"expected digest {value!r} is not a {algorithm} hex digest")
    return text


@dataclass
class ManifestInput:
    """A manifest and, optionally, its detached signature and the verifying key."""

    manifest: Mapping[str, Any] | str | os.PathLike[str]
    signature: str | os.PathLike[str] | bytes | None = None
    public_key: Any = None  # path / PEM text / signing.VerifyKey
    raw: bytes = field(default=b"", repr=False)

    def load(self) -> dict[str, Any]:
        from airflow_aisec.core import hashing

        if isinstance(self.manifest, Mapping):
            self.raw = hashing.manifest_bytes(dict(self.manifest))
            return hashing.parse_manifest(self.raw, "manifest")
        path = Path(self.manifest)
        if not os.path.lexists(path):
            raise AisecInputError(f"manifest {str(path)!r} does not exist")
        self.raw = hashing.read_evidence(path, f"manifest {str(path)!r}")  # never blocks on a FIFO, bounded
        return hashing.parse_manifest(self.raw, f"manifest {str(path)!r}")


def _verify_signature(manifest: ManifestInput) -> tuple[bool, str]:
    """Verify the manifest's detached signature (:mod:`airflow_aisec.core.signing`); ``(ok, reason)``.

    Checked over the exact manifest bytes, *before* the manifest's content is trusted.
    """
    from airflow_aisec.core import signing

    if manifest.public_key is None:
        raise AisecInputError("a manifest signature check needs public_key (Ed25519 PEM or HMAC secret file)")
    key = manifest.public_key
    verify_key = key if isinstance(key, signing.VerifyKey) else signing.load_verify_key(key)
    from airflow_aisec.core.hashing import read_evidence

    sig = manifest.signature
    if isinstance(sig, bytes):
        sig_bytes = sig
    else:
        assert sig is not None
        if not os.path.lexists(sig):
            return False, f"signature {sig!s} does not exist"
        sig_bytes = read_evidence(sig, f"signature {sig!s}", limit=signing.MAX_KEY_FILE_BYTES)
    # a malformed signature document is an input error (exit 2), not a verdict
    doc = signing.parse_signature(sig_bytes, f"signature {sig!s}" if not isinstance(sig, bytes) else "signature")
    return signing.verify(manifest.raw, doc, verify_key)


def verify_dataset(
    uri: str,
    *,
    allow_sources: Sequence[str],
    expected_digest: str | None = None,
    manifest: ManifestInput | None = None,
    require_signature: bool = False,
    require_version: bool = False,
    etag: str | None = None,
    s3_client: Any = None,
    algorithm: str = "sha256",
    builder_id: str | None = None,
    invocation_id: str | None = None,
    statement_path: str | os.PathLike[str] | None = None,
    statement_signing_key: Any = None,
    external_parameters: Mapping[str, Any] | None = None,
) -> tuple[Report, dict[str, Any] | None]:
    """Verify a dataset's provenance (module docstring); return ``(report, statement or None)``.

    The statement is built (and written to ``statement_path`` atomically, its digest in
    ``report.details["statement"]``) only when every check passes: a statement attests to data that
    was accepted, never to refused data. The report's ``details.observed`` holds the observed
    digests and version either way.

    :param statement_signing_key: sign the written statement (``<statement>.sig``) with this
        :class:`~airflow_aisec.core.signing.SigningKey`.
    :param s3_client: a boto3 S3 client, or a zero-argument factory returning one (called only
        after the allowlist and pin checks pass, so a refused URI never touches credentials).
    :raises AisecInputError: bad arguments (empty allowlist, no expected digest/manifest, bad digest).
    """
    started = now_rfc3339()
    if not allow_sources:
        raise AisecInputError("allow_sources is empty: list the URI prefixes/buckets/hosts datasets may come from")
    if (expected_digest is None) == (manifest is None):
        raise AisecInputError("give exactly one of expected_digest or manifest (the known-good reference)")
    expected = normalise_digest(expected_digest, algorithm) if expected_digest is not None else None
    parsed = parse_uri(uri)
    if statement_path is not None and parsed.scheme == "file":
        from airflow_aisec.core.integrity import refuse_output_inside

        refuse_output_inside(statement_path, parsed.path, "statement")
        refuse_output_inside(f"{statement_path}.sig", parsed.path, "statement signature")
    report = Report.start("provenance", parsed.raw, tags=list(PROVENANCE_TAGS))
    report.details["source"] = {"uri": parsed.raw, "canonical": parsed.canonical}

    def refuse(fid: str, title: str, details: Mapping[str, Any] | None = None) -> tuple[Report, None]:
        report.add_finding(fid, "critical", title, location=parsed.raw, details=dict(details or {}))
        return report.finish("fail", f"refused: {title}"), None

    matched = allowed_source(parsed, allow_sources)
    report.details["source"]["allowlist"] = list(allow_sources)
    if matched is None:
        return refuse(
            "AISEC-PROV-SOURCE",
            f"source {parsed.canonical} is outside the allowlist",
            {"allowlist": list(allow_sources)},
        )
    report.details["source"]["allowed_by"] = matched

    if require_version and parsed.scheme != "file" and not (parsed.version_id or etag):
        return refuse(
            "AISEC-PROV-UNPINNED",
            f"version not pinned: {parsed.raw} names no VersionId/ETag and require_version is set",
            {"hint": "use s3://bucket/key?versionId=… or pass an expected etag"},
        )
    if require_version and parsed.version_id == "null" and not etag:
        return refuse(  # the "null" version of an unversioned / suspended bucket can be overwritten
            "AISEC-PROV-UNPINNED",
            f"version not pinned: {parsed.raw} names the mutable 'null' version (bucket versioning off?)",
        )
    if callable(s3_client) and parsed.scheme != "file":
        s3_client = s3_client()  # a factory: build the client only once the data will be read
    try:
        dataset = open_dataset(uri, s3_client=s3_client, etag=etag)
        version = dataset.version_info()
        if require_version and parsed.version_id and not version.get("version_id"):
            return refuse(
                "AISEC-PROV-UNPINNED",
                f"version not pinned: {parsed.raw} has no object versions (bucket versioning off?)",
                {"version": version},
            )
        subjects = dataset.subjects(algorithm)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        return refuse("AISEC-PROV-MISSING", f"missing or unreadable data: {exc}")
    except OSError as exc:
        return refuse("AISEC-PROV-MISSING", f"missing or unreadable data: {exc}")

    files = [s for s in subjects if not s.get("root")]
    root = next((s for s in subjects if s.get("root")), None)
    observed = (root or files[0])["digest"][algorithm] if (root or files) else None
    if observed is None:
        return refuse("AISEC-PROV-MISSING", f"dataset {parsed.raw} contains no files")
    refused = getattr(dataset, "refused", {}) or {}
    report.metrics.update({f"refused_{k}": len(v) for k, v in refused.items()})
    if refused.get("special"):
        return refuse(
            "AISEC-PROV-SPECIAL",
            f"dataset holds {len(refused['special'])} special file(s) (never opened): {refused['special'][0]}",
            {"special": refused["special"][:100]},
        )
    for key, what in (
        ("symlinks", "symlink(s)"),
        ("hardlinks", "hard-linked file(s)"),
        ("mounts", "entries on another filesystem (mount points)"),
    ):
        if refused.get(key):
            return refuse(
                "AISEC-PROV-LINK",
                f"dataset holds {len(refused[key])} {what}, which may bring in content from outside the "
                f"allowlist: {refused[key][0]}",
                {key: refused[key][:100]},
            )
    if refused.get("tree_preimage") and expected_digest is not None:
        return refuse(
            "AISEC-PROV-DIGEST",
            "the file's content starts with the root-digest tag: it could stand in for a directory's digest",
        )
    if parsed.scheme == "file":
        version = {**version, "version": f"{algorithm}:{observed}"}
    report.details["observed"] = {"digest": f"{algorithm}:{observed}", "files": files, "version": version}
    report.metrics["files"] = len(files)
    report.metrics["bytes"] = sum(int(s.get("size") or 0) for s in files)

    if manifest is not None:
        data = manifest.load()
        if manifest.signature is None and manifest.public_key is not None:
            if isinstance(manifest.manifest, Mapping):  # no file to find a <manifest>.sig beside
                return refuse("AISEC-PROV-SIGNATURE", "a key is configured but no manifest signature was given")
            manifest.signature = f"{os.fspath(manifest.manifest)}.sig"  # a configured key requires the signature
        if manifest.signature is not None:
            ok, reason = _verify_signature(manifest)
            report.details["signature"] = {"verified": ok, "reason": reason}
            if not ok:
                return refuse("AISEC-PROV-SIGNATURE", f"bad manifest signature: {reason}")
        elif require_signature:
            return refuse("AISEC-PROV-SIGNATURE", "manifest signature required but none was given")
        current = getattr(dataset, "manifest", None) or _single_object_manifest(files, algorithm)
        mismatches = _compare_manifest(data, current, algorithm)
        report.details["manifest"] = {"root_digest": data.get("root_digest"), "entries": len(data["entries"])}
        if mismatches:
            return refuse(
                "AISEC-PROV-MANIFEST",
                f"manifest mismatch: {len(mismatches)} difference(s), first: {mismatches[0]['path']} {mismatches[0]['kind']}",
                {"differences": mismatches[:100]},
            )
    else:
        assert expected is not None
        if not hmac.compare_digest(observed, expected):
            return refuse(
                "AISEC-PROV-DIGEST",
                f"digest mismatch: {algorithm}:{observed[:16]}… != known-good {algorithm}:{expected[:16]}…",
                {"observed": f"{algorithm}:{observed}", "expected": f"{algorithm}:{expected}"},
            )

    dependency: dict[str, Any] = {"uri": parsed.canonical, "digest": {algorithm: observed}}
    annotations = {k: v for k, v in version.items() if k in ("version_id", "etag", "last_modified", "version") and v}
    if annotations:
        dependency["annotations"] = annotations
    ext = {
        "source": parsed.raw,
        "allowlist": list(allow_sources),
        "requireVersion": require_version,
        "expected": {"digest": f"{algorithm}:{expected}"} if expected else {"manifest": report.details["manifest"]},
    }
    ext.update(dict(external_parameters or {}))
    statement = build_statement(
        subjects=[{"name": f["name"], "digest": f["digest"]} for f in files],
        build_type=DATASET_BUILD_TYPE,
        external_parameters=ext,
        resolved_dependencies=[dependency],
        builder_id=builder_id,
        invocation_id=invocation_id,
        started_on=started,
    )
    if statement_path is not None:
        report.details["statement"] = write_statement(statement_path, statement, statement_signing_key)
        if statement_signing_key is not None:
            report.add_tags("AML.M0013")
    report.metrics["verified"] = 1
    return report.finish(
        "pass", f"verified {algorithm}:{observed[:16]}… from {matched} ({len(files)} file(s))"
    ), statement


def _single_object_manifest(files: Sequence[Mapping[str, Any]], algorithm: str) -> dict[str, Any]:
    """The manifest an object-storage dataset (one object) would have."""
    entries = [
        {"path": str(f["name"]), "type": "file", "size": int(f.get("size") or 0), "digest": f["digest"][algorithm]}
        for f in files
    ]
    return {"kind": "file", "entries": entries, "directories": []}


def _compare_manifest(manifest: Mapping[str, Any], current: Mapping[str, Any], algorithm: str) -> list[dict]:
    """Every difference between the manifest and the observed dataset (nothing is skipped).

    Added, removed and changed entries, entry type changes (file / symlink / directory) and a kind
    change (a file where the manifest describes a directory, or the reverse) are all differences. A
    single-file dataset matches only a single-file manifest whose entry has the file's name.
    """
    from airflow_aisec.core.integrity import compare_trees

    m_algo = str(manifest.get("algorithm") or algorithm)
    if m_algo != algorithm:
        raise AisecInputError(f"manifest uses {m_algo!r}, the check uses {algorithm!r}")
    diff = compare_trees(dict(manifest), dict(current))
    expected = {str(e["path"]): e for e in manifest["entries"]}
    seen = {str(e["path"]): e for e in current["entries"]}
    diffs: list[dict[str, Any]] = [{"path": ".", "kind": f"kind changed ({k})"} for k in diff["kind"]]
    diffs += [{"path": p, "kind": "missing"} for p in diff["removed"]]
    diffs += [{"path": p, "kind": "type changed"} for p in diff["type_changed"]]
    diffs += [
        {"path": p, "kind": "changed", "expected": expected[p]["digest"], "observed": seen[p]["digest"]}
        for p in diff["changed"]
    ]
    diffs += [{"path": p, "kind": "added"} for p in diff["added"]]
    return diffs
