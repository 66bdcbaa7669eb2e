"""The git-history walk of the secrets scan: every commit, tree, blob, tag and ref name (see :mod:`.git`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from airflow_aisec.core.secrets import git as g
from airflow_aisec.core.secrets.content import ScanTally, scan_bytes, scan_names
from airflow_aisec.core.secrets.detectors import ScanContext, hits_for
from airflow_aisec.core.secrets.reader import decode
from airflow_aisec.exceptions import AisecUndecidableError
from airflow_aisec.utils.progress import Progress

log = logging.getLogger(__name__)

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


def scan_history(path: Path, ctx: ScanContext, scan: ScanTally, partial_ok: bool) -> list[str]:
    """Scan every object reachable from every ref; returns the reasons history is partial (if accepted)."""
    repo = g.open_repo(path)
    if repo.partial and not partial_ok:
        raise AisecUndecidableError(
            "history scan: incomplete or rewritten history: "
            + "; ".join(repo.partial)
            + " (pass partial_history / --partial-history to accept and scan what is there)"
        )
    refs = g.refs(repo)
    if not repo.prefix:  # repository-wide data: scanned when the whole repository is
        _scan_ref_names(ctx, scan, refs)
    # ``--all`` also walks HEAD (a detached checkout may have no ref at all) and other worktrees' HEADs.
    commits = g.oid_list(repo, "rev-list", "--all", "--topo-order", "--reverse")
    walk = _HistoryWalk(repo, ctx, scan, partial_ok)
    progress = Progress("secrets scan: git history", len(commits), unit="commits", logger=log)
    try:
        for commit in commits:
            walk.commit(commit)
            progress.advance()
        if not repo.prefix:  # objects refs point at directly: tag messages, blobs / trees a tag names
            walk.ref_targets(refs)
    finally:
        walk.batch.close()
    progress.finish(min_elapsed=5.0)
    return repo.partial


def _scan_ref_names(ctx: ScanContext, scan: ScanTally, refs: list[tuple[str, str, str]]) -> None:
    scan.refs_scanned = len(refs)
    ref_lines = [name for _, _, name in refs]
    for hit in hits_for(ctx, ref_lines, "<ref names>", kind="ref", allow_inline=False):
        hit.file = ref_lines[hit.line - 1]
        hit.line = 0
        scan.hits.append(hit)


class _HistoryWalk:
    """One walk over a repository's objects: each tree, blob and path name is read once."""

    def __init__(self, repo: g.Repo, ctx: ScanContext, scan: ScanTally, partial_ok: bool) -> None:
        self.repo, self.ctx, self.scan, self.partial_ok = repo, ctx, scan, partial_ok
        self.prefix, self.is_file = repo.prefix, repo.is_file
        self.base = os.path.dirname(self.prefix) if self.is_file else self.prefix
        self.batch = g.Batch(repo)
        self.walked: set[tuple[str, str]] = set()
        self.blobs: set[str] = set()
        self.submodules: set[str] = set()
        self.seen_lines: set[int] = set()
        self.trees_of: dict[str, str | None] = {}
        self.entries_of: dict[str, dict[str, str]] = {}

    def rel(self, p: str) -> str:
        return p[len(self.base) + 1 :] if self.base and p.startswith(self.base + "/") else p

    # ------------------------------------------------------------------ reading objects
    def missing(self, oid: str, what: str) -> None:
        if not self.partial_ok:
            raise AisecUndecidableError(f"history scan: {what} {oid[:12]} is missing from the repository")
        self.scan.skip(f"{what} {oid[:12]}", "object missing from the repository", "missing")

    def read_meta(self, oid: str, what: str) -> bytes | None:
        """A tree, commit or tag object's bytes; ``None`` once it is recorded as missing or too large."""
        obj = self.batch.get(oid, OBJECT_MAX)
        if obj is None:
            self.missing(oid, what)
            return None
        if obj[1] is None:
            self.scan.skip(f"{what} {oid[:12]}", f"{what} object larger than {OBJECT_MAX} bytes", "large")
            return None
        return obj[1]

    # ------------------------------------------------------------------ commits and refs
    def commit(self, commit: str) -> None:
        data = self.read_meta(commit, "commit")
        if data is None:
            return
        date = g.commit_date(data)
        self.scan.commits_scanned += 1
        tree = g.commit_tree(data)
        self.trees_of[commit] = tree
        # A sub-directory scan reads the messages of the commits that changed it (all parents
        # compared, so a merge resolution counts); a whole-repository scan reads every message.
        if not self.prefix or self.touches(tree, g.commit_parents(data)):
            self.scan_object_text(commit, data, "(commit object)", date)
        if tree:
            self.walk_tree(tree, "", commit, date)
        else:
            self.scan.skip(f"commit {commit[:12]}", "commit object without a tree", "missing")

    def ref_targets(self, refs: list[tuple[str, str, str]]) -> None:
        """Annotated tags (their messages), followed to the blob or tree a tag may name."""
        seen_tags: set[str] = set()
        for oid, kind, _ in refs:
            while kind == "tag" and oid not in seen_tags:
                seen_tags.add(oid)
                tag_data = self.read_meta(oid, "tag")
                if tag_data is None:
                    break
                self.scan.tags_scanned += 1
                self.scan_object_text(oid, tag_data, "(tag object)", None)
                target = g.tag_target(tag_data)
                if target is None:
                    break
                oid, kind = target
            if kind == "blob" and oid not in self.blobs:
                self.blobs.add(oid)
                self.scan_blob(oid, f"(blob {oid[:12]})", None, None)
            elif kind == "tree":
                self.walk_tree(oid, "", None, None)

    # ------------------------------------------------------------------ trees and blobs
    def walk_tree(self, root_tree: str, root_path: str, commit: str | None, date: str | None) -> None:
        """Depth-first over the trees (an explicit stack: no recursion limit on deep paths)."""
        stack = [(root_tree, root_path)]
        while stack:
            tree, path = stack.pop()
            relation = _relation(path, self.prefix, self.is_file)
            if relation == "out" or (tree, relation) in self.walked:
                continue
            self.walked.add((tree, relation))
            tree_data = self.read_meta(tree, "tree")
            if tree_data is None:
                continue
            names: list[str] = []
            subtrees: list[tuple[str, str]] = []
            for mode, raw_name, oid in g.parse_tree(tree_data, self.repo.hex_len):
                full = f"{path}/{g.display(raw_name)}" if path else g.display(raw_name)
                if g.is_tree(mode):
                    subtrees.append((oid, full))
                    self.directory_name(full, names)
                else:
                    self.entry(mode, oid, full, names, commit, date)
            scan_names(self.ctx, names, self.scan, commit, date)
            stack.extend(reversed(subtrees))

    def directory_name(self, full: str, names: list[str]) -> None:
        # A directory's own name: its tree may be one already walked under another path
        # (then none of its paths would be read again), so the new name is scanned here.
        dir_key = hash(("\x00name", full + "/"))
        if not self.is_file and _in_scope(full, self.prefix, False) and dir_key not in self.seen_lines:
            self.seen_lines.add(dir_key)
            names.append(self.rel(full))

    def entry(self, mode: bytes, oid: str, full: str, names: list[str], commit: str | None, date: str | None) -> None:
        """A tree entry that is not a tree: its path name once, then the blob once (a submodule is listed)."""
        if not _in_scope(full, self.prefix, self.is_file):
            return
        name_key = hash(("\x00name", full))
        if name_key not in self.seen_lines:  # every path once, whatever its content
            self.seen_lines.add(name_key)
            names.append(self.rel(full))
        if g.is_submodule(mode):
            if full not in self.submodules:
                self.submodules.add(full)
                where = f"{commit[:12]}:{self.rel(full)}" if commit else self.rel(full)
                self.scan.skip(where, "submodule: its history is another repository", "submodule")
            return
        if oid in self.blobs:
            return
        self.blobs.add(oid)
        self.scan_blob(oid, self.rel(full), commit, date)

    def scan_blob(self, oid: str, name: str, commit: str | None, date: str | None) -> None:
        where = f"{commit[:12]}:{name}" if commit else name
        obj = self.batch.get(oid, self.ctx.max_bytes)
        if obj is None:
            self.missing(oid, "blob")
            return
        _kind, data, size = obj
        if data is None:
            self.scan.skip(where, f"larger than max_file_bytes ({size} > {self.ctx.max_bytes} bytes)", "large")
            return
        scan_bytes(self.ctx, data, name, self.scan, where, commit=commit, date=date, seen=self.seen_lines)

    def scan_object_text(self, oid: str, data: bytes, label: str, date: str | None) -> None:
        text, _ = decode(data)
        lines = text.splitlines()
        self.scan.lines_scanned += len(lines)
        for hit in hits_for(self.ctx, lines, label, commit=oid, date=date, kind="message", allow_inline=False):
            self.scan.hits.append(hit)

    # ------------------------------------------------------------------ sub-directory scans
    def at_prefix(self, tree: str | None) -> str | None:
        """Object id at the scanned prefix inside ``tree`` (None when absent)."""
        oid = tree
        for part in self.prefix.split("/"):
            if oid is None:
                return None
            if oid not in self.entries_of:
                obj = self.batch.get(oid)
                if obj is None or obj[0] != "tree":
                    self.entries_of[oid] = {}
                else:
                    entries = g.parse_tree(obj[1] or b"", self.repo.hex_len)
                    self.entries_of[oid] = {g.display(n): o for _, n, o in entries}
            oid = self.entries_of[oid].get(part)
        return oid

    def tree_of(self, commit: str) -> str | None:
        if commit not in self.trees_of:
            obj = self.batch.get(commit)
            self.trees_of[commit] = g.commit_tree(obj[1] or b"") if obj is not None else None
        return self.trees_of[commit]

    def touches(self, tree: str | None, parents: list[str]) -> bool:
        here = self.at_prefix(tree)
        if not parents:
            return here is not None
        return any(self.at_prefix(self.tree_of(p)) != here for p in parents)
