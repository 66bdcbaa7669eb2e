"""Hashing one artifact on several workers: a deterministic partition of its files, and an exact merge.

``aisec hash DIR --partition K/N -o part-K.json`` (or ``ArtifactHashOperator(partition=…)``) hashes
partition ``K`` of ``N``; ``aisec manifest merge part-*.json -o manifest.json`` (or
``ManifestMergeOperator``) joins the ``N`` parts into the manifest that ``aisec hash DIR -o
manifest.json`` writes, byte for byte, root digest included.

**The listing.** Every worker walks the root exactly as :func:`~airflow_aisec.core.hashing.hash_manifest`
does and reduces the walk to a *listing*: per file or link its path, type, size and link target, and
every directory. The *listing digest* (:func:`listing_digest`) hashes a length-prefixed encoding of
it, of the root string, the algorithm, the artifact kind, the symlink option, the rule and ``N``. A
planner (:func:`plan_partitions`) hands that digest to every worker; a worker whose own listing
differs (a file added, removed or resized between planning and hashing) refuses to hash.

**The rule** (:data:`PARTITION_RULE`, longest-processing-time first). Each file or link weighs its
size plus :data:`FILE_COST_BYTES` (the cost of opening one more file or object, in bytes). Entries
are taken by decreasing weight, ties by path (UTF-8 bytes), and each goes to the partition with the
smallest load so far, ties to the lowest ``K``. Directories are recorded by partition 1. The rule is a
pure function of the listing, so every worker computes the same assignment without talking to the
others; LPT keeps the largest partition within 4/3 of the optimum.

**A part** (``aisec.manifest-part/v1``) records its partition ``K``, ``N``, the rule, the listing
digest and totals, its own entries (hashed) and directories, and a *part digest* over all of that.

**The merge** (:func:`merge_parts`) refuses, naming the cause: parts of different roots, algorithms,
options, kinds, rules, ``N`` or listings; a partition given twice or missing; an entry in two parts or
in a part the rule does not assign it to; a union that is not the listing (a file missing or added);
a part whose part digest does not match (edited). Only then is the manifest built. The merge reads
each part once and sorts the entries once: O(entries · log entries) time, O(entries) memory.

A part digest detects edits, not a forger: whoever can write the parts can recompute it. Keep parts on
storage only the pipeline writes and sign the merged manifest.
"""

from __future__ import annotations

import heapq
import json
import os
import posixpath
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_aisec.core import hashing
from airflow_aisec.core.manifest import (
    _DIR,
    _FILE,
    _LINK,
    KINDS,
    MAX_ENTRIES,
    MAX_MANIFEST_BYTES,
    Entry,
    Manifest,
    _parse_entry,
    available_algorithms,
    check_rel_path,
    hex_length,
    new_hasher,
)
from airflow_aisec.core.walk import ArtifactChangedError, _recheck_directories, _walk_with_root
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report

PART_SCHEMA = "aisec.manifest-part/v1"
#: Name of the partitioning rule; parts made under another rule are never merged together.
PARTITION_RULE = "lpt-size+65536/v1"
#: Weight of one file or link on top of its size: opening a file or fetching an object costs time too.
FILE_COST_BYTES = 65536
#: Most partitions of one artifact.
MAX_PARTITIONS = 10_000
LISTING_TAG = b"aisec.partition-listing/v1\x00"
PART_TAG = b"aisec.manifest-part/v1\x00"
_PART_FIELDS = frozenset(
    {
        "schema",
        "algorithm",
        "kind",
        "root",
        "follow_symlinks",
        "rule",
        "partition",
        "partitions",
        "listing_digest",
        "listing_files",
        "listing_bytes",
        "listing_directories",
        "entries",
        "directories",
        "part_digest",
    }
)
TAGS = ("AML.M0014", "AML.T0010", "OWASP-ML06")


