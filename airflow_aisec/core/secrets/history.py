"""The git-history walk of the secrets scan: every commit, tree, blob, tag and ref name (see :mod:`.git`)."""

from __future__ import annotations

import os
from pathlib import Path

from airflow_aisec.core.secrets.content import _Scan, _scan_bytes, _scan_names
from airflow_aisec.core.secrets.detectors import _Ctx, _hits_for
from airflow_aisec.core.secrets.reader import decode
from airflow_aisec.exceptions import AisecUndecidableError

#: Commit, tree and tag objects above this size are not read (counted as unscanned).
OBJECT_MAX = 64 * 1024 * 1024


def _in_scope(path: str, prefix: str, is_file: bool) -> bool:
    if not prefix:
        return True
    return path == prefix if is_file else path.startswith(prefix + "/")


def _relation(path: str, prefix: str, is_file: bool) -> str:
    """How a directory ``path`` relates to the scanned prefix: in, out, or an ancestor of it."""
    if not prefix:
        return "in"
    if not is_file and (path == prefix or path.startswith(prefix + "/")):
        return "in"
    if prefix.startswith(path + "/") or path == "":
        return path or "/"
    return "out"


def _scan_history(path: Path, ctx: _Ctx, scan: _Scan, partial_ok: bool) -> list[str]:
    """Scan every object reachable from every ref; returns the reasons history is partial (if accepted)."""
    from airflow_aisec.core.secrets import git as g

    repo = g.open_repo(path)
    if repo.partial and not partial_ok:
        raise AisecUndecidableError(
            "history scan: incomplete or rewritten history: "
            + "; ".join(repo.partial)
            + " (pass partial_history / --partial-history to accept and scan what is there)"
        )
    prefix, is_file = repo.prefix, repo.is_file
    base = os.path.dirname(prefix) if is_file else prefix

    def rel(p: str) -> str:
        return p[len(base) + 1 :] if base and p.startswith(base + "/") else p

    refs = g.refs(repo)
    if not prefix:  # repository-wide data: scanned when the whole repository is
        scan.refs_scanned = len(refs)
        ref_lines = [name for _, _, name in refs]
        for hit in _hits_for(ctx, ref_lines, "<ref names>", kind="ref", allow_inline=False):
            hit.file = ref_lines[hit.line - 1]
            hit.line = 0
            scan.hits.append(hit)
    # ``--all`` also walks HEAD (a detached checkout may have no ref at all) and other worktrees' HEADs.
    commits = g.oid_list(repo, "rev-list", "--all", "--topo-order", "--reverse")
    batch = g.Batch(repo)
    walked: set[tuple[str, str]] = set()
    blobs: set[str] = set()
    submodules: set[str] = set()
    seen_lines: set[int] = set()

    def missing(oid: str, what: str) -> None:
        if not partial_ok:
            raise AisecUndecidableError(f"history scan: {what} {oid[:12]} is missing from the repository")
        scan.skip(f"{what} {oid[:12]}", "object missing from the repository", "missing")

    def read_meta(oid: str, what: str) -> bytes | None:
        """A tree, commit or tag object's bytes; ``None`` once it is recorded as missing or too large."""
        obj = batch.get(oid, OBJECT_MAX)
        if obj is None:
            missing(oid, what)
            return None
        if obj[1] is None:
            scan.skip(f"{what} {oid[:12]}", f"{what} object larger than {OBJECT_MAX} bytes", "large")
            return None
        return obj[1]

    def walk_tree(root_tree: str, root_path: str, commit: str | None, date: str | None) -> None:
        """Depth-first over the trees (an explicit stack: no recursion limit on deep paths)."""
        stack = [(root_tree, root_path)]
        while stack:
            tree, path = stack.pop()
            relation = _relation(path, prefix, is_file)
            if relation == "out" or (tree, relation) in walked:
                continue
            walked.add((tree, relation))
            tree_data = read_meta(tree, "tree")
            if tree_data is None:
                continue
            names: list[str] = []
            subtrees: list[tuple[str, str]] = []
            for mode, raw_name, oid in g.parse_tree(tree_data, repo.hex_len):
                name = g.display(raw_name)
                full = f"{path}/{name}" if path else name
                if g.is_tree(mode):
                    subtrees.append((oid, full))
                    # A directory's own name: its tree may be one already walked under another path
                    # (then none of its paths would be read again), so the new name is scanned here.
                    dir_key = hash(("\x00name", full + "/"))
                    if not is_file and _in_scope(full, prefix, False) and dir_key not in seen_lines:
                        seen_lines.add(dir_key)
                        names.append(rel(full))
                    continue
                if not _in_scope(full, prefix, is_file):
                    continue
                name_key = hash(("\x00name", full))
                if name_key not in seen_lines:  # every path once, whatever its content
                    seen_lines.add(name_key)
                    names.append(rel(full))
                if g.is_submodule(mode):
                    if full not in submodules:
                        submodules.add(full)
                        where = f"{commit[:12]}:{rel(full)}" if commit else rel(full)
                        scan.skip(where, "submodule: its history is another repository", "submodule")
                    continue
                if oid in blobs:
                    continue
                blobs.add(oid)
                scan_blob(oid, rel(full), commit, date)
            _scan_names(ctx, names, scan, commit, date)
            stack.extend(reversed(subtrees))

    def scan_blob(oid: str, name: str, commit: str | None, date: str | None) -> None:
        where = f"{commit[:12]}:{name}" if commit else name
        obj = batch.get(oid, ctx.max_bytes)
        if obj is None:
            missing(oid, "blob")
            return
        kind, data, size = obj
        if data is None:
            scan.skip(where, f"larger than max_file_bytes ({size} > {ctx.max_bytes} bytes)", "large")
            return
        _scan_bytes(ctx, data, name, scan, where, commit=commit, date=date, seen=seen_lines)

    def scan_object_text(oid: str, data: bytes, label: str, date: str | None) -> None:
        text, _ = decode(data)
        lines = text.splitlines()
        scan.lines_scanned += len(lines)
        for hit in _hits_for(ctx, lines, label, commit=oid, date=date, kind="message", allow_inline=False):
            scan.hits.append(hit)

    trees_of: dict[str, str | None] = {}
    entries_of: dict[str, dict[str, str]] = {}

    def at_prefix(tree: str | None) -> str | None:
        """Object id at the scanned prefix inside ``tree`` (None when absent)."""
        oid = tree
        for part in prefix.split("/"):
            if oid is None:
                return None
            if oid not in entries_of:
                obj = batch.get(oid)
                if obj is None or obj[0] != "tree":
                    entries_of[oid] = {}
                else:
                    entries_of[oid] = {g.display(n): o for _, n, o in g.parse_tree(obj[1] or b"", repo.hex_len)}
            oid = entries_of[oid].get(part)
        return oid

    def tree_of(commit: str) -> str | None:
        if commit not in trees_of:
            obj = batch.get(commit)
            trees_of[commit] = g.commit_tree(obj[1] or b"") if obj is not None else None
        return trees_of[commit]

    def touches(tree: str | None, parents: list[str]) -> bool:
        here = at_prefix(tree)
        if not parents:
            return here is not None
        return any(at_prefix(tree_of(p)) != here for p in parents)

    try:
        for commit in commits:
            data = read_meta(commit, "commit")
            if data is None:
                continue
            date = g.commit_date(data)
            scan.commits_scanned += 1
            tree = g.commit_tree(data)
            trees_of[commit] = tree
            # A sub-directory scan reads the messages of the commits that changed it (all parents
            # compared, so a merge resolution counts); a whole-repository scan reads every message.
            if not prefix or touches(tree, g.commit_parents(data)):
                scan_object_text(commit, data, "(commit object)", date)
            if tree:
                walk_tree(tree, "", commit, date)
            else:
                scan.skip(f"commit {commit[:12]}", "commit object without a tree", "missing")
        # Objects refs point at directly: annotated tags (messages), and blobs / trees a tag names.
        seen_tags: set[str] = set()
        for oid, kind, _ in refs if not prefix else ():
            while kind == "tag" and oid not in seen_tags:
                seen_tags.add(oid)
                tag_data = read_meta(oid, "tag")
                if tag_data is None:
                    break
                scan.tags_scanned += 1
                scan_object_text(oid, tag_data, "(tag object)", None)
                target = g.tag_target(tag_data)
                if target is None:
                    break
                oid, kind = target
            if kind == "blob" and oid not in blobs and not prefix:
                blobs.add(oid)
                scan_blob(oid, f"(blob {oid[:12]})", None, None)
            elif kind == "tree" and not prefix:
                walk_tree(oid, "", None, None)
    finally:
        batch.close()
    return repo.partial
