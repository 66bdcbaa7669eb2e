"""Atomic file writes, and bounded reads of regular files.

Writes: a reader sees the old file or the new one, never half of either.

Outputs are attack surface too, so every writer here refuses, with an
:class:`~airflow_aisec.exceptions.AisecInputError` naming the path, a destination that is a
directory, a symlink (writing through it would land outside the place the user named) or a special
file, and a parent that is not a directory. New files get the permissions the process umask allows
(``0666 & ~umask``, like any other tool), so a serving process under another uid can read the
manifests, SBOMs and splits it needs; private keys are written ``0600`` from the first byte
(``private=True``). ``exclusive=True`` refuses to replace an existing file (key generation).

Reads (:func:`read_bounded`, :func:`read_regular_file`): one descriptor, opened without following a
final symlink and without blocking (a FIFO or device is never read), checked to be a regular file
after opening (so a file swapped in between is caught), and never more than the limit, even when
the file grows while it is read.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from airflow_aisec.exceptions import AisecInputError

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read without changing it for longer than two system calls)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def check_output_path(path: str | os.PathLike[str], *, exclusive: bool = False) -> Path:
    """Refuse an output path that is a directory, a symlink or a special file, or whose parent is not a directory.

    :param path: where a file is about to be written.
    :param exclusive: also refuse when something already exists there.
    :return: the path, as a :class:`~pathlib.Path`.
    """
    dest = Path(path)
    if not str(path) or dest.name in ("", ".", ".."):
        raise AisecInputError(f"output {str(path)!r}: not a file name")
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise AisecInputError(f"output {dest}: a parent of it is not a directory") from None
    except OSError as exc:
        raise AisecInputError(f"output {dest}: cannot inspect: {exc.strerror or exc}") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise AisecInputError(f"output {dest}: is a symlink; refusing to write through or replace it")
        if stat.S_ISDIR(st.st_mode):
            raise AisecInputError(f"output {dest}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise AisecInputError(f"output {dest}: is a special file (FIFO, device or socket)")
        if exclusive:
            raise AisecInputError(f"output {dest}: already exists; refusing to overwrite it")
    for parent in dest.parents:
        try:
            pst = os.stat(parent)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            raise AisecInputError(f"output {dest}: a parent of it is not a directory") from None
        except OSError as exc:
            raise AisecInputError(f"output {dest}: cannot inspect {parent}: {exc.strerror or exc}") from None
        if not stat.S_ISDIR(pst.st_mode):
            raise AisecInputError(f"output {dest}: its parent {parent} is not a directory")
        break
    return dest


@contextmanager
def atomic_writer(
    path: str | os.PathLike[str], mode: str = "wb", *, private: bool = False, exclusive: bool = False
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success fsync and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.

    :param path: destination file; its parent directory is created when missing.
    :param mode: ``"wb"`` or ``"w"`` (text, UTF-8).
    :param private: create the file ``0600`` (keys); otherwise ``0666 & ~umask``.
    :param exclusive: fail if ``path`` exists, atomically (the file is linked, never renamed, into place).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_writer mode must be 'wb' or 'w', not {mode!r}")
    dest = check_output_path(path, exclusive=exclusive)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise AisecInputError(f"output {dest}: a parent of it is not a directory") from None
    except OSError as exc:
        raise AisecInputError(f"output {dest}: cannot create its directory: {exc.strerror or exc}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise AisecInputError(f"output {dest}: cannot write there: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600 if private else 0o666 & ~current_umask())
        fh: IO[Any] = os.fdopen(fd, mode, encoding="utf-8") if mode == "w" else os.fdopen(fd, "wb")
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, dest)
            except FileExistsError:
                raise AisecInputError(f"output {dest}: already exists; refusing to overwrite it") from None
            os.unlink(tmp)
        else:
            check_output_path(dest)  # nothing swapped in (a symlink, a directory) while we wrote
            os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable
        dir_fd = os.open(dest.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, *, private: bool = False, exclusive: bool = False
) -> Path:
    """Write ``data`` to ``path`` atomically and return the path (see :func:`atomic_writer`)."""
    with atomic_writer(path, "wb", private=private, exclusive=exclusive) as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, **kwargs: bool) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return write_bytes_atomic(path, text.encode("utf-8"), **kwargs)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, **kwargs: bool) -> Path:
    """Serialise ``obj`` as JSON (sorted keys, UTF-8) and write it atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return write_text_atomic(path, text + "\n", **kwargs)


# ---------------------------------------------------------------------------------------- reading
class BoundedReadError(Exception):
    """Why :func:`read_bounded` returned no bytes.

    ``kind``: ``symlink`` (the final component is a link, or a link loop), ``unreadable`` (``error``
    says why), ``special`` (not a regular file; ``mode`` from ``fstat``), ``large`` (``size`` above the
    limit) or ``grew`` (the file grew past the limit while it was read).
    """

    def __init__(self, kind: str, *, error: OSError | None = None, mode: int = 0, size: int = 0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.error = error
        self.mode = mode
        self.size = size


def read_bounded(path: str | os.PathLike[str], max_bytes: int, *, follow_symlinks: bool = False) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them, read without blocking.

    :raises BoundedReadError: the file is a symlink (unless ``follow_symlinks``), unreadable, not a
        regular file, or larger than ``max_bytes`` (before or while it is read).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BoundedReadError("symlink" if exc.errno == errno.ELOOP else "unreadable", error=exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped after a caller's lstat, or a special file
            raise BoundedReadError("special", mode=st.st_mode)
        if st.st_size > max_bytes:
            raise BoundedReadError("large", size=st.st_size)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise BoundedReadError("grew", size=total)
    except OSError as exc:
        raise BoundedReadError("unreadable", error=exc) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_regular_file(
    path: str | os.PathLike[str], *, max_bytes: int, what: str = "model", follow_symlinks: bool = False
) -> bytes:
    """Read a regular file once, bounded; refuse symlinks (final component) and special files.

    :raises AisecInputError: naming ``what`` and the path, for every reason :func:`read_bounded` refuses.
    """
    p = os.fspath(path)
    if max_bytes <= 0:
        raise AisecInputError("max_bytes must be positive")
    if not follow_symlinks and os.path.islink(p):
        raise AisecInputError(f"{what} {p!r} is a symlink: refusing it (pass follow_symlinks=True to allow)")
    try:
        return read_bounded(p, max_bytes, follow_symlinks=follow_symlinks)
    except BoundedReadError as exc:
        if exc.kind == "symlink":
            raise AisecInputError(f"{what} {p!r} is a symlink: refusing it") from None
        if exc.kind == "special":
            raise AisecInputError(f"{what} {p!r} is not a regular file (directory, FIFO, device or socket)") from None
        if exc.kind == "large":
            raise AisecInputError(f"{what} {p!r} is {exc.size} bytes, more than the limit of {max_bytes}") from None
        if exc.kind == "grew":
            raise AisecInputError(f"{what} {p!r} grew beyond the limit of {max_bytes} bytes while read") from None
        strerror = exc.error.strerror if exc.error is not None else None
        raise AisecInputError(f"{what} {p!r} is unreadable: {strerror}") from None
