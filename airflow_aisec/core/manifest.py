"""The integrity manifest as a value: :class:`Manifest` (frozen, typed), its canonical bytes and its parser.

A manifest pins an artifact: every entry (file or symbolic link) with its size and digest, every
directory, the artifact's kind (a single ``file`` or a ``directory``) and a root digest over all of
it (:func:`root_digest`). :meth:`Manifest.to_bytes` is what is written and signed;
:meth:`Manifest.from_bytes` reads untrusted bytes strictly. A manifest written by this package reads
back to the same value and serialises to the same bytes. ``aisec.manifest/v1`` documents (ambiguous
text-line root digest) are still read and verified entry by entry.

:mod:`airflow_aisec.core.hashing` walks and hashes a tree into a :class:`Manifest`, and re-exports
the names of this module for code that imports them from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_aisec.exceptions import AisecInputError

MANIFEST_SCHEMA = "aisec.manifest/v2"
#: The legacy schema: still parsed and verified entry by entry (its root digest is ambiguous).
MANIFEST_SCHEMA_V1 = "aisec.manifest/v1"
MANIFEST_SCHEMAS = (MANIFEST_SCHEMA, MANIFEST_SCHEMA_V1)
#: Domain-separation tag that starts the byte string hashed into a v2 root digest.
ROOT_DIGEST_TAG = b"aisec.root-digest/v2\x00"
#: Entry types of a v2 manifest (directories are listed separately, under ``directories``).
ENTRY_TYPES = ("file", "symlink")
KINDS = ("file", "directory")
#: Largest manifest document accepted (bytes) and most entries in one manifest.
MAX_MANIFEST_BYTES = 256 * 2**20
MAX_ENTRIES = 5_000_000
#: Longest relative path and path segment accepted in a manifest (characters).
MAX_PATH_CHARS = 4096
MAX_NAME_CHARS = 255
#: Algorithms always available; ``blake3`` is added when the optional package is installed.
ALGORITHMS = ("sha256", "sha512", "blake2b")

_DIR, _FILE, _LINK = "dir", "file", "symlink"
#: The top-level fields of an ``aisec.manifest/v2`` document.
_V2_FIELDS = frozenset(
    {"schema", "algorithm", "kind", "root", "file_count", "total_bytes", "root_digest", "entries", "directories"}
)
#: v1 fields this module reads into the value; the others are kept as they were (``legacy_fields``).
_V1_TYPED = frozenset({"schema", "algorithm", "kind", "root_digest", "entries"})


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


def hex_length(algorithm: str) -> int:
    """Length of a hex digest of ``algorithm``."""
    return int(new_hasher(algorithm).digest_size) * 2


_hex_length = hex_length  # the former private name


@dataclass(frozen=True, slots=True)
class Entry:
    """One manifest entry: a regular file, or a symbolic link (its target text is hashed, never followed).

    :param path: canonical relative POSIX path inside the root.
    :param type: ``file`` or ``symlink``.
    :param size: bytes (0 for a link).
    :param digest: lowercase hex digest of the content (of ``symlink:<target>`` for a link).
    :param link: the link's target text (links only).
    """

    path: str
    type: str
    size: int
    digest: str
    link: str | None = None

    def to_dict(self, *, legacy: bool = False) -> dict[str, Any]:
        """The entry as written (``legacy``: the v1 shape, without ``type``)."""
        out: dict[str, Any] = {"path": self.path, "size": self.size, "digest": self.digest}
        if not legacy:
            out["type"] = self.type
        if self.link is not None:
            out["link"] = self.link
        return out


def _as_mapping(e: Entry | Mapping[str, Any]) -> Mapping[str, Any]:
    return e.to_dict() if isinstance(e, Entry) else e


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


def link_digest(link: str, algorithm: str) -> str:
    """Digest recorded for a symbolic link: the hash of ``symlink:`` and its target text."""
    hasher = new_hasher(algorithm)
    hasher.update(b"symlink:" + os.fsencode(link))
    return str(hasher.hexdigest())


_link_digest = link_digest  # the former private name (tests and callers import it)


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def root_digest(
    entries: Iterable[Entry | Mapping[str, Any]],
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
        for e in sorted((_as_mapping(e) for e in entries), key=lambda e: e["path"]):
            hasher.update(f"{e['digest']}  {e['size']}  {e['path']}\n".encode())
        return str(hasher.hexdigest())
    hasher = new_hasher(algorithm)
    for chunk in _encode_root(entries, algorithm, directories, kind):
        hasher.update(chunk)
    return str(hasher.hexdigest())


def _encode_root(
    entries: Iterable[Entry | Mapping[str, Any]], algorithm: str, directories: Iterable[str], kind: str
) -> Iterator[bytes]:
    records: list[tuple[bytes, bytes, int, bytes, bytes]] = []
    for e in map(_as_mapping, entries):
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
    entries: Iterable[Entry | Mapping[str, Any]],
    algorithm: str,
    *,
    directories: Iterable[str] = (),
    kind: str = "directory",
) -> bytes:
    """The exact bytes a v2 root digest hashes (documentation and tests; :func:`root_digest` streams them)."""
    return b"".join(_encode_root(entries, algorithm, directories, kind))


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed or freshly built manifest. Build one with :meth:`build` or :meth:`from_bytes`.

    :param kind: ``file`` or ``directory`` (``None`` only for a v1 manifest that did not record it).
    :param algorithm: the hash algorithm of every digest.
    :param entries: files and links, sorted by path.
    :param root_digest: the digest over all entries, directories and the kind (:func:`root_digest`).
    :param directories: every directory under the root (``None`` for v1, which did not record them).
    :param root: where the artifact was hashed (informational, not part of the root digest).
    :param version: 2, or 1 for a legacy document.
    :param legacy_fields: v1 only: the other top-level fields, as read.
    """

    kind: str | None
    algorithm: str
    entries: tuple[Entry, ...]
    root_digest: str
    directories: tuple[str, ...] | None = ()
    root: str | None = None
    version: int = 2
    legacy_fields: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def build(
        cls, *, kind: str, algorithm: str, entries: Iterable[Entry], directories: Iterable[str], root: str
    ) -> Manifest:
        """A v2 manifest of ``entries`` and ``directories``; the root digest is computed here, once."""
        ordered = tuple(sorted(entries, key=lambda e: e.path))
        dirs = tuple(directories)
        digest = root_digest(ordered, algorithm, directories=dirs, kind=kind)
        return cls(kind=kind, algorithm=algorithm, entries=ordered, root_digest=digest, directories=dirs, root=root)

    @property
    def file_count(self) -> int:
        return len(self.entries)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def artifact_digest(self) -> str:
        """The single value that pins the artifact: a file's digest, or a directory's root digest."""
        if self.kind == "file" and len(self.entries) == 1:
            return self.entries[0].digest
        return self.root_digest

    def document(self) -> dict[str, Any]:
        """The JSON document, exactly as it is written."""
        if self.version == 1:
            doc = dict(self.legacy_fields)
            doc.update(schema=MANIFEST_SCHEMA_V1, algorithm=self.algorithm, root_digest=self.root_digest)
            doc["entries"] = [e.to_dict(legacy=True) for e in self.entries]
            if self.kind is not None:
                doc["kind"] = self.kind
            return doc
        doc = {
            "schema": MANIFEST_SCHEMA,
            "algorithm": self.algorithm,
            "kind": self.kind,
            "file_count": self.file_count,
            "total_bytes": self.total_bytes,
            "root_digest": self.root_digest,
            "entries": [e.to_dict() for e in self.entries],
            "directories": list(self.directories or ()),
        }
        if self.root is not None:
            doc["root"] = self.root
        return doc

    def to_bytes(self) -> bytes:
        """Canonical bytes (sorted keys, 2-space indent, UTF-8, final newline): what is written and signed."""
        return manifest_bytes(self.document())

    def to_dict(self) -> dict[str, Any]:
        """The document plus ``version``, entries that always carry a ``type``, and ``directories``
        (``None`` for v1): the shape :func:`parse_manifest` has always returned."""
        out = self.document()
        out.update(
            entries=[e.to_dict() for e in self.entries],
            directories=None if self.directories is None else list(self.directories),
            version=self.version,
            kind=self.kind,
        )
        if self.version == 1:
            out.setdefault("file_count", self.file_count)
            out.setdefault("total_bytes", self.total_bytes)
        return out

    @classmethod
    def from_bytes(cls, data: bytes | str, source: str = "manifest") -> Manifest:
        """Parse and validate untrusted manifest bytes (v2, or legacy v1); :class:`AisecInputError` names ``source``.

        Strict JSON (duplicate keys, NaN, huge numbers, deep nesting refused), exact types, canonical
        relative paths inside the root, no duplicate paths, digests of the algorithm's length, a root
        digest that matches the entries.
        """
        from airflow_aisec.utils import strictjson as sj

        doc = sj.loads(data, source=source, max_bytes=MAX_MANIFEST_BYTES)
        if not isinstance(doc, dict) or doc.get("schema") not in MANIFEST_SCHEMAS:
            raise AisecInputError(f"{source} is not an {MANIFEST_SCHEMA} (or {MANIFEST_SCHEMA_V1}) manifest")
        legacy = doc["schema"] == MANIFEST_SCHEMA_V1
        if not legacy:  # v2 is exactly what this package writes: a field it does not write is refused
            unknown = set(doc) - _V2_FIELDS
            if unknown:
                raise AisecInputError(f"{source}: unexpected field(s) {sorted(unknown)[:5]}")
        algorithm = sj.get_str(doc, "algorithm", source)
        if algorithm not in available_algorithms() and algorithm != "blake3":
            raise AisecInputError(f"{source}: unknown hash algorithm {algorithm[:40]!r}")
        entries = _parse_entries(doc.get("entries"), algorithm, legacy, source)
        kind = sj.get_str(doc, "kind", source, None)
        if kind is not None and kind not in KINDS:
            raise AisecInputError(f"{source}: kind must be 'file' or 'directory'")
        directories = None if legacy else _parse_directories(doc, entries, kind, source)
        if legacy and kind == "file" and len(entries) != 1:
            raise AisecInputError(f"{source}: a 'file' manifest must hold exactly one entry")
        for key, expected in (("file_count", len(entries)), ("total_bytes", sum(e.size for e in entries))):
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
        root = None if legacy else sj.get_str(doc, "root", source, None)
        return cls(
            kind=kind,
            algorithm=algorithm,
            entries=tuple(entries),
            root_digest=declared,
            directories=None if directories is None else tuple(directories),
            root=root,
            version=1 if legacy else 2,
            legacy_fields=tuple((k, v) for k, v in doc.items() if k not in _V1_TYPED) if legacy else (),
        )