def parse_partition(value: Any) -> tuple[int, int, str | None]:
    """``"K/N"`` or a planner spec ``{"partition": "K/N", "listing_digest": …}`` → ``(K, N, digest)``.

    ``K`` counts from 1. :raises AisecInputError: anything else, ``K`` outside ``1..N``, ``N`` too large.
    """
    digest = None
    if isinstance(value, Mapping):
        unknown = set(value) - {"partition", "listing_digest", "files", "bytes"}
        if unknown or "partition" not in value:
            raise AisecInputError(f"partition spec needs 'partition' (K/N); unexpected {sorted(unknown)[:5]}")
        digest = value.get("listing_digest")
        if digest is not None and (not isinstance(digest, str) or not digest or len(digest) > 256):
            raise AisecInputError("partition spec: listing_digest must be a hex string")
        value = value["partition"]
    if not isinstance(value, str) or value.count("/") != 1:
        raise AisecInputError(f"partition must be 'K/N' (e.g. '1/4'), not {str(value)[:40]!r}")
    k_text, n_text = value.split("/")
    if not (k_text.isascii() and k_text.isdigit() and n_text.isascii() and n_text.isdigit()):
        raise AisecInputError(f"partition must be 'K/N' with whole numbers, not {value[:40]!r}")
    k, n = int(k_text), int(n_text)
    if not 1 <= n <= MAX_PARTITIONS or not 1 <= k <= n:
        raise AisecInputError(f"partition {value[:40]!r}: need 1 <= K <= N <= {MAX_PARTITIONS}")
    return k, n, digest


@dataclass(frozen=True, slots=True)
class Listing:
    """What a walk saw, before hashing: the input of the partitioning rule and of the listing digest.

    :param records: ``(path, type, size, link)`` of every file and link, sorted by path.
    :param directories: every directory, sorted by path.
    """

    root: str
    algorithm: str
    kind: str
    follow_symlinks: bool
    records: tuple[tuple[str, str, int, str | None], ...]
    directories: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return sum(r[2] for r in self.records)

    def digest(self, partitions: int) -> str:
        return listing_digest(self, partitions)

    def assignment(self, partitions: int) -> list[int]:
        """Partition (1-based) of each record, in record order."""
        return assign([r[2] for r in self.records], [r[0] for r in self.records], partitions)


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def listing_digest(listing: Listing, partitions: int) -> str:
    """Hash (the manifest's algorithm) of the listing's length-prefixed encoding; see the module docstring."""
    hasher = new_hasher(listing.algorithm)
    head = [listing.root, listing.algorithm, listing.kind, str(listing.follow_symlinks).lower(), PARTITION_RULE]
    hasher.update(LISTING_TAG + b"".join(_field(h.encode("utf-8", "surrogateescape")) for h in head))
    hasher.update(partitions.to_bytes(8, "big") + len(listing.records).to_bytes(8, "big"))
    for path, etype, size, link in sorted(listing.records, key=lambda r: r[0].encode("utf-8")):
        link_bytes = os.fsencode(link) if link is not None else b""
        hasher.update(
            _field(etype.encode()) + _field(path.encode("utf-8")) + size.to_bytes(8, "big") + _field(link_bytes)
        )
    hasher.update(len(listing.directories).to_bytes(8, "big"))
    for d in sorted(listing.directories, key=lambda d: d.encode("utf-8")):
        hasher.update(_field(d.encode("utf-8")))
    return str(hasher.hexdigest())


def assign(sizes: Sequence[int], paths: Sequence[str], partitions: int) -> list[int]:
    """Longest-processing-time assignment: heaviest first (ties by path bytes), to the least loaded
    partition (ties to the lowest number). Returns the 1-based partition of each input, in input order."""
    order = sorted(range(len(sizes)), key=lambda i: (-(sizes[i] + FILE_COST_BYTES), paths[i].encode("utf-8")))
    loads = [(0, k) for k in range(1, partitions + 1)]  # (load, partition): a heap, ties to the lowest k
    out = [0] * len(sizes)
    for i in order:
        load, k = heapq.heappop(loads)
        out[i] = k
        heapq.heappush(loads, (load + sizes[i] + FILE_COST_BYTES, k))
    return out


