"""Shared helpers for the integrity and provenance adversarial suites."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from airflow_aisec.cli import main

#: File and folder names: any Unicode but surrogates, '/', '\\' and NUL (what a manifest can record).
NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=8,
).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200)

LEAF = st.one_of(
    st.tuples(st.just("file"), st.binary(max_size=12)),
    st.tuples(st.just("symlink"), NAMES),
)
NODE = st.recursive(
    LEAF, lambda children: st.dictionaries(NAMES, children, max_size=3).map(lambda d: ("dir", d)), max_leaves=8
)
#: A directory tree: {name: ("file", bytes) | ("symlink", target) | ("dir", {...})}.
TREES = st.dictionaries(NAMES, NODE, max_size=4)


def run(capsys: Any, argv: list[str]) -> tuple[int, dict[str, Any] | None]:
    """Run the CLI with ``--format json``; return the exit code and the parsed report (or ``None``)."""
    capsys.readouterr()
    code = main([*argv, "--format", "json"])
    out = capsys.readouterr().out
    try:
        return code, json.loads(out)
    except ValueError:
        return code, None


def finding_ids(report: dict[str, Any] | None) -> set[str]:
    return {f["id"] for f in (report or {}).get("findings", [])}


def materialise(root: Path, tree: dict[str, Any]) -> None:
    """Create ``tree`` under ``root`` (which must not exist)."""
    root.mkdir(parents=True)
    for name, node in tree.items():
        path = root / name
        if node[0] == "file":
            path.write_bytes(node[1])
        elif node[0] == "symlink":
            os.symlink(node[1], path)
        else:
            materialise(path, node[1])


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, tuple[str, bytes | str | None]]:
    """``{relative path: (type, content or link target)}``: what distinguishes two trees."""
    out: dict[str, tuple[str, bytes | str | None]] = {}
    for name, node in tree.items():
        rel = f"{prefix}{name}"
        if node[0] == "dir":
            out[rel] = ("dir", None)
            out.update(flatten(node[1], rel + "/"))
        else:
            out[rel] = (node[0], node[1])
    return out


def in_memory_manifest(flat: dict[str, tuple[str, Any]], algorithm: str = "sha256") -> tuple[list, list]:
    """Entries and directories exactly as :func:`build_manifest` records them, without touching disk."""
    import hashlib

    from airflow_aisec.core.hashing import _link_digest

    entries, dirs = [], []
    for rel, (kind, value) in flat.items():
        if kind == "dir":
            dirs.append(rel)
        elif kind == "file":
            entries.append(
                {"path": rel, "type": "file", "size": len(value), "digest": hashlib.new(algorithm, value).hexdigest()}
            )
        else:
            entries.append(
                {"path": rel, "type": "symlink", "size": 0, "digest": _link_digest(value, algorithm), "link": value}
            )
    return entries, dirs


@contextmanager
def no_hang(seconds: int = 20) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the body blocks, e.g. by opening a FIFO."""

    def _raise(*_: Any) -> None:
        raise TimeoutError(f"blocked for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def tree_snapshot(root: Path) -> dict[str, Any]:
    """Every name under ``root`` with its type and content: to prove nothing was written."""
    snap: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                snap[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                snap[str(p)] = ("file", p.read_bytes())
            else:
                snap[str(p)] = ("dir", None)
    return snap