def _parse_entries(raw_entries: Any, algorithm: str, legacy: bool, source: str) -> list[Entry]:
    if not isinstance(raw_entries, list):
        raise AisecInputError(f"{source} has malformed entries (expected an array)")
    if len(raw_entries) > MAX_ENTRIES:
        raise AisecInputError(f"{source} has {len(raw_entries)} entries (at most {MAX_ENTRIES})")
    hex_len = hex_length(algorithm)
    entries: list[Entry] = []
    seen: set[str] = set()
    for n, e in enumerate(raw_entries):
        entry = _parse_entry(e, f"{source} entries[{n}]", source, algorithm, hex_len, legacy)
        if entry.path in seen:
            raise AisecInputError(f"{source} entries[{n}]: duplicate entry {entry.path!r}")
        seen.add(entry.path)
        entries.append(entry)
    return entries


def _parse_entry(e: Any, where: str, source: str, algorithm: str, hex_len: int, legacy: bool) -> Entry:
    from airflow_aisec.utils import strictjson as sj

    if not isinstance(e, dict) or not {"path", "size", "digest"} <= set(e):
        raise AisecInputError(f"{source} has malformed entries ({where}: needs path, size and digest)")
    extra = set(e) - ({"path", "size", "digest", "link"} | (set() if legacy else {"type"}))
    if extra:
        raise AisecInputError(f"{where}: unexpected field(s) {sorted(extra)[:5]}")
    path = check_rel_path(e["path"], where, legacy=legacy)
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
        if size != 0 or digest != link_digest(link, algorithm):
            raise AisecInputError(f"{where}: symlink entry's size/digest do not match its link target")
    elif link is not None:
        raise AisecInputError(f"{where}: a file entry cannot have a link target")
    return Entry(path=path, type=etype, size=size, digest=digest, link=link)


