"""The working-tree walk of the secrets scan: every regular file, name and symlink target; ``.git/config``."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from airflow_aisec.core.secrets.content import LIST_LIMIT, ScanTally, scan_bytes, scan_names
from airflow_aisec.core.secrets.detectors import ScanContext
from airflow_aisec.core.secrets.reader import read_regular, special_kind
from airflow_aisec.exceptions import AisecInputError


def _name(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def scan_tree(root: Path, ctx: ScanContext, scan: ScanTally, exclude_dirs: Sequence[str]) -> None:
    names: list[str] = []
    try:
        root_st = os.stat(root)
    except OSError as exc:
        raise AisecInputError(f"secrets scan path {str(root)!r} cannot be read: {exc.strerror}") from None
    if not stat.S_ISDIR(root_st.st_mode):
        name = _name(root.name)
        names.append(name)
        if stat.S_ISREG(root_st.st_mode):
            data, reason, category = read_regular(os.path.realpath(root), ctx.max_bytes)  # PATH itself may be a link
            if data is None:
                scan.skip(name, reason, category)
            else:
                scan_bytes(ctx, data, name, scan, name)
        else:
            scan.skip(name, f"{special_kind(root_st.st_mode)}: never opened for reading", "special")
    else:
        excluded = set(exclude_dirs)
        stack = [(str(root), "")]
        while stack:
            directory, rel = stack.pop()
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                scan.skip(rel or ".", f"unreadable directory: {exc.strerror or type(exc).__name__}", "unreadable")
                continue
            subdirs = []
            for entry in entries:
                rel_path = f"{rel}/{_name(entry.name)}" if rel else _name(entry.name)
                names.append(rel_path)
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    scan.skip(rel_path, f"unreadable: {exc.strerror or type(exc).__name__}", "unreadable")
                    continue
                if stat.S_ISLNK(st.st_mode):
                    scan.symlinks += 1
                    try:
                        names.append(_name(os.readlink(entry.path)))
                    except OSError:
                        pass
                elif stat.S_ISDIR(st.st_mode):
                    if entry.name in excluded:
                        scan.excluded_count += 1
                        if len(scan.excluded) < LIST_LIMIT:
                            scan.excluded.append(rel_path)
                        if entry.name == ".git":  # not history, but credentials live in remote URLs
                            _scan_git_config(ctx, scan, entry.path, rel_path)
                    else:
                        subdirs.append((entry.path, rel_path))
                elif stat.S_ISREG(st.st_mode):
                    data, reason, category = read_regular(entry.path, ctx.max_bytes)
                    if data is None:
                        scan.skip(rel_path, reason, category)
                    else:
                        scan_bytes(ctx, data, rel_path, scan, rel_path)
                else:
                    scan.skip(rel_path, f"{special_kind(st.st_mode)}: never opened for reading", "special")
            stack.extend(reversed(subdirs))
    scan_names(ctx, names, scan)


def _scan_git_config(ctx: ScanContext, scan: ScanTally, git_dir: str, rel_path: str) -> None:
    """A repository's own ``config`` (remote URLs with tokens, credential settings) is scanned."""
    path = os.path.join(git_dir, "config")
    try:
        st = os.lstat(path)
    except OSError:
        return
    name = f"{rel_path}/config"
    if not stat.S_ISREG(st.st_mode):
        scan.skip(name, f"{special_kind(st.st_mode)}: never opened for reading", "special")
        return
    data, reason, category = read_regular(path, ctx.max_bytes)
    if data is None:
        scan.skip(name, reason, category)
    else:
        scan_bytes(ctx, data, name, scan, name)
