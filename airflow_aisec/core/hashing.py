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

import hashlib
import logging
import os
import posixpath
import stat as stat_module
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError, ArtifactNotReady
from airflow_aisec.utils.uri import is_remote, local_path

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "aisec.manifest/v2"
#: The legacy schema: still parsed and verified entry by entry (its root digest is ambiguous).
MANIFEST_SCHEMA_V1 = "aisec.manifest/v1"
MANIFEST_SCHEMAS = (MANIFEST_SCHEMA, MANIFEST_SCHEMA_V1)
#: Domain-separation tag that starts the byte string hashed into a v2 root digest.
ROOT_DIGEST_TAG = b"aisec.root-digest/v2\x00"
#: Entry types of a v2 manifest (directories are listed separately, under ``directories``).
ENTRY_TYPES = ("file", "symlink")
#: Largest manifest document accepted (bytes) and most entries in one manifest.
MAX_MANIFEST_BYTES = 256 * 2**20
MAX_ENTRIES = 5_000_000
#: Longest relative path and path segment accepted in a manifest (characters).
MAX_PATH_CHARS = 4096
MAX_NAME_CHARS = 255
#: Read size: large enough to amortise Python overhead, small enough to stay cache-friendly.
CHUNK_SIZE = 1 << 20
#: Algorithms always available; ``blake3`` is added when the optional package is installed.
ALGORITHMS = ("sha256", "sha512", "blake2b")
PROGRESS_INTERVAL_SECONDS = 10.0

PathLike = str | os.PathLike[str] | Any  # Any: object-storage paths (duck-typed)


class ArtifactChangedError(ArtifactNotReady, AisecUndecidableError):
    """The file or object changed while it was being hashed: not ready yet (the integrity sensor waits).

    An :class:`~airflow_aisec.exceptions.ArtifactNotReady` (transient: an operator retries), and still an
    :class:`AisecUndecidableError` so that a per-file change is recorded like any unreadable file.
    """


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


def _hash_stream(fh: BinaryIO, hasher: Any, progress: _Progress | None) -> tuple[int, bytes]:
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
            progress.add(n)
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


def special_kind(mode: int) -> str:
    """``"fifo"``, ``"socket"``, ``"char-device"``, ``"block-device"``, ``"directory"``, ``"symlink"`` or ``"file"``."""
    if stat_module.S_ISFIFO(mode):
        return "fifo"
    if stat_module.S_ISSOCK(mode):
        return "socket"
    if stat_module.S_ISCHR(mode):
        return "char-device"
    if stat_module.S_ISBLK(mode):
        return "block-device"
    if stat_module.S_ISDIR(mode):
        return "directory"
    if stat_module.S_ISLNK(mode):
        return "symlink"
    return "file" if stat_module.S_ISREG(mode) else "unknown"