def _parse_directories(doc: dict[str, Any], entries: list[Entry], kind: str | None, source: str) -> list[str]:
    """v2 ``directories``: canonical, unique, every listed path's parent listed; the kind's shape."""
    from airflow_aisec.utils import strictjson as sj

    if kind is None:
        raise AisecInputError(f"{source}: missing 'kind'")
    raw_dirs = sj.get_list(doc, "directories", source)
    if len(raw_dirs) + len(entries) > MAX_ENTRIES:
        raise AisecInputError(f"{source} has more than {MAX_ENTRIES} entries and directories")
    seen = {e.path for e in entries}
    directories: list[str] = []
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
    if kind == "file" and (len(entries) != 1 or entries[0].type != _FILE or directories):
        raise AisecInputError(f"{source}: a 'file' manifest must hold exactly one file entry")
    return directories


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Canonical serialisation (sorted keys, 2-space indent, UTF-8): what is written and signed."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def parse_manifest(data: bytes | str, source: str = "manifest") -> dict[str, Any]:
    """:meth:`Manifest.from_bytes` as a plain document (:meth:`Manifest.to_dict`): always has ``version``
    (1 or 2), entries with a ``type``, and ``directories`` (``None`` for v1, which did not record them)."""
    return Manifest.from_bytes(data, source).to_dict()
