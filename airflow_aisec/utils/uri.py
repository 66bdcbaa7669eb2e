"""One answer to "is this local or object storage?" for core, CLI and operators alike.

Pure (no Airflow, no I/O, no heavy import). Rules:

* A plain path (absolute, relative, ``~``) is local. A leading ``~`` is expanded by :func:`local_path`.
* ``file://`` (any case: ``FILE://``) is local: ``file:///abs/path`` and ``file://localhost/abs/path``
  name ``/abs/path``; RFC 8089's ``file:/abs/path`` too. A ``file://`` URI with another host
  (``file://data/x.csv``: a relative path or a remote host?) is refused rather than guessed.
* ``<scheme>://`` with a scheme in :data:`REMOTE_SCHEMES` is object storage; the bucket / container
  (``s3://bucket``) must be present.
* Anything else that looks like a URI fails closed with :class:`~airflow_aisec.exceptions.AisecInputError`
  naming the input: an unsupported scheme (``ftp://``, ``http://``), a known scheme missing its
  ``//`` (``s3:/x``), an empty bucket (``s3://``), ``://`` not at the start (`` s3://b``), a NUL
  character, an empty string.
* A single letter before ``:/`` is a drive letter (``C:/data``), not a scheme: local (``C://`` is refused).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from airflow_aisec.exceptions import AisecInputError

#: Object-storage schemes whose reads need credentials (an Airflow connection inside Airflow).
CREDENTIAL_SCHEMES = frozenset(
    {"s3", "s3a", "s3n", "gs", "gcs", "az", "abfs", "abfss", "adl", "wasb", "wasbs", "hdfs", "webhdfs"}
)
#: Object-storage schemes without credentials (fsspec's in-process filesystem: tests and tools).
ANONYMOUS_SCHEMES = frozenset({"memory"})
#: Every scheme read as object storage.
REMOTE_SCHEMES = CREDENTIAL_SCHEMES | ANONYMOUS_SCHEMES
#: The local scheme.
LOCAL_SCHEME = "file"

_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://(.*)", re.DOTALL)
_SCHEME_ONLY = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]+):(.*)", re.DOTALL)
_SHOWN = 200


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


@dataclass(frozen=True)
class StorageURI:
    """A parsed storage location.

    :param raw: the text given.
    :param scheme: ``"file"`` for local paths, else the lower-cased object-storage scheme.
    :param path: the local path (``file``), else ``bucket/key`` (what fsspec calls the path).
    :param bucket: bucket / container / host of object storage (empty for local paths).
    :param key: the object key below the bucket (may be empty: the bucket itself).
    """

    raw: str
    scheme: str
    path: str
    bucket: str = ""
    key: str = ""

    @property
    def is_remote(self) -> bool:
        return self.scheme != LOCAL_SCHEME

    @property
    def needs_connection(self) -> bool:
        """Object storage that is read with credentials (an Airflow connection must name them)."""
        return self.scheme in CREDENTIAL_SCHEMES

    @property
    def uri(self) -> str:
        """Normalised form: ``scheme://bucket/key`` for object storage, the local path otherwise."""
        return f"{self.scheme}://{self.path}" if self.is_remote else self.path


def _text(uri: Any) -> str:
    if isinstance(uri, bytes) or not isinstance(uri, (str, os.PathLike)):
        raise AisecInputError(f"a storage location must be a string or path, not {type(uri).__name__}")
    text = os.fspath(uri)
    if not isinstance(text, str):
        raise AisecInputError(f"a storage location must be text, not {type(text).__name__}")
    if "\x00" in text:
        raise AisecInputError(f"storage location {_shown(text)} contains a NUL character")
    if not text.strip():
        raise AisecInputError("storage location is empty")
    return text


def _file_uri(text: str, rest: str) -> StorageURI:
    """``rest`` is what follows ``file://``: ``/abs``, ``localhost/abs``; any other host is refused."""
    host, sep, tail = rest.partition("/")
    if not sep and not host:
        raise AisecInputError(f"malformed URI {_shown(text)}: write file:///absolute/path")
    if host.lower() not in ("", "localhost") or not sep:
        raise AisecInputError(
            f"file URI {_shown(text)} names host {host!r}: write file:///absolute/path or a plain path"
        )
    path = "/" + tail
    return StorageURI(raw=text, scheme=LOCAL_SCHEME, path=path)


def parse_storage_uri(uri: str | os.PathLike[str]) -> StorageURI:
    """Classify ``uri`` as a local path or an object-storage URI (module docstring for the rules).

    :raises AisecInputError: empty, NUL, unsupported scheme, malformed URI; the message names the input.
    """
    text = _text(uri)
    match = _URI.fullmatch(text)
    if match is None:
        loose = _SCHEME_ONLY.fullmatch(text)
        if loose is not None:
            scheme, rest = loose.group(1).lower(), loose.group(2)
            if scheme == LOCAL_SCHEME and rest.startswith("/"):  # RFC 8089 ``file:/abs``
                return StorageURI(raw=text, scheme=LOCAL_SCHEME, path=rest)
            if scheme in REMOTE_SCHEMES or scheme == LOCAL_SCHEME:
                raise AisecInputError(f"malformed URI {_shown(text)}: write {scheme}://<bucket>/<key>")
        if "://" in text:  # `` s3://b``, ``x/s3://b``: neither a path anyone means nor a URI
            raise AisecInputError(f"malformed URI {_shown(text)}: '://' does not follow a scheme at the start")
        return StorageURI(raw=text, scheme=LOCAL_SCHEME, path=text)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == LOCAL_SCHEME:
        return _file_uri(text, rest)
    if scheme not in REMOTE_SCHEMES:
        raise AisecInputError(
            f"unsupported storage scheme {scheme!r} in {_shown(text)}: use a local path or one of "
            + ", ".join(f"{s}://" for s in sorted(REMOTE_SCHEMES))
        )
    bucket, _, key = rest.partition("/")
    if not bucket.strip() and scheme in CREDENTIAL_SCHEMES:
        raise AisecInputError(f"malformed URI {_shown(text)}: no bucket after {scheme}://")
    if not rest.strip():
        raise AisecInputError(f"malformed URI {_shown(text)}: nothing after {scheme}://")
    return StorageURI(raw=text, scheme=scheme, path=rest, bucket=bucket, key=key)


def is_remote(uri: Any) -> bool:
    """``True`` for object storage (a supported ``scheme://`` URI, or an opened object-storage path).

    An object with a ``.fs`` (an ``ObjectStoragePath`` / ``UPath`` the caller already opened) is
    object storage; strings and ``os.PathLike`` follow :func:`parse_storage_uri` (and fail the same way).
    """
    if not isinstance(uri, (str, bytes, os.PathLike)) and hasattr(uri, "fs"):
        return True
    return parse_storage_uri(uri).is_remote


def local_path(uri: str | os.PathLike[str]) -> str:
    """The local filesystem path ``uri`` names (``file://`` stripped, a leading ``~`` expanded).

    :raises AisecInputError: ``uri`` is object storage or malformed.
    """
    parsed = parse_storage_uri(uri)
    if parsed.is_remote:
        raise AisecInputError(f"{_shown(parsed.raw)} is object storage ({parsed.scheme}://), not a local path")
    return os.path.expanduser(parsed.path) if parsed.path.startswith("~") else parsed.path