def _walk_listing(root: Any, algorithm: str, follow_symlinks: bool) -> tuple[Listing, list[Any], Any, list[Any]]:
    """Walk ``root`` as ``hash_manifest`` does: the listing, the hashable items, the walked path, its directories."""
    new_hasher(algorithm)  # validate early
    walked = hashing.as_path(root)
    items, walked_dirs = _walk_with_root(walked, follow_symlinks)
    specials = [i for i in items if i.kind not in (_FILE, _LINK, _DIR)]
    if specials:
        shown = ", ".join(f"{i.rel} ({i.kind})" for i in specials[:5])
        raise AisecUndecidableError(
            f"{len(specials)} special file(s) under {root} (never opened, cannot be hashed): {shown}"
        )
    kind = "file" if len(items) == 1 and items[0].is_root else "directory"
    hashable = [i for i in items if i.kind in (_FILE, _LINK)]
    listing = Listing(
        root=str(root),
        algorithm=algorithm,
        kind=kind,
        follow_symlinks=follow_symlinks,
        records=tuple((i.rel, i.kind, i.size if i.kind == _FILE else 0, i.link) for i in hashable),
        directories=tuple(i.rel for i in items if i.kind == _DIR),
    )
    return listing, hashable, walked, walked_dirs


def plan_partitions(
    root: Any, partitions: int, algorithm: str = "sha256", *, follow_symlinks: bool = False
) -> list[dict[str, Any]]:
    """List ``root`` once and return ``partitions`` specs ``{"partition": "K/N", "listing_digest", "files",
    "bytes"}`` (one per worker; ``files``/``bytes`` show the balance)."""
    parse_partition(f"1/{partitions}")
    listing, _, _, _ = _walk_listing(root, algorithm, follow_symlinks)
    digest = listing.digest(partitions)
    owners = listing.assignment(partitions)
    files, sizes = [0] * (partitions + 1), [0] * (partitions + 1)
    for record, k in zip(listing.records, owners, strict=True):
        files[k] += 1
        sizes[k] += record[2]
    return [
        {"partition": f"{k}/{partitions}", "listing_digest": digest, "files": files[k], "bytes": sizes[k]}
        for k in range(1, partitions + 1)
    ]


