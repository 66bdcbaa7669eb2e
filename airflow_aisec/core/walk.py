"""Walking an artifact: every entry under a root, classified (file, link, directory, special), never
following a link out of the root, and refusing what cannot be recorded exactly.

:func:`walk` serves :mod:`airflow_aisec.core.hashing` (which hashes what it finds). A local walk
records each directory's identity (device, inode) so that a directory swapped for a link while the
files are hashed is detected (:func:`_recheck_directories`).
"""

from __future__ import annotations

import os
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_aisec.core.manifest import _DIR, _FILE, _LINK, check_rel_path
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError, ArtifactNotReady


class ArtifactChangedError(ArtifactNotReady, AisecUndecidableError):
    """The file or object changed while it was being hashed: not ready yet (the integrity sensor waits).

    An :class:`~airflow_aisec.exceptions.ArtifactNotReady` (transient: an operator retries), and still an
    :class:`AisecUndecidableError` so that a per-file change is recorded like any unreadable file.
    """


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


#: Most filesystem entries one walk visits (links followed with ``follow_symlinks`` can multiply them).
MAX_WALK_ITEMS = 2_000_000
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


def _same_directory(directory: Path, ident: tuple[int, int], is_root: bool) -> None:
    """The directory listed is the one the walk classified (not swapped for a link meanwhile)."""
    try:
        now = os.stat(directory) if is_root else os.lstat(directory)
    except OSError as exc:
        raise AisecUndecidableError(f"cannot stat {directory}: {exc.strerror or exc}") from None
    if not stat_module.S_ISDIR(now.st_mode) or (now.st_dev, now.st_ino) != ident:
        raise ArtifactChangedError(f"directory changed while it was being walked: {directory}")


def _list_directory(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return list(it)
    except PermissionError as exc:
        raise AisecUndecidableError(f"directory is not readable: {directory} ({exc.strerror})") from None
    except OSError as exc:
        raise AisecUndecidableError(f"cannot list {directory}: {exc.strerror or exc}") from None


def _follow_link(
    path: str, name: str, target: str, real_root: Path, root_dev: int, ancestors: frozenset[tuple[int, int]]
) -> tuple[_Item, Path]:
    """With ``follow_symlinks``: the item a link resolves to, only inside the root and never in a loop."""
    try:
        resolved = Path(path).resolve(strict=True)
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
        return _Item(name, None, 0, kind=_DIR, foreign_device=foreign, via_link=True, ident=key), resolved
    if stat_module.S_ISREG(rst.st_mode):
        return _Item(name, resolved, rst.st_size, nlink=rst.st_nlink, foreign_device=foreign, via_link=True), resolved
    return _Item(name, None, 0, kind=special_kind(rst.st_mode), via_link=True), resolved


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

    while stack:
        directory, rel, ancestors, via, ident = stack.pop()
        _same_directory(directory, ident, directory is root)
        entries = _list_directory(directory)
        _same_directory(directory, ident, directory is root)
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
                item, resolved = _follow_link(entry.path, name, target, real_root, root_dev, ancestors)
                items.append(item)
                if item.kind == _DIR and item.ident is not None:
                    stack.append((resolved, entry_rel, ancestors | {item.ident}, True, item.ident))
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
    fs = getattr(root, "fs", None)
    if fs is not None and hasattr(fs, "invalidate_cache"):  # list the store as it is now, not a cached listing
        fs.invalidate_cache()
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


def walk(root: Any, follow_symlinks: bool = False) -> list[_Item]:
    """Every entry under ``root`` (a local :class:`~pathlib.Path` or an object-storage path), without the
    root directory itself, sorted by relative path."""
    items = _walk_local(root, follow_symlinks) if isinstance(root, Path) else _walk_remote(root)
    return sorted((i for i in items if i.kind != _ROOT), key=lambda i: i.rel)


def _walk_with_root(root: Any, follow_symlinks: bool) -> tuple[list[_Item], list[_Item]]:
    """:func:`walk`, and the directories (with the root) whose identity is re-checked after hashing."""
    if not isinstance(root, Path):
        return walk(root, follow_symlinks), []
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
