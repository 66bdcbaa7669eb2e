"""Streaming hashes and manifests of files and directories (local paths or object storage).

* :func:`hash_file` streams a file in fixed-size chunks into a reusable buffer: constant memory,
  throughput of ``hashlib`` itself. A file whose size or modification time changes while it is read
  raises :class:`~airflow_aisec.exceptions.AisecUndecidableError` instead of recording a digest of
  bytes that never existed together.
* :func:`build_manifest` hashes every file under a root with a bounded thread pool (``hashlib``
  releases the GIL on large updates, so threads hash in parallel), records relative POSIX paths,
  sizes and digests, and a root digest over the sorted entries.
* :func:`verify_manifest` rebuilds the picture and reports added / removed / changed / unreadable
  files as an ``integrity`` report.

Symbolic links are never followed by default: they are recorded as links (their target text is
hashed), so a link swapped to point elsewhere is detected. With ``follow_symlinks=True`` a link is
followed only when its resolved target stays inside the root; one escaping the root is an error.

Object storage: any path object with ``open("rb")``/``stat()``/``iterdir()`` (Airflow's
``ObjectStoragePath``, a ``UPath``) works; this module never imports Airflow.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "aisec.manifest/v1"
#: Read size: large enough to amortise Python overhead, small enough to stay cache-friendly.
CHUNK_SIZE = 1 << 20
#: Algorithms always available; ``blake3`` is added when the optional package is installed.
ALGORITHMS = ("sha256", "sha512", "blake2b")
PROGRESS_INTERVAL_SECONDS = 10.0

PathLike = str | os.PathLike[str] | Any  # Any: object-storage paths (duck-typed)


def available_algorithms() -> tuple[str, ...]:
    try:
        import blake3  # noqa: F401
    except ImportError:
        return ALGORITHMS
    return (*ALGORITHMS, "blake3")


def new_hasher(algorithm: str) -> Any:
    """A fresh hash object for ``algorithm`` (``sha256``, ``sha512``, ``blake2b`` or ``blake3``)."""
    algorithm = algorithm.lower()
    if algorithm in ALGORITHMS:
        return hashlib.new(algorithm)
    if algorithm == "blake3":
        try:
            from blake3 import blake3
        except ImportError:
            raise AisecInputError(
                "algorithm 'blake3' needs the optional package: pip install 'airflow-aisec[blake3]'"
            ) from None
        return blake3()
    raise AisecInputError(f"unknown hash algorithm {algorithm!r}; choose one of {available_algorithms()}")


def _is_local(path: PathLike) -> bool:
    """Local path (str, PathLike or ``file://`` URI) vs object storage (a path object with ``.fs``)."""
    if hasattr(path, "fs"):
        return False
    text = os.fspath(path)
    return "://" not in text or text.startswith("file://")


def _local(path: PathLike) -> Path:
    text = os.fspath(path)
    return Path(text[len("file://") :] if text.startswith("file://") else text)


def as_path(path: PathLike) -> Any:
    """``path`` as something this module can read: a local ``Path``, or a ``UPath`` for ``scheme://`` URIs.

    Credentials for URIs come from fsspec's usual sources (environment, config); inside Airflow pass an
    ``ObjectStoragePath`` with a ``conn_id`` instead.
    """
    if _is_local(path):
        return _local(path)
    if hasattr(path, "fs"):
        return path
    try:
        from upath import UPath
    except ImportError:  # pragma: no cover - upath ships with Airflow
        raise AisecInputError(f"reading {path} needs universal_pathlib (upath)") from None
    return UPath(os.fspath(path))


# --------------------------------------------------------------------------- single files
@dataclass(frozen=True)
class FileDigest:
    """Digest of one file, with the size that was actually read."""

    digest: str
    size: int


def _fingerprint_local(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class _Progress:
    """Thread-safe byte counter that logs ``done/total`` and the rate at most every few seconds."""

    def __init__(self, total: int, label: str, interval: float | None = None) -> None:
        self.total, self.label = total, label
        self.interval = PROGRESS_INTERVAL_SECONDS if interval is None else interval
        self.done = 0
        self._t0 = self._last = time.monotonic()
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
        elapsed = max(now - self._t0, 1e-9)
        log.info(
            "hashing %s: %.1f/%.1f MiB (%.0f%%), %.1f MiB/s",
            self.label,
            self.done / 2**20,
            self.total / 2**20,
            100.0 * self.done / self.total if self.total else 100.0,
            self.done / 2**20 / elapsed,
        )


def _hash_stream(fh: BinaryIO, hasher: Any, progress: _Progress | None) -> int:
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    size = 0
    readinto = getattr(fh, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            if not n:
                break
            hasher.update(view[:n])
        else:  # file-likes without readinto (some object stores)
            chunk = fh.read(CHUNK_SIZE)
            if not chunk:
                break
            n = len(chunk)
            hasher.update(chunk)
        size += n
        if progress is not None:
            progress.add(n)
    return size


def digest_file(path: PathLike, algorithm: str = "sha256", *, _progress: _Progress | None = None) -> FileDigest:
    """Hash one file; return its digest and the number of bytes read.

    :raises AisecUndecidableError: the file is missing, unreadable, or changed while it was hashed.
    """
    hasher = new_hasher(algorithm)
    path = as_path(path)
    if isinstance(path, Path):
        p = path
        try:
            with open(p, "rb", buffering=0) as fh:
                before = os.fstat(fh.fileno())
                if not stat_module.S_ISREG(before.st_mode):
                    raise AisecUndecidableError(f"not a regular file: {p}")
                size = _hash_stream(fh, hasher, _progress)  # type: ignore[arg-type]
                after = os.fstat(fh.fileno())
            now = os.stat(p)
        except FileNotFoundError:
            raise AisecUndecidableError(f"file not found: {p}") from None
        except IsADirectoryError:
            raise AisecUndecidableError(f"not a regular file: {p}") from None
        except PermissionError as exc:
            raise AisecUndecidableError(f"file is not readable: {p} ({exc.strerror})") from None
        except OSError as exc:
            raise AisecUndecidableError(f"cannot read {p}: {exc.strerror or exc}") from None
        if (
            _fingerprint_local(before) != _fingerprint_local(after)
            or _fingerprint_local(after) != _fingerprint_local(now)
            or size != after.st_size
        ):
            raise AisecUndecidableError(f"file changed while it was being hashed: {p}")
        return FileDigest(hasher.hexdigest(), size)
    # object storage (ObjectStoragePath / UPath): compare size and ETag-like info around the read
    try:
        before_info = _remote_fingerprint(path)
        with path.open("rb") as fh:
            size = _hash_stream(fh, hasher, _progress)
        after_info = _remote_fingerprint(path)
    except FileNotFoundError:
        raise AisecUndecidableError(f"object not found: {path}") from None
    except PermissionError as exc:
        raise AisecUndecidableError(f"object is not readable: {path} ({exc})") from None
    except OSError as exc:
        raise AisecUndecidableError(f"cannot read {path}: {exc}") from None
    if before_info != after_info or (before_info[0] is not None and before_info[0] != size):
        raise AisecUndecidableError(f"object changed while it was being hashed: {path}")
    return FileDigest(hasher.hexdigest(), size)


def _remote_fingerprint(path: Any) -> tuple[Any, Any]:
    info = path.fs.info(path.path) if hasattr(path, "fs") and hasattr(path, "path") else {}
    return (info.get("size"), info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified"))


def hash_file(path: PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of the file at ``path`` (streamed; constant memory).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "abc")
    >>> _ = open(p, "wb").write(b"abc")
    >>> hash_file(p)
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    return digest_file(path, algorithm).digest


# --------------------------------------------------------------------------- manifests
@dataclass(frozen=True)
class _Item:
    rel: str  # relative POSIX path
    target: Any  # path to read (None for links)
    size: int
    link: str | None = None


def _walk_local(root: Path, follow_symlinks: bool) -> Iterator[_Item]:
    real_root = root.resolve()

    def visit(directory: Path, rel: PurePosixPath) -> Iterator[_Item]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except PermissionError as exc:
            raise AisecUndecidableError(f"directory is not readable: {directory} ({exc.strerror})") from None
        for entry in entries:
            entry_rel = rel / entry.name
            if entry.is_symlink():
                target = os.readlink(entry.path)
                resolved = Path(entry.path).resolve()
                escapes = resolved != real_root and real_root not in resolved.parents
                if not follow_symlinks:
                    yield _Item(str(entry_rel), None, 0, link=target)
                    continue
                if escapes:
                    raise AisecInputError(
                        f"symlink {entry_rel} points outside the root ({target}); refusing to follow it"
                    )
                if resolved.is_dir():
                    yield from visit(Path(entry.path), entry_rel)
                elif resolved.is_file():
                    yield _Item(str(entry_rel), resolved, resolved.stat().st_size)
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from visit(Path(entry.path), entry_rel)
            elif entry.is_file(follow_symlinks=False):
                yield _Item(str(entry_rel), Path(entry.path), entry.stat(follow_symlinks=False).st_size)
            # sockets, fifos, devices: not artifacts; skipped

    if root.is_symlink() and not follow_symlinks:
        raise AisecInputError(f"the root {root} is a symlink; pass follow_symlinks=True to hash its target")
    if root.is_file():
        yield _Item(root.name, root, root.stat().st_size)
        return
    if not root.is_dir():
        raise AisecUndecidableError(f"path not found: {root}")
    yield from visit(root, PurePosixPath())


def _walk_remote(root: Any) -> Iterator[_Item]:
    if not root.exists():
        raise AisecUndecidableError(f"path not found: {root}")
    if root.is_file():
        yield _Item(root.name, root, int(root.stat().st_size))
        return
    base = str(root).rstrip("/") + "/"
    items = []
    for p in root.rglob("*"):
        if p.is_file():
            rel = str(p)[len(base) :] if str(p).startswith(base) else p.name
            items.append(_Item(rel, p, int(p.stat().st_size)))
    yield from sorted(items, key=lambda i: i.rel)


def iter_files(root: PathLike, *, follow_symlinks: bool = False) -> list[_Item]:
    """Every file under ``root`` (sorted by relative path); ``root`` may be a single file."""
    root = as_path(root)
    if isinstance(root, Path):
        return sorted(_walk_local(root, follow_symlinks), key=lambda i: i.rel)
    return list(_walk_remote(root))


def _link_digest(link: str, algorithm: str) -> str:
    hasher = new_hasher(algorithm)
    hasher.update(b"symlink:" + os.fsencode(link))
    return hasher.hexdigest()


def root_digest(entries: Iterable[dict[str, Any]], algorithm: str) -> str:
    """Digest over sorted ``digest  size  path`` lines: one value that pins the whole tree."""
    hasher = new_hasher(algorithm)
    for e in sorted(entries, key=lambda e: e["path"]):
        hasher.update(f"{e['digest']}  {e['size']}  {e['path']}\n".encode())
    return hasher.hexdigest()


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _hash_items(
    items: list[_Item], algorithm: str, workers: int | None, label: str
) -> Iterator[tuple[_Item, FileDigest | Exception]]:
    total = sum(i.size for i in items)
    progress = _Progress(total, label)
    workers = workers or default_workers()

    def one(item: _Item) -> FileDigest | Exception:
        if item.link is not None:
            return FileDigest(_link_digest(item.link, algorithm), 0)
        try:
            return digest_file(item.target, algorithm, _progress=progress)
        except AisecUndecidableError as exc:
            return exc

    # Largest first keeps the pool busy; results are re-sorted by the caller.
    order = sorted(items, key=lambda i: -i.size)
    if workers == 1 or len(order) <= 1:
        for item in order:
            yield item, one(item)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aisec-hash") as pool:
            yield from zip(order, pool.map(one, order), strict=True)
    if total >= 256 * 2**20:
        elapsed = max(time.monotonic() - progress._t0, 1e-9)
        log.info(
            "hashed %s: %d file(s), %.1f MiB in %.2f s (%.1f MiB/s)",
            label,
            len(items),
            total / 2**20,
            elapsed,
            total / 2**20 / elapsed,
        )


def build_manifest(
    root: PathLike,
    algorithm: str = "sha256",
    workers: int | None = None,
    *,
    follow_symlinks: bool = False,
    on_unreadable: Callable[[str, Exception], None] | None = None,
) -> dict[str, Any]:
    """Hash every file under ``root`` and return an ``aisec.manifest/v1`` document.

    :param root: a directory or a single file (local path, ``file://`` URI or object-storage path).
    :param algorithm: ``sha256`` (default), ``sha512``, ``blake2b`` or ``blake3``.
    :param workers: threads hashing files in parallel (default: CPU count, at most 8).
    :param follow_symlinks: follow links whose target stays inside ``root`` (default: record links).
    :param on_unreadable: called for files that cannot be read; when ``None`` such a file raises
        :class:`AisecUndecidableError` (a manifest never silently omits a file).
    """
    new_hasher(algorithm)  # validate early
    items = iter_files(root, follow_symlinks=follow_symlinks)
    entries: list[dict[str, Any]] = []
    for item, result in _hash_items(items, algorithm, workers, str(root)):
        if isinstance(result, Exception):
            if on_unreadable is None:
                raise result
            on_unreadable(item.rel, result)
            continue
        entry: dict[str, Any] = {"path": item.rel, "size": result.size, "digest": result.digest}
        if item.link is not None:
            entry["link"] = item.link
        entries.append(entry)
    entries.sort(key=lambda e: e["path"])
    return {
        "schema": MANIFEST_SCHEMA,
        "algorithm": algorithm,
        "root": str(root),
        "file_count": len(entries),
        "total_bytes": sum(e["size"] for e in entries),
        "root_digest": root_digest(entries, algorithm),
        "entries": entries,
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Canonical serialisation (sorted keys, 2-space indent, UTF-8): what is written and signed."""
    import json

    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def parse_manifest(data: bytes | str, source: str = "manifest") -> dict[str, Any]:
    """Parse and validate manifest bytes; :class:`AisecInputError` names ``source`` when malformed."""
    import json

    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AisecInputError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA:
        raise AisecInputError(f"{source} is not an {MANIFEST_SCHEMA} manifest")
    entries = doc.get("entries")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and {"path", "size", "digest"} <= set(e) for e in entries
    ):
        raise AisecInputError(f"{source} has malformed entries")
    for e in entries:
        rel = PurePosixPath(e["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise AisecInputError(f"{source} has an entry outside its root: {e['path']!r}")
    new_hasher(doc.get("algorithm", ""))
    if root_digest(entries, doc["algorithm"]) != doc.get("root_digest"):
        raise AisecInputError(f"{source} root digest does not match its entries (edited manifest?)")
    return doc