@dataclass(frozen=True, slots=True)
class Part:
    """One partition's share of a manifest (see the module docstring)."""

    root: str
    algorithm: str
    kind: str
    follow_symlinks: bool
    partition: int
    partitions: int
    listing_digest: str
    listing_files: int
    listing_bytes: int
    listing_directories: int
    entries: tuple[Entry, ...]
    directories: tuple[str, ...]
    rule: str = PARTITION_RULE

    def _body(self) -> dict[str, Any]:
        return {
            "schema": PART_SCHEMA,
            "algorithm": self.algorithm,
            "kind": self.kind,
            "root": self.root,
            "follow_symlinks": self.follow_symlinks,
            "rule": self.rule,
            "partition": self.partition,
            "partitions": self.partitions,
            "listing_digest": self.listing_digest,
            "listing_files": self.listing_files,
            "listing_bytes": self.listing_bytes,
            "listing_directories": self.listing_directories,
            "entries": [e.to_dict() for e in self.entries],
            "directories": list(self.directories),
        }

    @property
    def part_digest(self) -> str:
        hasher = new_hasher(self.algorithm)
        hasher.update(PART_TAG + json.dumps(self._body(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
        return str(hasher.hexdigest())

    def to_bytes(self) -> bytes:
        doc = self._body()
        doc["part_digest"] = self.part_digest
        return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    @property
    def name(self) -> str:
        return f"{self.partition}/{self.partitions}"


def hash_partition(
    root: Any,
    partition: Any,
    algorithm: str = "sha256",
    workers: int | None = None,
    *,
    follow_symlinks: bool = False,
) -> Part:
    """Walk ``root`` and hash the files the rule assigns to ``partition`` (``"K/N"`` or a planner spec).

    :raises AisecUndecidableError: the listing differs from the spec's ``listing_digest`` (the artifact
        changed since it was planned), a special file, an unreadable file.
    :raises ArtifactChangedError: a file's size differs from the listing, or a directory was swapped.
    """
    k, n, planned = parse_partition(partition)
    listing, hashable, walked, walked_dirs = _walk_listing(root, algorithm, follow_symlinks)
    digest = listing.digest(n)
    if planned is not None and planned != digest:
        raise AisecUndecidableError(
            f"{root} changed between planning and hashing (listing digest {digest[:16]}… is not the planned "
            f"{planned[:16]}…): a file was added, removed or resized; plan again"
        )
    owners = listing.assignment(n)
    mine = [item for item, owner in zip(hashable, owners, strict=True) if owner == k]
    entries: list[Entry] = []
    for item, result in hashing._hash_items(mine, algorithm, workers, f"{root} [{k}/{n}]"):
        if isinstance(result, Exception):
            raise result
        if item.kind == _FILE and result.size != item.size:
            raise ArtifactChangedError(f"file changed size since it was listed: {item.rel}")
        entries.append(Entry(path=item.rel, type=item.kind, size=result.size, digest=result.digest, link=item.link))
    if walked_dirs:
        _recheck_directories(walked, walked_dirs)
    return Part(
        root=listing.root,
        algorithm=algorithm,
        kind=listing.kind,
        follow_symlinks=follow_symlinks,
        partition=k,
        partitions=n,
        listing_digest=digest,
        listing_files=len(listing.records),
        listing_bytes=listing.total_bytes,
        listing_directories=len(listing.directories),
        entries=tuple(sorted(entries, key=lambda e: e.path)),
        directories=listing.directories if k == 1 else (),
    )


def parse_part(data: bytes | str, source: str = "part") -> Part:
    """Parse untrusted part bytes strictly; :class:`AisecInputError` names ``source`` and the cause."""
    from airflow_aisec.utils import strictjson as sj

    doc = sj.loads(data, source=source, max_bytes=MAX_MANIFEST_BYTES)
    if not isinstance(doc, dict) or doc.get("schema") != PART_SCHEMA:
        raise AisecInputError(f"{source} is not an {PART_SCHEMA} document")
    fields = set(doc)
    if fields != _PART_FIELDS:
        raise AisecInputError(
            f"{source}: unexpected field(s) {sorted(fields - _PART_FIELDS)[:5]}, "
            f"missing {sorted(_PART_FIELDS - fields)[:5]}"
        )
    algorithm = sj.get_str(doc, "algorithm", source)
    if algorithm not in available_algorithms() and algorithm != "blake3":
        raise AisecInputError(f"{source}: unknown hash algorithm {algorithm[:40]!r}")
    kind = sj.get_str(doc, "kind", source)
    if kind not in KINDS:
        raise AisecInputError(f"{source}: kind must be 'file' or 'directory'")
    partitions = sj.get_int(doc, "partitions", source, lo=1, hi=MAX_PARTITIONS)
    partition = sj.get_int(doc, "partition", source, lo=1, hi=partitions)
    listing = sj.get_str(doc, "listing_digest", source)
    if len(listing) != hex_length(algorithm) or any(c not in "0123456789abcdef" for c in listing):
        raise AisecInputError(f"{source}: listing_digest is not a {algorithm} hex digest")
    raw_entries = sj.get_list(doc, "entries", source)
    raw_dirs = sj.get_list(doc, "directories", source)
    if len(raw_entries) + len(raw_dirs) > MAX_ENTRIES:
        raise AisecInputError(f"{source} has more than {MAX_ENTRIES} entries and directories")
    hex_len = hex_length(algorithm)
    entries = tuple(
        _parse_entry(e, f"{source} entries[{n}]", source, algorithm, hex_len, False) for n, e in enumerate(raw_entries)
    )
    directories = tuple(check_rel_path(d, f"{source} directories[{n}]") for n, d in enumerate(raw_dirs))
    part = Part(
        root=sj.get_str(doc, "root", source),
        algorithm=algorithm,
        kind=kind,
        follow_symlinks=sj.get(doc, "follow_symlinks", bool, source),
        partition=partition,
        partitions=partitions,
        listing_digest=listing,
        listing_files=sj.get_int(doc, "listing_files", source, lo=0, hi=MAX_ENTRIES),
        listing_bytes=sj.get_int(doc, "listing_bytes", source, lo=0, hi=2**63 - 1),
        listing_directories=sj.get_int(doc, "listing_directories", source, lo=0, hi=MAX_ENTRIES),
        entries=entries,
        directories=directories,
        rule=sj.get_str(doc, "rule", source),
    )
    if sj.get_str(doc, "part_digest", source) != part.part_digest:
        raise AisecInputError(f"{source}: part digest does not match its content (edited part?)")
    return part


_SAME = ("root", "algorithm", "kind", "follow_symlinks", "rule", "partitions", "listing_digest")


def merge_parts(parts: Iterable[Part], sources: Sequence[str] | None = None) -> Manifest:
    """Join parts into the manifest a single-pass hash writes; refuse anything but an exact cover.

    :param sources: a name per part for the messages (default ``part K/N``).
    :raises AisecInputError: see the module docstring; no manifest is returned.
    """
    parts = list(parts)
    if not parts:
        raise AisecInputError("no parts to merge")
    names = list(sources) if sources is not None else [f"part {p.name}" for p in parts]
    first = parts[0]
    for field in _SAME:  # parts of one plan agree on all of these
        for p, name in zip(parts, names, strict=True):
            if getattr(p, field) != getattr(first, field):
                raise AisecInputError(
                    f"parts of different runs: {name} has {field} {str(getattr(p, field))[:80]!r}, "
                    f"{names[0]} has {str(getattr(first, field))[:80]!r}"
                )
    if first.rule != PARTITION_RULE:
        raise AisecInputError(f"parts use the partition rule {first.rule[:40]!r}; this version uses {PARTITION_RULE}")
    n = first.partitions
    seen: dict[int, str] = {}
    for p, name in zip(parts, names, strict=True):
        if p.partition in seen:
            raise AisecInputError(f"partition {p.name} given twice ({seen[p.partition]} and {name}): overlapping parts")
        seen[p.partition] = name
    missing = [k for k in range(1, n + 1) if k not in seen]
    if missing:
        shown = ", ".join(f"{k}/{n}" for k in missing[:10]) + (" …" if len(missing) > 10 else "")
        raise AisecInputError(f"missing partition(s) {shown}: the parts do not cover the artifact")
    owner: dict[str, tuple[int, str]] = {}
    entries: list[Entry] = []
    directories: list[str] = []
    for p, name in zip(parts, names, strict=True):
        for path in [e.path for e in p.entries] + list(p.directories):
            if path in owner:
                raise AisecInputError(f"duplicate entry {path[:200]!r} in {owner[path][1]} and {name}")
            owner[path] = (p.partition, name)
        if p.directories and p.partition != 1:
            raise AisecInputError(f"{name} lists directories; the rule records them in partition 1/{n}")
        entries.extend(p.entries)
        directories.extend(p.directories)
    listing = Listing(
        root=first.root,
        algorithm=first.algorithm,
        kind=first.kind,
        follow_symlinks=first.follow_symlinks,
        records=tuple(sorted(((e.path, e.type, e.size, e.link) for e in entries), key=lambda r: r[0].encode())),
        directories=tuple(directories),
    )
    counts = (len(listing.records), listing.total_bytes, len(listing.directories))
    planned = (first.listing_files, first.listing_bytes, first.listing_directories)
    if counts != planned or listing.digest(n) != first.listing_digest:
        raise AisecInputError(
            f"the parts do not add up to the listing they were planned from ({counts[0]} file(s), {counts[1]} "
            f"bytes, {counts[2]} directories hashed; {planned[0]}, {planned[1]}, {planned[2]} listed): "
            "a file is missing, was added or changed size, or a part was altered"
        )
    for record, k in zip(listing.records, listing.assignment(n), strict=True):
        if owner[record[0]][0] != k:
            raise AisecInputError(
                f"entry {record[0][:200]!r} is in {owner[record[0]][1]} but the rule assigns it to partition {k}/{n}"
            )
    for path in directories + [e.path for e in entries]:
        parent = posixpath.dirname(path)
        if parent and parent not in owner:
            raise AisecInputError(f"{path[:200]!r} is listed but its parent is not a directory")
    return Manifest.build(
        kind=first.kind,
        algorithm=first.algorithm,
        entries=entries,
        directories=sorted(directories),
        root=first.root,
    )


# --------------------------------------------------------------------------- reports (CLI and operators)
def hash_partition_artifact(
    path: Any,
    partition: Any,
    *,
    part_path: str | os.PathLike[str],
    algorithm: str = "sha256",
    workers: int | None = None,
    follow_symlinks: bool = False,
) -> Report:
    """Hash one partition of ``path``, write the part atomically to ``part_path``, and report."""
    from airflow_aisec.core.integrity import refuse_output_inside
    from airflow_aisec.utils.fs import write_bytes_atomic

    report = Report.start("integrity", str(path), tags=list(TAGS))
    refuse_output_inside(part_path, path, "part")
    t0 = time.monotonic()
    part = hash_partition(path, partition, algorithm, workers, follow_symlinks=follow_symlinks)
    seconds = time.monotonic() - t0
    write_bytes_atomic(part_path, part.to_bytes())
    size = sum(e.size for e in part.entries)
    report.details.update(
        mode="hash-partition",
        algorithm=algorithm,
        partition=part.name,
        listing_digest=part.listing_digest,
        part_digest=part.part_digest,
        part_path=os.fspath(part_path),
        manifest_path=os.fspath(part_path),
        kind=part.kind,
    )
    report.metrics.update(
        files=len(part.entries),
        bytes=size,
        listed_files=part.listing_files,
        listed_bytes=part.listing_bytes,
        hash_seconds=round(seconds, 6),
    )
    return report.finish(
        "pass",
        f"partition {part.name} hashed: {len(part.entries)} of {part.listing_files} file(s), "
        f"{size} of {part.listing_bytes} bytes",
    )


def plan_report(root: Any, partitions: int, *, algorithm: str = "sha256", follow_symlinks: bool = False) -> Report:
    """:func:`plan_partitions` as a report; ``details.specs`` holds the specs."""
    report = Report.start("integrity", str(root), tags=list(TAGS))
    specs = plan_partitions(root, partitions, algorithm, follow_symlinks=follow_symlinks)
    sizes = [s["bytes"] for s in specs]
    report.details.update(mode="plan", algorithm=algorithm, specs=specs)
    report.metrics.update(
        partitions=partitions,
        files=sum(s["files"] for s in specs),
        bytes=sum(sizes),
        largest_part_bytes=max(sizes),
        smallest_part_bytes=min(sizes),
    )
    return report.finish(
        "pass",
        f"{sum(s['files'] for s in specs)} file(s), {sum(sizes)} bytes planned as {partitions} partition(s) "
        f"(largest {max(sizes)} bytes)",
    )


def merge_artifact_parts(
    part_paths: Sequence[str | os.PathLike[str]],
    *,
    manifest_path: str | os.PathLike[str],
    signing_key: Any = None,
    expected_part_digests: Sequence[str | None] | None = None,
) -> Report:
    """Read and merge ``part_paths``, write the manifest (and ``<manifest>.sig`` with ``signing_key``), and report.

    Nothing is written unless every part is read and the merge succeeds.

    :param expected_part_digests: per part, the part digest its hashing task reported (``None``: not
        known). A part file whose digest differs was replaced or edited after its task wrote it (a part
        digest detects edits, not a forger who recomputes it; the task's own report is the reference).
    """
    from airflow_aisec.core import signing
    from airflow_aisec.core.integrity import SIGNED_TAGS, refuse_output_inside
    from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

    names = [os.fspath(p) for p in part_paths]
    parts = [parse_part(hashing.read_evidence(p, "part"), f"part {p}") for p in names]
    for part, name, expected in zip(parts, names, expected_part_digests or [None] * len(parts), strict=True):
        if expected is not None and part.part_digest != expected:
            raise AisecUndecidableError(
                f"part {name} is not the part its hashing task reported (part digest {part.part_digest[:23]}…, "
                f"reported {str(expected)[:23]}…): replaced or edited after it was written"
            )
    manifest = merge_parts(parts, names)
    refuse_output_inside(manifest_path, parts[0].root, "manifest")
    report = Report.start("integrity", parts[0].root, tags=list(TAGS))
    data = manifest.to_bytes()
    write_bytes_atomic(manifest_path, data)
    report.details.update(
        mode="merge",
        algorithm=manifest.algorithm,
        digest=manifest.artifact_digest,
        root_digest=manifest.root_digest,
        kind=manifest.kind,
        parts=len(parts),
        manifest_path=os.fspath(manifest_path),
        signature_path=None,
    )
    if signing_key is not None:
        signature_path = os.fspath(manifest_path) + ".sig"
        write_json_atomic(signature_path, signing.sign(data, signing_key))
        report.details.update(signature_path=signature_path, key_id=signing_key.key_id)
        report.add_tags(*SIGNED_TAGS)
    report.metrics.update(files=manifest.file_count, bytes=manifest.total_bytes, parts=len(parts))
    signed = " and signed" if signing_key is not None else ""
    return report.finish(
        "pass",
        f"{len(parts)} part(s) merged{signed}: {manifest.file_count} file(s), {manifest.total_bytes} bytes, "
        f"{manifest.algorithm}:{manifest.artifact_digest}",
    )
