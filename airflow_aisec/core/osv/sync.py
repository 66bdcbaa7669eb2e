"""``aisec osv-sync``: mirror OSV's PyPI export into a local cache, validated before it replaces the old copy."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_aisec.core.osv.database import OsvDatabase, iter_zip
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

#: OSV's export of every PyPI advisory (what ``aisec osv-sync`` mirrors by default).
DEFAULT_SYNC_SOURCE = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
#: Largest archive ``sync`` downloads (bytes): the PyPI export is ~10 MB; this bounds a runaway download.
MAX_SYNC_BYTES = 512 * 1024 * 1024


def sync(
    source: str = DEFAULT_SYNC_SOURCE,
    dest: str | os.PathLike[str] = ".",
    *,
    name: str = "osv-pypi.zip",
    timeout: float = 60.0,
    max_bytes: int = MAX_SYNC_BYTES,
) -> dict[str, Any]:
    """Mirror an OSV export (URL or local zip) into ``dest/name`` atomically, after validating it.

    The archive is fully loaded as an :class:`OsvDatabase` before it replaces the cached copy, so a
    truncated or corrupt download never overwrites a good database. A ``<name>.json`` manifest next
    to it records the source, SHA-256, record count and newest ``modified`` date.

    :raises AisecInputError: the source does not exist or the destination is not a directory.
    :raises AisecTransientError: the download failed (retryable).
    :raises AisecUndecidableError: the archive is not a valid OSV export.
    """
    from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

    dest_dir = Path(dest)
    if dest_dir.exists() and not dest_dir.is_dir():
        raise AisecInputError(f"osv-sync destination {str(dest_dir)!r} is not a directory")
    if "/" in name or name in ("", ".", ".."):
        raise AisecInputError(f"osv-sync file name {name!r} must be a plain file name")
    if source.startswith(("http://", "https://")):
        data = _download(source, timeout=timeout, max_bytes=max_bytes)
    else:
        from airflow_aisec.utils.uri import is_remote, local_path

        try:
            local = None if is_remote(source) else Path(local_path(source))
        except AisecInputError:
            local = None
        if local is None or not local.is_file():
            raise AisecInputError(f"osv-sync source {source!r} is not a file or an http(s) URL")
        with open(local, "rb") as fh:
            data = fh.read(max_bytes + 1)  # never the whole of a runaway file
        if len(data) > max_bytes:
            raise AisecUndecidableError(f"osv-sync source {source!r} is larger than {max_bytes} bytes")
    sha = hashlib.sha256(data).hexdigest()
    db = OsvDatabase.from_records(source, iter_zip(Path(source), data), sha256=sha)
    target = dest_dir / name
    write_bytes_atomic(target, data)
    manifest = {
        "source": source,
        "path": str(target),
        "sha256": sha,
        "bytes": len(data),
        "records": db.records,
        "packages": db.packages,
        "withdrawn": db.withdrawn,
        "newest_modified": db.newest_modified.isoformat() if db.newest_modified else None,
        "freshness": db.freshness.isoformat() if db.freshness else None,
        "synced_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(dest_dir / f"{name}.json", manifest)
    return manifest


def _download(url: str, *, timeout: float, max_bytes: int) -> bytes:
    import urllib.error
    import urllib.request

    from airflow_aisec.exceptions import AisecTransientError

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            chunks: list[bytes] = []
            total = 0
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise AisecUndecidableError(f"osv-sync source {url!r} is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise AisecInputError(f"osv-sync source {url!r} answered HTTP {exc.code}") from exc
        raise AisecTransientError(f"osv-sync source {url!r} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise AisecTransientError(f"osv-sync source {url!r} unreachable: {exc}") from exc
    return b"".join(chunks)
