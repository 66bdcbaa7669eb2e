"""Where a dataset comes from: URIs, the source allowlist, and reading a local or S3 dataset.

A local dataset's version is its content digest; an S3 object is read at its pinned VersionId /
ETag. Nothing here decides whether a dataset may be used: see :mod:`.verify`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from airflow_aisec.exceptions import AisecInputError, AisecTransientError, AisecUndecidableError
from airflow_aisec.utils.uri import local_path, parse_storage_uri

_CHUNK = 1 << 20


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
    """A local file or folder. Version = its content digest (see :mod:`airflow_aisec.core.provenance`).

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
