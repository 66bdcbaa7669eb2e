"""The one door to storage: ``(uri, storage_conn_id)`` → something core code can read or write.

Every operator, sensor and trigger that reads or writes data goes through :class:`StorageHook`:

* a local path or ``file://`` URI → a plain local path string (``file://`` stripped, ``~`` expanded);
* object storage (``s3://``, ``gs://``, ``az://`` …) → ``airflow.sdk.ObjectStoragePath`` bound to the
  named Airflow connection, whose filesystem is built at once so a broken connection fails here;
* object storage without a connection, or naming a connection that does not exist → an
  :class:`~airflow_aisec.exceptions.AisecInputError` naming the location: credentials never come
  from the worker's environment (instance role, ``AWS_*`` variables) by accident;
* anything :func:`airflow_aisec.utils.uri.parse_storage_uri` refuses (unsupported scheme, ``s3:/x``,
  NUL …) → the same error.

``memory://`` (fsspec's in-process filesystem, for tests and tools) needs no connection.
Imports are lazy: importing this module costs nothing at DAG parse time.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import BaseHook

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils.uri import StorageURI, local_path, parse_storage_uri


class StorageHook(BaseHook):
    """Resolve storage locations through one Airflow connection.

    :param storage_conn_id: Airflow connection for object-storage locations (AWS connection for
        ``s3://``, Google Cloud for ``gs://``, Azure for ``az://``/``abfs://``). Not needed for local paths.
    """

    conn_name_attr = "storage_conn_id"
    hook_name = "AI Security storage"

    def __init__(self, storage_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.storage_conn_id = storage_conn_id or None

    def _require_connection(self, parsed: StorageURI, what: str) -> None:
        if not parsed.needs_connection:
            return
        if not self.storage_conn_id:
            raise AisecInputError(
                f"{what} {parsed.raw!r} is object storage: give storage_conn_id, the Airflow connection "
                "to read it with (credentials are never taken from the worker's environment)"
            )
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            self.get_connection(self.storage_conn_id)
        except AirflowNotFoundException:
            raise AisecInputError(
                f"connection {self.storage_conn_id!r} is not defined: cannot read {what} {parsed.raw!r} "
                "(credentials are never taken from the worker's environment)"
            ) from None

    def resolve(self, uri: str | os.PathLike[str], *, what: str = "location") -> Any:
        """A local path string, or an ``ObjectStoragePath`` bound to :attr:`storage_conn_id`.

        :param what: how error messages name the location (``"dataset"``, ``"reference profile"``).
        :raises AisecInputError: malformed or unsupported location; object storage without a usable connection.
        """
        parsed = parse_storage_uri(uri)
        if not parsed.is_remote:
            return local_path(uri)
        self._require_connection(parsed, what)
        from airflow.sdk import ObjectStoragePath

        if not parsed.needs_connection:
            return ObjectStoragePath(parsed.uri)
        path = ObjectStoragePath(parsed.uri, conn_id=self.storage_conn_id)
        try:  # ObjectStoragePath would otherwise fall back silently to an unauthenticated filesystem
            path.fs  # noqa: B018 - builds the connection's filesystem now
        except Exception as exc:
            raise AisecInputError(
                f"connection {self.storage_conn_id!r} cannot open {what} {parsed.raw!r}: {type(exc).__name__}: {exc}"
            ) from None
        return path

    def exists(self, uri: str | os.PathLike[str]) -> bool:
        """Whether ``uri`` exists (file, directory or object prefix)."""
        path = self.resolve(uri)
        return os.path.exists(path) if isinstance(path, str) else bool(path.exists())

    def read_bytes(self, uri: str | os.PathLike[str], *, what: str = "location") -> bytes:
        """The bytes at ``uri`` (for small evidence files: reference profiles, JSON)."""
        path = self.resolve(uri, what=what)
        try:
            if isinstance(path, str):
                with open(path, "rb") as fh:
                    return fh.read()
            return bytes(path.read_bytes())
        except FileNotFoundError:
            raise AisecInputError(f"{what} not found: {uri}") from None

    def s3_client(self, uri: str | os.PathLike[str], *, what: str = "dataset") -> Any:
        """The boto3 S3 client of :attr:`storage_conn_id` for reading ``uri`` (versioned reads, ETags)."""
        parsed = parse_storage_uri(uri)
        if parsed.scheme not in ("s3", "s3a", "s3n"):
            raise AisecInputError(f"{what} {parsed.raw!r} is not on S3")
        self._require_connection(parsed, what)
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.storage_conn_id).get_conn()


def resolve_storage(uri: str | os.PathLike[str], conn_id: str | None, *, what: str = "location") -> Any:
    """Shorthand for ``StorageHook(conn_id).resolve(uri)``."""
    return StorageHook(storage_conn_id=conn_id).resolve(uri, what=what)


def storage_conn_id(storage_conn_id: str | None, legacy: str | None, legacy_name: str) -> str | None:
    """The connection id an operator uses: ``storage_conn_id``, or its older alias (not both, unless equal).

    :raises ValueError: both given and different.
    """
    if storage_conn_id and legacy and storage_conn_id != legacy:
        raise ValueError(f"give storage_conn_id or {legacy_name} (its older name), not both")
    return storage_conn_id or legacy or None
