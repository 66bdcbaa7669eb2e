"""Streaming hashes and manifests of files and directories (local paths or object storage).

* :func:`hash_file` streams a file in fixed-size chunks into a reusable buffer: constant memory,
  throughput of ``hashlib`` itself. A file whose size or modification time changes while it is read
  raises :class:`~airflow_aisec.exceptions.AisecUndecidableError` instead of recording a digest of
  bytes that never existed together.
* :func:`build_manifest` hashes every file under a root with a bounded thread pool (``hashlib``
  releases the GIL on large updates, so threads hash in parallel), records relative POSIX paths,
  entry types (file / symlink), sizes and digests, every directory, and a root digest.
* :func:`root_digest` (manifest ``aisec.manifest/v2``) hashes an unambiguous, length-prefixed
  encoding that starts with the domain-separation tag :data:`ROOT_DIGEST_TAG` and carries the
  algorithm, the artifact kind (file / directory) and, per entry, its type, exact path bytes, size,
  digest and link target. Two different trees cannot share a root digest without a hash collision,
  and a single file can only reproduce a directory's root digest if its content starts with
  :data:`ROOT_DIGEST_TAG` (which verification against a bare digest refuses, see ``core.integrity``).
* ``aisec.manifest/v1`` documents (root digest over text lines, ambiguous) are still parsed and
  verified entry by entry; their v1 root digest only checks that the document is self-consistent.

Nothing is dropped silently: special files (FIFO, socket, device) are never opened and make
:func:`build_manifest` raise (or are reported through ``on_special``); a name that is not UTF-8 or
that holds a backslash cannot be recorded faithfully and is an error. Symbolic links are never
followed by default: they are recorded as links (their target text is hashed), so a link swapped to
point elsewhere is detected. With ``follow_symlinks=True`` a link is followed only when its resolved
target stays inside the root; one escaping the root, a dangling link and a link loop are errors.

Object storage: any path object with ``open("rb")``/``stat()``/``iterdir()`` (Airflow's
``ObjectStoragePath``, a ``UPath``) works; this module never imports Airflow.
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

# The manifest value and its format live in core.manifest, the walk in core.walk; the names below stay
# importable from here (see __all__).
from airflow_aisec.core.manifest import (
    _DIR,
    _FILE,
    _LINK,
    ALGORITHMS,
    ENTRY_TYPES,
    MANIFEST_SCHEMA,
    MANIFEST_SCHEMA_V1,
    MANIFEST_SCHEMAS,
    MAX_ENTRIES,
    MAX_MANIFEST_BYTES,
    MAX_NAME_CHARS,
    MAX_PATH_CHARS,
    ROOT_DIGEST_TAG,
    Entry,
    Manifest,
    _hex_length,
    _link_digest,
    available_algorithms,
    check_rel_path,
    hex_length,
    link_digest,
    manifest_bytes,
    new_hasher,
    parse_manifest,
    root_digest,
    root_digest_encoding,
)
from airflow_aisec.core.walk import (
    MAX_WALK_ITEMS,
    ArtifactChangedError,
    _Item,
    _recheck_directories,
    _walk_with_root,
    special_kind,
    walk,
)
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.utils.cpus import available_cpus
from airflow_aisec.utils.progress import Progress
from airflow_aisec.utils.uri import is_remote, local_path

log = logging.getLogger(__name__)

#: Read size: large enough to amortise Python overhead, small enough to stay cache-friendly.
CHUNK_SIZE = 1 << 20
PROGRESS_INTERVAL_SECONDS = 10.0

PathLike = str | os.PathLike[str] | Any  # Any: object-storage paths (duck-typed)

__all__ = [  # this module's API, and the names it re-exports from core.manifest and core.walk
    "PathLike",
    "CHUNK_SIZE",
    "HEAD_BYTES",
    "FileDigest",
    "as_path",
    "digest_file",
    "hash_file",
    "file_sha256",
    "iter_files",
    "default_workers",
    "hash_manifest",
    "build_manifest",
    "read_evidence",
    "_DIR",
    "_FILE",
    "_LINK",
    "ALGORITHMS",
    "ENTRY_TYPES",
    "MANIFEST_SCHEMA",
    "MANIFEST_SCHEMA_V1",
    "MANIFEST_SCHEMAS",
    "MAX_ENTRIES",
    "MAX_MANIFEST_BYTES",
    "MAX_NAME_CHARS",
    "MAX_PATH_CHARS",
    "ROOT_DIGEST_TAG",
    "Entry",
    "Manifest",
    "_hex_length",
    "_link_digest",
    "available_algorithms",
    "check_rel_path",
    "hex_length",
    "link_digest",
    "manifest_bytes",
    "new_hasher",
    "parse_manifest",
    "root_digest",
    "root_digest_encoding",
    "MAX_WALK_ITEMS",
    "ArtifactChangedError",
    "_Item",
    "walk",
    "special_kind",
]


def _is_local(path: PathLike) -> bool:
    """Local path (str, PathLike or ``file://`` URI) vs object storage (a path object with ``.fs``, or a URI)."""
    return not hasattr(path, "fs") and not is_remote(path)


def _local(path: PathLike) -> Path:
    return Path(local_path(path))


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
    """Digest of one file, with the size that was actually read and its first bytes."""

    digest: str
    size: int
    head: bytes = b""  # the first HEAD_BYTES bytes read (to recognise a root-digest preimage)


#: How many leading bytes :class:`FileDigest` keeps.
HEAD_BYTES = 64


def _fingerprint_local(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _Progress(total: int, label: str, interval: float | None = None) -> Progress:
    """Byte progress of hashing ``label``: MiB done/total, rate, ETA (``utils.progress``)."""
    return Progress(
        f"hashing {label}",
        total,
        unit="MiB",
        scale=2**20,
        logger=log,
        interval=PROGRESS_INTERVAL_SECONDS if interval is None else interval,
    )


def _hash_stream(fh: BinaryIO, hasher: Any, progress: Progress | None) -> tuple[int, bytes]:
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    size = 0
    head = b""
    readinto = getattr(fh, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            if not n:
                break
            hasher.update(view[:n])
            if len(head) < HEAD_BYTES:
                head += bytes(view[: min(n, HEAD_BYTES - len(head))])
        else:  # file-likes without readinto (some object stores)
            chunk = fh.read(CHUNK_SIZE)
            if not chunk:
                break
            n = len(chunk)
            hasher.update(chunk)
            if len(head) < HEAD_BYTES:
                head += bytes(chunk[: HEAD_BYTES - len(head)])
        size += n
        if progress is not None:
            progress.advance(n)
    return size, head


def _open_regular(p: Path, nofollow: bool) -> BinaryIO:
    """Open ``p`` for reading without ever blocking on a FIFO or device; refuse anything but a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    if nofollow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        st = os.stat(p, follow_symlinks=not nofollow)
    except FileNotFoundError:
        raise AisecUndecidableError(f"file not found: {p}") from None
    except OSError as exc:
        raise AisecUndecidableError(f"cannot stat {p}: {exc.strerror or exc}") from None
    if not stat_module.S_ISREG(st.st_mode):  # never open FIFOs, sockets, devices or directories
        raise AisecUndecidableError(f"not a regular file: {p} ({special_kind(st.st_mode)})")
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise AisecUndecidableError(f"file not found: {p}") from None
    except PermissionError as exc:
        raise AisecUndecidableError(f"file is not readable: {p} ({exc.strerror})") from None
    except OSError as exc:
        raise AisecUndecidableError(f"cannot read {p}: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat_module.S_ISREG(st.st_mode):  # swapped between stat and open
        os.close(fd)
        raise AisecUndecidableError(f"not a regular file: {p} ({special_kind(st.st_mode)})")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=0)


def digest_file(
    path: PathLike, algorithm: str = "sha256", *, _progress: Progress | None = None, _nofollow: bool = False
) -> FileDigest:
    """Hash one file; return its digest and the number of bytes read.

    A FIFO, socket or device is never opened (it could block forever or have side effects).

    :raises AisecUndecidableError: the file is missing, unreadable, not a regular file, or changed
        while it was hashed.
    """
    hasher = new_hasher(algorithm)
    path = as_path(path)
    if isinstance(path, Path):
        p = path
        try:
            with _open_regular(p, _nofollow) as fh:
                before = os.fstat(fh.fileno())
                size, head = _hash_stream(fh, hasher, _progress)
                after = os.fstat(fh.fileno())
            now = os.stat(p, follow_symlinks=not _nofollow)
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
            raise ArtifactChangedError(f"file changed while it was being hashed: {p}")
        return FileDigest(hasher.hexdigest(), size, head)
    # object storage (ObjectStoragePath / UPath): compare size and ETag-like info around the read
    try:
        before_info = _remote_fingerprint(path)
        with path.open("rb") as fh:
            size, head = _hash_stream(fh, hasher, _progress)
        after_info = _remote_fingerprint(path)
    except FileNotFoundError:
        raise AisecUndecidableError(f"object not found: {path}") from None
    except PermissionError as exc:
        raise AisecUndecidableError(f"object is not readable: {path} ({exc})") from None
    except OSError as exc:
        raise AisecUndecidableError(f"cannot read {path}: {exc}") from None
    if before_info != after_info or (before_info[0] is not None and before_info[0] != size):
        raise ArtifactChangedError(f"object changed while it was being hashed: {path}")
    return FileDigest(hasher.hexdigest(), size, head)


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


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of the file at ``path``: :func:`hash_file` (chunked reads, constant memory, a file that
    changes while it is read raises :class:`ArtifactChangedError`). The one helper for a file's SHA-256.
    """
    return hash_file(path, "sha256")


# --------------------------------------------------------------------------- manifests
def iter_files(root: PathLike, *, follow_symlinks: bool = False) -> list[_Item]:
    """Every entry under ``root`` (files, links, directories, special files), sorted by relative path.

    ``root`` may be a single file (one item with ``is_root``).
    """
    return walk(as_path(root), follow_symlinks)


def default_workers() -> int:
    """Hashing threads by default: one per CPU this process may use (affinity, cgroup quota), at most 8."""
    return min(8, available_cpus())


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
            return digest_file(item.target, algorithm, _progress=progress, _nofollow=isinstance(item.target, Path))
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
        elapsed = max(time.monotonic() - progress.started, 1e-9)
        log.info(
            "hashed %s: %d file(s), %.1f MiB in %.2f s (%.1f MiB/s)",
            label,
            len(items),
            total / 2**20,
            elapsed,
            total / 2**20 / elapsed,
        )


def hash_manifest(
    root: PathLike,
    algorithm: str = "sha256",
    workers: int | None = None,
    *,
    follow_symlinks: bool = False,
    on_unreadable: Callable[[str, Exception], None] | None = None,
    on_special: Callable[[str, str], None] | None = None,
    observe: dict[str, Any] | None = None,
) -> Manifest:
    """Hash every file under ``root`` into an ``aisec.manifest/v2`` :class:`Manifest`.

    :param root: a directory or a single file (local path, ``file://`` URI or object-storage path).
    :param algorithm: ``sha256`` (default), ``sha512``, ``blake2b`` or ``blake3``.
    :param workers: threads hashing files in parallel (default: CPU count, at most 8).
    :param follow_symlinks: follow links whose target stays inside ``root`` (default: record links).
    :param on_unreadable: called for files that cannot be read; when ``None`` such a file raises
        :class:`AisecUndecidableError` (a manifest never silently omits a file).
    :param on_special: called with ``(path, kind)`` for each FIFO, socket or device (never opened);
        when ``None`` any special file raises :class:`AisecUndecidableError`.
    :param observe: when given, filled with what a policy may want to refuse: ``symlinks`` (links
        recorded or followed), ``hardlinks`` (files with more than one link), ``foreign_device``
        (entries on another filesystem than the root: mount points) and ``tree_preimage`` (the
        artifact is a single file whose content starts with :data:`ROOT_DIGEST_TAG`).
    """
    new_hasher(algorithm)  # validate early
    walked = as_path(root)
    items, walked_dirs = _walk_with_root(walked, follow_symlinks)
    kind = "file" if len(items) == 1 and items[0].is_root else "directory"
    specials = [i for i in items if i.kind not in (_FILE, _LINK, _DIR)]
    if specials:
        if on_special is None:
            shown = ", ".join(f"{i.rel} ({i.kind})" for i in specials[:5])
            raise AisecUndecidableError(
                f"{len(specials)} special file(s) under {root} (never opened, cannot be hashed): {shown}"
            )
        for i in specials:
            on_special(i.rel, i.kind)
    directories = [i.rel for i in items if i.kind == _DIR]
    hashable = [i for i in items if i.kind in (_FILE, _LINK)]
    entries: list[Entry] = []
    heads: dict[str, bytes] = {}
    for item, result in _hash_items(hashable, algorithm, workers, str(root)):
        if isinstance(result, Exception):
            if on_unreadable is None:
                raise result
            on_unreadable(item.rel, result)
            continue
        heads[item.rel] = result.head
        entries.append(Entry(path=item.rel, type=item.kind, size=result.size, digest=result.digest, link=item.link))
    if walked_dirs:
        _recheck_directories(walked, walked_dirs)
    if observe is not None:
        observe["symlinks"] = sorted({i.rel for i in items if i.kind == _LINK or (i.via_link and i.rel)})
        observe["hardlinks"] = [i.rel for i in items if i.kind == _FILE and i.nlink > 1]
        observe["foreign_device"] = [i.rel for i in items if i.foreign_device]
        observe["tree_preimage"] = kind == "file" and any(h.startswith(ROOT_DIGEST_TAG) for h in heads.values())
    return Manifest.build(kind=kind, algorithm=algorithm, entries=entries, directories=directories, root=str(root))


def build_manifest(
    root: PathLike, algorithm: str = "sha256", workers: int | None = None, **options: Any
) -> dict[str, Any]:
    """:func:`hash_manifest` as the plain ``aisec.manifest/v2`` document (:meth:`Manifest.document`)."""
    return hash_manifest(root, algorithm, workers, **options).document()


def read_evidence(path: str | os.PathLike[str], what: str, *, limit: int = MAX_MANIFEST_BYTES) -> bytes:
    """Read a small local evidence file (manifest, signature, key) without ever blocking on a FIFO.

    :raises AisecUndecidableError: missing, unreadable, not a regular file, or larger than ``limit``.
    """
    p = Path(os.fspath(path))
    if not os.path.lexists(p):
        raise AisecUndecidableError(f"{what} not found: {p}")
    try:
        with _open_regular(p, nofollow=False) as fh:
            data = fh.read(limit + 1)
    except AisecUndecidableError as exc:
        raise AisecUndecidableError(f"{what}: {exc}") from None
    except OSError as exc:
        raise AisecUndecidableError(f"{what} is not readable: {p} ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise AisecUndecidableError(f"{what} {p} is larger than {limit} bytes")
    return bytes(data)