def digest_file(
    path: PathLike, algorithm: str = "sha256", *, _progress: _Progress | None = None, _nofollow: bool = False
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


# --------------------------------------------------------------------------- manifests
#: Most filesystem entries one walk visits (links followed with ``follow_symlinks`` can multiply them).
MAX_WALK_ITEMS = 2_000_000
_DIR, _FILE, _LINK = "dir", "file", "symlink"
_ROOT = "root"  # the walked root directory itself (identity only; never recorded in a manifest)


@dataclass(frozen=True)
class _Item:
    rel: str  # relative POSIX path
    target: Any  # path to read (None for links, directories and special files)
    size: int
    link: str | None = None
    kind: str = _FILE  # file | symlink | dir | fifo | socket | char-device | block-device | unknown
    nlink: int = 1
    foreign_device: bool = False  # on another filesystem than the root (a mount point or below one)
    via_link: bool = False  # reached by following a symlink
    is_root: bool = False  # the root itself is this single file
    ident: tuple[int, int] | None = None  # (device, inode) of a local directory when it was walked


def check_rel_path(path: Any, where: str, *, legacy: bool = False) -> str:
    """Refuse a manifest path that is not a canonical relative POSIX path inside the root.

    Refused: non-strings, empty names, NUL, backslashes, absolute paths, drive letters, ``.``/``..``
    or empty segments, and text that is not valid Unicode (lone surrogates). ``legacy`` (v1) also
    refuses newlines, which make the v1 root digest ambiguous.
    """
    if not isinstance(path, str) or not path:
        raise AisecInputError(f"{where}: entry path must be a non-empty string")
    shown = path[:200].encode("unicode_escape").decode("ascii")
    if "\x00" in path:
        raise AisecInputError(f"{where}: entry path contains NUL: {shown!r}")
    if "\\" in path:
        raise AisecInputError(f"{where}: entry path contains a backslash (ambiguous separator): {shown!r}")
    if path.startswith("/") or (len(path) >= 2 and path[1] == ":" and path[0].isalpha()):
        raise AisecInputError(f"{where}: entry outside its root (absolute path): {shown!r}")
    if len(path) > MAX_PATH_CHARS or any(len(seg) > MAX_NAME_CHARS for seg in path.split("/")):
        raise AisecInputError(f"{where}: entry path is longer than a file system allows: {shown[:60]!r}…")
    if any(seg in ("", ".", "..") for seg in path.split("/")):
        raise AisecInputError(f"{where}: entry outside its root or not canonical ('', '.', '..' segment): {shown!r}")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise AisecInputError(f"{where}: entry path is not valid Unicode: {shown!r}") from None
    if legacy and ("\n" in path or "\r" in path):
        raise AisecInputError(f"{where}: v1 entry path contains a line break (ambiguous v1 root digest): {shown!r}")
    return path


def _recordable(rel: str, full: Any) -> str:
    """A walked name must be recordable exactly: UTF-8 and no backslash; else the walk cannot decide."""
    try:
        return check_rel_path(rel, "walk")
    except AisecInputError:
        shown = os.fsencode(os.fspath(full)).decode("utf-8", "backslashreplace")[:300]
        raise AisecUndecidableError(
            f"cannot record {shown!r} exactly in a manifest (name is not UTF-8 or holds a backslash)"
        ) from None


def _check_link_text(target: str, full: Any) -> None:
    try:
        target.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(os.fspath(full)).decode("utf-8", "backslashreplace")[:300]
        raise AisecUndecidableError(f"cannot record the target of link {shown!r} exactly (not UTF-8)") from None


def _walk_local(root: Path, follow_symlinks: bool) -> list[_Item]:
    if root.is_symlink() and not follow_symlinks:
        raise AisecInputError(f"the root {root} is a symlink; pass follow_symlinks=True to hash its target")
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise AisecUndecidableError(f"path not found: {root}") from None
    except OSError as exc:
        raise AisecUndecidableError(f"cannot stat {root}: {exc.strerror or exc}") from None
    if stat_module.S_ISREG(st.st_mode):
        name = _recordable(root.name, root)
        real = root.resolve() if root.is_symlink() else root  # follow_symlinks: read the target itself
        return [_Item(name, real, st.st_size, nlink=st.st_nlink, is_root=True)]
    if not stat_module.S_ISDIR(st.st_mode):
        raise AisecUndecidableError(f"{root} is a {special_kind(st.st_mode)}, not a file or directory; never opened")
    real_root = root.resolve()
    root_dev = st.st_dev
    items: list[_Item] = [_Item("", None, 0, kind=_ROOT, ident=(st.st_dev, st.st_ino))]
    # (directory to list, its relative path, (dev, inode) of it and its ancestors, reached through a link)
    stack: list[tuple[Path, PurePosixPath, frozenset[tuple[int, int]], bool, tuple[int, int]]] = [
        (root, PurePosixPath(), frozenset({(st.st_dev, st.st_ino)}), False, (st.st_dev, st.st_ino))
    ]

    def same_directory(directory: Path, ident: tuple[int, int], is_root: bool) -> None:
        """The directory listed is the one the walk classified (not swapped for a link meanwhile)."""
        try:
            now = os.stat(directory) if is_root else os.lstat(directory)
        except OSError as exc:
            raise AisecUndecidableError(f"cannot stat {directory}: {exc.strerror or exc}") from None
        if not stat_module.S_ISDIR(now.st_mode) or (now.st_dev, now.st_ino) != ident:
            raise ArtifactChangedError(f"directory changed while it was being walked: {directory}")

    while stack:
        directory, rel, ancestors, via, ident = stack.pop()
        same_directory(directory, ident, directory is root)
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except PermissionError as exc:
            raise AisecUndecidableError(f"directory is not readable: {directory} ({exc.strerror})") from None
        except OSError as exc:
            raise AisecUndecidableError(f"cannot list {directory}: {exc.strerror or exc}") from None
        same_directory(directory, ident, directory is root)
        if len(items) + len(entries) > MAX_WALK_ITEMS:
            raise AisecUndecidableError(f"{root}: more than {MAX_WALK_ITEMS} entries; refusing to walk further")
        for entry in entries:
            entry_rel = rel / entry.name
            name = _recordable(str(entry_rel), entry.path)
            try:
                lst = entry.stat(follow_symlinks=False)
            except OSError as exc:
                raise AisecUndecidableError(f"cannot stat {entry.path}: {exc.strerror or exc}") from None
            mode = lst.st_mode
            if stat_module.S_ISLNK(mode):
                try:
                    target = os.readlink(entry.path)
                except OSError as exc:
                    raise AisecUndecidableError(f"cannot read link {entry.path}: {exc.strerror or exc}") from None
                if not follow_symlinks:
                    _check_link_text(target, entry.path)
                    items.append(_Item(name, None, 0, link=target, kind=_LINK, via_link=via))
                    continue
                try:
                    resolved = Path(entry.path).resolve(strict=True)
                except (OSError, RuntimeError) as exc:
                    raise AisecUndecidableError(f"symlink {name} is dangling or loops ({target}): {exc}") from None
                if resolved != real_root and real_root not in resolved.parents:
                    raise AisecInputError(f"symlink {name} points outside the root ({target}); refusing to follow it")
                try:
                    rst = os.stat(resolved)
                except OSError as exc:
                    raise AisecUndecidableError(f"cannot stat {resolved}: {exc.strerror or exc}") from None
                foreign = rst.st_dev != root_dev
                if stat_module.S_ISDIR(rst.st_mode):
                    key = (rst.st_dev, rst.st_ino)
                    if key in ancestors:
                        raise AisecUndecidableError(f"symlink {name} loops back to one of its parents ({target})")
                    items.append(_Item(name, None, 0, kind=_DIR, foreign_device=foreign, via_link=True, ident=key))
                    stack.append((resolved, entry_rel, ancestors | {key}, True, key))
                elif stat_module.S_ISREG(rst.st_mode):
                    items.append(
                        _Item(name, resolved, rst.st_size, nlink=rst.st_nlink, foreign_device=foreign, via_link=True)
                    )
                else:
                    items.append(_Item(name, None, 0, kind=special_kind(rst.st_mode), via_link=True))
                continue
            foreign = lst.st_dev != root_dev
            if stat_module.S_ISDIR(mode):
                child = (lst.st_dev, lst.st_ino)
                items.append(_Item(name, None, 0, kind=_DIR, foreign_device=foreign, via_link=via, ident=child))
                stack.append((Path(entry.path), entry_rel, ancestors | {child}, via, child))
            elif stat_module.S_ISREG(mode):
                items.append(
                    _Item(
                        name,
                        Path(entry.path),
                        lst.st_size,
                        nlink=lst.st_nlink,
                        foreign_device=foreign,
                        via_link=via,
                    )
                )
            else:  # FIFO, socket, device: reported by the caller, never opened
                items.append(_Item(name, None, 0, kind=special_kind(mode), via_link=via))
    return items


def _walk_remote(root: Any) -> list[_Item]:
    if not root.exists():
        raise AisecUndecidableError(f"path not found: {root}")
    if root.is_file():
        return [_Item(_recordable(root.name, root), root, int(root.stat().st_size), is_root=True)]
    base = str(root).rstrip("/") + "/"
    items = []
    for p in root.rglob("*"):
        text = str(p)
        if not text.startswith(base):
            raise AisecUndecidableError(f"object {text!r} is not under {base!r}; cannot name it relative to the root")
        rel = _recordable(text[len(base) :].rstrip("/"), text)
        if p.is_file():
            items.append(_Item(rel, p, int(p.stat().st_size)))
        elif p.is_dir():
            items.append(_Item(rel, None, 0, kind=_DIR))
        else:
            items.append(_Item(rel, None, 0, kind="unknown"))
        if len(items) > MAX_WALK_ITEMS:
            raise AisecUndecidableError(f"{root}: more than {MAX_WALK_ITEMS} entries; refusing to walk further")
    return items


def iter_files(root: PathLike, *, follow_symlinks: bool = False) -> list[_Item]:
    """Every entry under ``root`` (files, links, directories, special files), sorted by relative path.

    ``root`` may be a single file (one item with ``is_root``).
    """
    root = as_path(root)
    items = _walk_local(root, follow_symlinks) if isinstance(root, Path) else _walk_remote(root)
    return sorted((i for i in items if i.kind != _ROOT), key=lambda i: i.rel)


def _walk_with_root(root: Any, follow_symlinks: bool) -> tuple[list[_Item], list[_Item]]:
    """:func:`iter_files`, and the directories (with the root) whose identity is re-checked after hashing."""
    if not isinstance(root, Path):
        return iter_files(root, follow_symlinks=follow_symlinks), []
    items = _walk_local(root, follow_symlinks)
    dirs = [i for i in items if i.ident is not None]
    return sorted((i for i in items if i.kind != _ROOT), key=lambda i: i.rel), dirs


def _recheck_directories(root: Path, dirs: list[_Item]) -> None:
    """Every directory walked is still the same directory once its files are hashed.

    Files are opened by path after the walk: a directory swapped for a symlink in between would make
    them be read through the link (``O_NOFOLLOW`` only guards the last component).
    """
    for item in dirs:
        path = root / item.rel if item.rel else root
        try:
            now = os.stat(path) if (item.via_link or not item.rel) else os.lstat(path)
        except OSError as exc:
            raise ArtifactChangedError(
                f"directory changed while it was being hashed: {path} ({exc.strerror})"
            ) from None
        if not stat_module.S_ISDIR(now.st_mode) or (now.st_dev, now.st_ino) != item.ident:
            raise ArtifactChangedError(f"directory changed while it was being hashed: {path}")


def _link_digest(link: str, algorithm: str) -> str:
    hasher = new_hasher(algorithm)
    hasher.update(b"symlink:" + os.fsencode(link))
    return hasher.hexdigest()


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def root_digest(
    entries: Iterable[dict[str, Any]],
    algorithm: str,
    *,
    directories: Iterable[str] = (),
    kind: str = "directory",
    version: int = 2,
) -> str:
    """One value that pins the whole tree.

    Version 2: the hash of ``ROOT_DIGEST_TAG``, then length-prefixed fields (8-byte big-endian length,
    then the bytes) for the algorithm and the kind, the number of records, and per record, sorted by
    path bytes: type (``file``/``symlink``/``dir``), UTF-8 path, size (8 bytes), digest, link target.
    Version 1 (legacy, ambiguous): the hash of sorted ``digest  size  path`` text lines.
    """
    if version == 1:
        hasher = new_hasher(algorithm)
        for e in sorted(entries, key=lambda e: e["path"]):
            hasher.update(f"{e['digest']}  {e['size']}  {e['path']}\n".encode())
        return str(hasher.hexdigest())
    hasher = new_hasher(algorithm)
    for chunk in _encode_root(entries, algorithm, directories, kind):
        hasher.update(chunk)
    return str(hasher.hexdigest())


def _encode_root(
    entries: Iterable[dict[str, Any]], algorithm: str, directories: Iterable[str], kind: str
) -> Iterator[bytes]:
    records: list[tuple[bytes, bytes, int, bytes, bytes]] = []
    for e in entries:
        etype = e.get("type") or (_LINK if e.get("link") is not None else _FILE)
        link = e.get("link")
        records.append(
            (
                str(e["path"]).encode("utf-8"),
                str(etype).encode("ascii"),
                int(e["size"]),
                str(e["digest"]).encode("ascii"),
                os.fsencode(link) if link is not None else b"",
            )
        )
    for d in directories:
        records.append((str(d).encode("utf-8"), _DIR.encode(), 0, b"", b""))
    records.sort()
    yield (
        ROOT_DIGEST_TAG
        + _field(algorithm.encode("ascii"))
        + _field(kind.encode("ascii"))
        + len(records).to_bytes(8, "big")
    )
    for path, etype, size, digest, link in records:
        yield _field(etype) + _field(path) + size.to_bytes(8, "big") + _field(digest) + _field(link)


def root_digest_encoding(
    entries: Iterable[dict[str, Any]], algorithm: str, *, directories: Iterable[str] = (), kind: str = "directory"
) -> bytes:
    """The exact bytes a v2 root digest hashes (documentation and tests; :func:`root_digest` streams them)."""
    return b"".join(_encode_root(entries, algorithm, directories, kind))


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
    on_special: Callable[[str, str], None] | None = None,
    observe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Hash every file under ``root`` and return an ``aisec.manifest/v2`` document.

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
    entries: list[dict[str, Any]] = []
    heads: dict[str, bytes] = {}
    for item, result in _hash_items(hashable, algorithm, workers, str(root)):
        if isinstance(result, Exception):
            if on_unreadable is None:
                raise result
            on_unreadable(item.rel, result)
            continue
        entry: dict[str, Any] = {"path": item.rel, "type": item.kind, "size": result.size, "digest": result.digest}
        if item.link is not None:
            entry["link"] = item.link
        heads[item.rel] = result.head
        entries.append(entry)
    if walked_dirs:
        _recheck_directories(walked, walked_dirs)
    entries.sort(key=lambda e: e["path"])
    if observe is not None:
        observe["symlinks"] = sorted({i.rel for i in items if i.kind == _LINK or (i.via_link and i.rel)})
        observe["hardlinks"] = [i.rel for i in items if i.kind == _FILE and i.nlink > 1]
        observe["foreign_device"] = [i.rel for i in items if i.foreign_device]
        observe["tree_preimage"] = kind == "file" and any(h.startswith(ROOT_DIGEST_TAG) for h in heads.values())
    return {
        "schema": MANIFEST_SCHEMA,
        "algorithm": algorithm,
        "kind": kind,
        "root": str(root),
        "file_count": len(entries),
        "total_bytes": sum(e["size"] for e in entries),
        "root_digest": root_digest(entries, algorithm, directories=directories, kind=kind),
        "entries": entries,
        "directories": directories,
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Canonical serialisation (sorted keys, 2-space indent, UTF-8): what is written and signed."""
    import json

    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _hex_length(algorithm: str) -> int:
    return int(new_hasher(algorithm).digest_size) * 2


#: The top-level fields of an ``aisec.manifest/v2`` document.
_V2_FIELDS = frozenset(
    {"schema", "algorithm", "kind", "root", "file_count", "total_bytes", "root_digest", "entries", "directories"}
)


def parse_manifest(data: bytes | str, source: str = "manifest") -> dict[str, Any]:
    """Parse and validate untrusted manifest bytes (v2, or legacy v1); :class:`AisecInputError` names ``source``.

    Strict JSON (duplicate keys, NaN, huge numbers, deep nesting refused), exact types, canonical
    relative paths inside the root, no duplicate paths, digests of the algorithm's length, a root
    digest that matches the entries. The returned document always has ``version`` (1 or 2), entries
    with a ``type``, and ``directories`` (``None`` for v1, which did not record them).
    """
    from airflow_aisec.utils import strictjson as sj

    doc = sj.loads(data, source=source, max_bytes=MAX_MANIFEST_BYTES)
    if not isinstance(doc, dict) or doc.get("schema") not in MANIFEST_SCHEMAS:
        raise AisecInputError(f"{source} is not an {MANIFEST_SCHEMA} (or {MANIFEST_SCHEMA_V1}) manifest")
    legacy = doc["schema"] == MANIFEST_SCHEMA_V1
    if not legacy:  # v2 is exactly what build_manifest writes: a field it does not write is refused
        unknown = set(doc) - _V2_FIELDS
        if unknown:
            raise AisecInputError(f"{source}: unexpected field(s) {sorted(unknown)[:5]}")
    algorithm = sj.get_str(doc, "algorithm", source)
    if algorithm not in available_algorithms() and algorithm != "blake3":
        raise AisecInputError(f"{source}: unknown hash algorithm {algorithm[:40]!r}")
    hex_len = _hex_length(algorithm)
    raw_entries = doc.get("entries")
    if not isinstance(raw_entries, list):
        raise AisecInputError(f"{source} has malformed entries (expected an array)")
    if len(raw_entries) > MAX_ENTRIES:
        raise AisecInputError(f"{source} has {len(raw_entries)} entries (at most {MAX_ENTRIES})")
    allowed_keys = {"path", "size", "digest", "link"} | (set() if legacy else {"type"})
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, e in enumerate(raw_entries):
        where = f"{source} entries[{n}]"
        if not isinstance(e, dict) or not {"path", "size", "digest"} <= set(e):
            raise AisecInputError(f"{source} has malformed entries ({where}: needs path, size and digest)")
        extra = set(e) - allowed_keys
        if extra:
            raise AisecInputError(f"{where}: unexpected field(s) {sorted(extra)[:5]}")
        path = check_rel_path(e["path"], where, legacy=legacy)
        if path in seen:
            raise AisecInputError(f"{where}: duplicate entry {path!r}")
        seen.add(path)
        size = sj.get_int(e, "size", where, lo=0, hi=2**63 - 1)
        digest = sj.get_str(e, "digest", where)
        if len(digest) != hex_len or any(c not in "0123456789abcdef" for c in digest):
            raise AisecInputError(f"{where}: digest is not a lowercase {algorithm} hex digest")
        link = sj.get_str(e, "link", where, None)
        etype = (_LINK if link is not None else _FILE) if legacy else sj.get_str(e, "type", where)
        if etype not in ENTRY_TYPES:
            raise AisecInputError(f"{where}: unknown entry type {etype[:20]!r} (file or symlink)")
        if etype == _LINK:
            if link is None or not link or "\x00" in link:
                raise AisecInputError(f"{where}: a symlink entry needs a non-empty link target")
            try:
                link.encode("utf-8")
            except UnicodeEncodeError:
                raise AisecInputError(f"{where}: link target is not valid Unicode") from None
            if size != 0 or digest != _link_digest(link, algorithm):
                raise AisecInputError(f"{where}: symlink entry's size/digest do not match its link target")
        elif link is not None:
            raise AisecInputError(f"{where}: a file entry cannot have a link target")
        entry = {"path": path, "type": etype, "size": size, "digest": digest}
        if link is not None:
            entry["link"] = link
        entries.append(entry)
    directories: list[str] | None = None
    kind = sj.get_str(doc, "kind", source, None)
    if kind is not None and kind not in ("file", "directory"):
        raise AisecInputError(f"{source}: kind must be 'file' or 'directory'")
    if not legacy:
        if kind is None:
            raise AisecInputError(f"{source}: missing 'kind'")
        raw_dirs = sj.get_list(doc, "directories", source)
        if len(raw_dirs) + len(entries) > MAX_ENTRIES:
            raise AisecInputError(f"{source} has more than {MAX_ENTRIES} entries and directories")
        directories = []
        for n, d in enumerate(raw_dirs):
            path = check_rel_path(d, f"{source} directories[{n}]")
            if path in seen:
                raise AisecInputError(f"{source} directories[{n}]: duplicate path {path!r}")
            seen.add(path)
            directories.append(path)
        dir_set = set(directories)
        for path in seen:  # every listed directory is itself checked, so the parent suffices (linear)
            parent = posixpath.dirname(path)
            if parent and parent not in dir_set:
                raise AisecInputError(f"{source}: {path[:200]!r} is listed but its parent is not a directory")
        if kind == "file" and (len(entries) != 1 or entries[0]["type"] != _FILE or directories):
            raise AisecInputError(f"{source}: a 'file' manifest must hold exactly one file entry")
    elif kind == "file" and len(entries) != 1:
        raise AisecInputError(f"{source}: a 'file' manifest must hold exactly one entry")
    for key, expected in (("file_count", len(entries)), ("total_bytes", sum(e["size"] for e in entries))):
        value = sj.get_int(doc, key, source, None, lo=0)
        if value is not None and value != expected:
            raise AisecInputError(f"{source}: {key} {value} does not match its entries ({expected})")
    declared = sj.get_str(doc, "root_digest", source)
    if legacy:
        computed = root_digest(entries, algorithm, version=1)
    else:
        computed = root_digest(entries, algorithm, directories=directories or (), kind=str(kind))
    if computed != declared:
        raise AisecInputError(f"{source} root digest does not match its entries (edited manifest?)")
    out = dict(doc)
    out.update(
        entries=entries,
        directories=directories,
        version=1 if legacy else 2,
        kind=kind,  # None only for a v1 manifest that did not record it: the kind is then not compared
    )
    return out


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
