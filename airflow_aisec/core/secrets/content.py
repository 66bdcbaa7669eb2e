"""One file's bytes, or a list of names, through the detectors; the tally a tree or history scan keeps."""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_aisec.core.secrets.detectors import Hit, ScanContext, hits_for
from airflow_aisec.core.secrets.reader import compressed, decode, strings_runs

#: At most this many entries are listed per details list (counts are always complete).
LIST_LIMIT = 200


@dataclass
class ScanTally:
    hits: list[Hit] = field(default_factory=list)
    files_scanned: int = 0
    files_binary: int = 0
    files_non_utf8: int = 0
    lines_scanned: int = 0
    commits_scanned: int = 0
    tags_scanned: int = 0
    refs_scanned: int = 0
    unscanned: list[dict[str, str]] = field(default_factory=list)
    unscanned_count: dict[str, int] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    excluded_count: int = 0
    symlinks: int = 0

    def skip(self, location: str, reason: str, category: str) -> None:
        self.unscanned_count[category] = self.unscanned_count.get(category, 0) + 1
        if len(self.unscanned) < LIST_LIMIT:
            self.unscanned.append({"location": location, "reason": reason})


def scan_bytes(
    ctx: ScanContext,
    data: bytes,
    filename: str,
    scan: ScanTally,
    location: str,
    *,
    commit: str | None = None,
    date: str | None = None,
    seen: set[int] | None = None,
) -> bool:
    """Scan one file's (or blob's) bytes; False (and counted) when it is not scannable."""
    packed = compressed(data)
    if packed:
        scan.skip(location, f"compressed ({packed}): content not inspected", "compressed")
        return False
    text, encoding = decode(data)
    scan.files_scanned += 1
    hits: list[Hit] = []
    found: set[str] = set()
    if encoding == "binary":
        scan.files_binary += 1
    elif encoding != "utf-8":
        scan.files_non_utf8 += 1
    if text:
        lines = text.splitlines()
        scan.lines_scanned += len(lines)
        hits = hits_for(ctx, lines, filename, commit=commit, date=date, seen=seen)
        found = {h.fingerprint for h in hits}
    # A binary file, or text with binary parts: also its printable runs. So too for a file decoded as
    # UTF-16/32 that holds no NUL: a UTF-16 BOM before ASCII text (bash still sources it) read as garbage.
    if b"\x00" in data or not encoding.startswith("utf-8"):
        runs, numbers = strings_runs(data)
        scan.lines_scanned += len(runs)
        for hit in hits_for(ctx, runs, filename, numbers=numbers, commit=commit, date=date, seen=seen):
            if hit.fingerprint not in found:
                found.add(hit.fingerprint)
                hits.append(hit)
    scan.hits.extend(hits)
    return True


def scan_names(
    ctx: ScanContext, names: list[str], scan: ScanTally, commit: str | None = None, date: str | None = None
) -> None:
    """File names, directory names and symlink targets are data too: scan them, one per line."""
    if not names:
        return
    scan.lines_scanned += len(names)
    for hit in hits_for(ctx, names, "<file names>", commit=commit, date=date, kind="name", allow_inline=False):
        hit.file = names[hit.line - 1]
        hit.line = 0
        scan.hits.append(hit)
