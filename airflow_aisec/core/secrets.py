"""Secrets scan of a working tree and of its git history, with detect-secrets' plugins plus ours.

* **Tree**: every regular file under a path, read without following symlinks and never opening a
  special file (FIFO, socket, device: reported as unscanned). Text is decoded leniently: UTF-8,
  UTF-16/32 with or without BOM (BOM or NUL pattern), anything else as UTF-8 with replacement (ASCII
  tokens survive). Files holding NUL bytes are also scanned as "strings" (ASCII, UTF-16 and UTF-32
  runs), so a token inside a binary file is found. File and directory names, symlink targets and
  each ``.git/config`` are scanned too.
* **History**: every object a clone carries, read as data (see :mod:`._secret_git`): every commit
  reachable from any ref (branches, tags, remotes, stash, notes; merges included, so a merge
  resolution is scanned), the whole content of every blob of every commit's tree, every path name,
  every commit and tag object (messages, author lines), every ref name, and blobs or trees a tag
  points at. For a sub-directory of the repository: its blobs, and the messages of the commits
  that changed it (ref names and tags belong to the whole repository). A shallow, grafted,
  replaced or partial history, or a repository setting ``core.worktree``, is an error unless
  ``partial_history`` accepts the former (then reported).
* **Nothing dropped silently**: what is not scanned (files above ``max_file_bytes``, compressed files,
  special files, unreadable files, submodules, missing or oversized objects) is counted and listed
  (``details.unscanned``) and decided by ``unscanned``: ``error`` (default, exit 2) or ``warn``.
  Excluded directories and symlinks not followed are counted (and the directories listed).

Detection: detect-secrets' whole plugin set plus Hugging Face and OpenAI key detectors
(:mod:`airflow_aisec.core._secret_plugins`).

Suppression (each counted and listed in the report with its reason, never silently): a
detect-secrets baseline (strict JSON), inline ``aisec: allow-secret <reason>`` on the line or the
line above (and detect-secrets' ``pragma: allowlist secret``), ``allow`` fingerprints.

**No secret value can leave this module**: findings hold type, location and a fingerprint (truncated
salted SHA-256). Reasons are restricted to a short plain-text alphabet with no long words. Before a
report (or an error message) is returned, every string in it is checked against every value the
scan detected (any 8-character substring) and run through the detectors again; matches are replaced
by ``[REDACTED]``. detect-secrets' logger (whose messages print values) is disabled during a scan.

No Airflow import here.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import AisecError, AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report, Status, gate_status, parse_fail_on

TAGS = ("AML.T0055", "OWASP-ML06")
DEFAULT_EXCLUDE_DIRS = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".tox",
    ".nox",
)
#: Files (and history blobs) above this size are not scanned: counted, listed, decided by ``unscanned``.
DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024
#: Secret types from pattern heuristics (entropy, keyword, public IP) get ``medium``; vendor-format tokens ``high``.
HEURISTIC_TYPES = {"Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword", "Public IP (ipv4)"}
FAIL_ON_LEVELS = ("high", "medium")
UNSCANNED_POLICIES = ("error", "warn")
#: At most this many entries are listed per details list (counts are always complete).
LIST_LIMIT = 200
REDACTED = "[REDACTED]"
#: Lines longer than this are scanned in chunks of this size overlapping by CHUNK_OVERLAP characters.
CHUNK = 16384
CHUNK_OVERLAP = 4096
#: At most this many findings are listed in a report (all are counted and decide the status).
MAX_FINDINGS = 1000
#: Commit, tree and tag objects above this size are not read (counted as unscanned).
OBJECT_MAX = 64 * 1024 * 1024
#: A detected value is redacted wherever any substring of this length of it appears.
GRAM = 8
#: Values shorter than GRAM but at least this long are redacted where they appear whole.
MIN_WHOLE = 6

_ALLOW_RE = re.compile(r"aisec:\s*allow-secret\b[\s:=-]*(?P<reason>.*?)\s*(?:\*/|-->)?\s*$")
_PRAGMA = re.compile(r"pragma: ?(?:allow|white)list[ -]secret")
_PRAGMA_NEXT = re.compile(r"^[\s#/*;<!-]*pragma: ?allowlist[ -]nextline[ -]secret")
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{24}$")
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
_FINGERPRINT_SALT = b"airflow-aisec/secret-fingerprint/v1\x00"
#: Hex strings of digest length on a line that names a hash are checksums (model / dataset digests), not keys.
_DIGEST_LENGTHS = {32, 40, 56, 64, 96, 128}
_DIGEST_WORDS = re.compile(r"sha\d*|hash|digest|checksum|md5|blake", re.IGNORECASE)
#: Reasons: plain words only, short, no long runs (a token is a long run).
_REASON_CHARS = re.compile(r"[^A-Za-z0-9 .,;:()/#@+'_-]")
_REASON_MAX = 80
_REASON_WORD_MAX = 16

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"PK\x07\x08", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x1f\x9d", "compress"),
)
_RUNS = (
    re.compile(rb"[\x20-\x7e\t]{6,}"),
    re.compile(rb"(?:[\x20-\x7e\t]\x00){6,}"),
    re.compile(rb"(?:\x00[\x20-\x7e\t]){6,}"),
    re.compile(rb"(?:[\x20-\x7e\t]\x00\x00\x00){6,}"),
    re.compile(rb"(?:\x00\x00\x00[\x20-\x7e\t]){6,}"),
)
_RUN_ENCODINGS = ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")


def fingerprint(secret: str) -> str:
    """Stable, non-reversible-in-practice identifier of a secret value (truncated salted SHA-256)."""
    return hashlib.sha256(_FINGERPRINT_SALT + secret.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def clean_reason(text: str) -> str:
    """A suppression reason that cannot carry a credential: short plain words, no long runs."""
    text = _REASON_CHARS.sub(" ", text)
    words = [w if len(w) <= _REASON_WORD_MAX else "…" for w in text.split()]
    out = " ".join(words)
    return out[:_REASON_MAX].strip() or "no reason given"


# ------------------------------------------------------------------------------------------- redaction
class Redactor:
    """Every value the scan detected; scrubs them (and any 8-character piece of them) out of text."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._grams: set[str] = set()
        self._whole: set[str] = set()

    def add(self, value: str) -> None:
        if not value or value in self._values:
            return
        self._values.add(value)
        if len(value) >= GRAM:
            self._grams.update(value[i : i + GRAM] for i in range(len(value) - GRAM + 1))
        elif len(value) >= MIN_WHOLE:
            self._whole.add(value)

    def __len__(self) -> int:
        return len(self._values)

    def leaks(self, text: str) -> bool:
        if any(text[i : i + GRAM] in self._grams for i in range(len(text) - GRAM + 1)):
            return True
        return any(w in text for w in self._whole)

    def scrub(self, text: str) -> str:
        for _ in range(4):
            if not self.leaks(text):
                return text
            marked = bytearray(len(text))
            for i in range(len(text) - GRAM + 1):
                if text[i : i + GRAM] in self._grams:
                    marked[i : i + GRAM] = b"\x01" * GRAM
            for w in self._whole:
                start = text.find(w)
                while start >= 0:
                    marked[start : start + len(w)] = b"\x01" * len(w)
                    start = text.find(w, start + 1)
            out, i = [], 0
            while i < len(text):
                if marked[i]:
                    while i < len(text) and marked[i]:
                        i += 1
                    out.append(REDACTED)
                else:
                    out.append(text[i])
                    i += 1
            text = "".join(out)
        return text if not self.leaks(text) else REDACTED


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def _scrub_obj(obj: Any, redactor: Redactor) -> Any:
    if isinstance(obj, str):
        return redactor.scrub(obj)
    if isinstance(obj, Mapping):
        return {redactor.scrub(str(k)): _scrub_obj(v, redactor) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_scrub_obj(v, redactor) for v in obj]
    return obj


def _learn(scan_lines: Any, texts: Sequence[str], redactor: Redactor) -> None:
    """Run the detectors over ``texts`` (report fields, messages) and remember every value found."""
    lines: list[str] = []
    for text in texts:
        lines.extend(text.splitlines() or [""])
    if not lines:
        return
    for secret in scan_lines(list(enumerate(lines, start=1)), "report"):
        if secret.secret_value:
            redactor.add(secret.secret_value)


def seal(report: Report, redactor: Redactor, scan_lines: Any) -> Report:
    """Redact every detected value from every field that can hold scanned data; verify none is left.

    Fields that can carry data from the scanned files, names or history: the subject, every finding's
    location and details, the report's details. The id, title, summary and metric names are built only
    from constants, counts and detector type names (never from scanned data).
    """
    fields = [report.subject, *_strings(report.details)]
    for f in report.findings:
        fields += [f.location, *_strings(f.details)]
    _learn(scan_lines, fields, redactor)
    report.subject = redactor.scrub(report.subject)
    report.details = _scrub_obj(report.details, redactor)
    for f in report.findings:
        f.location = redactor.scrub(f.location)
        f.details = _scrub_obj(f.details, redactor)
    final = [report.subject, *_strings(report.details)]
    for f in report.findings:
        final += [f.location, *_strings(f.details)]
    if any(redactor.leaks(text) for text in final):  # pragma: no cover - by construction
        raise AisecUndecidableError("the report could not be redacted; refusing to emit it")
    return report


def redact_text(text: str) -> str:
    """``text`` with anything the detectors find in it replaced (for subjects built outside a scan)."""
    redactor = Redactor()
    with _detector() as scan_lines:
        _learn(scan_lines, [text], redactor)
    return redactor.scrub(text)


# ----------------------------------------------------------------------------------- detect-secrets
@contextmanager
def _detector() -> Iterator[Any]:
    """detect-secrets' plugins plus ours; yields ``scan_lines(lines, filename)``.

    Vendor-format detectors (every plugin but the entropy and keyword heuristics) run on every line
    with NO filter: detect-secrets' heuristic filters (indirect references, templates, ``$``-prefixes
    …) exist to quiet the heuristics and would otherwise hide a real token (``secret = get("hf_…")``).
    The heuristics run through detect-secrets' filters, except its ``pragma: allowlist secret`` filter,
    which would drop a finding without a trace: that pragma is honoured by :func:`_hits_for` instead,
    as a listed suppression.
    """
    from detect_secrets.core import scan as ds_scan
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import get_filters, transient_settings

    from airflow_aisec.core import _secret_plugins

    ds_logger = logging.getLogger("detect-secrets")
    previous = (ds_logger.level, ds_logger.disabled)
    ds_logger.setLevel(logging.CRITICAL + 1)  # its messages contain secret values
    ds_logger.disabled = True
    get_mapping_from_secret_type_to_class.cache_clear()
    by_type: dict[str, Any] = dict(get_mapping_from_secret_type_to_class())
    heuristics = [{"name": cls.__name__} for t, cls in by_type.items() if t in HEURISTIC_TYPES]
    vendors = [cls() for t, cls in by_type.items() if t not in HEURISTIC_TYPES]
    vendors += [_secret_plugins.HuggingFaceTokenDetector(), _secret_plugins.OpenAIApiKeyDetector()]
    by_type.update({p.secret_type: type(p) for p in vendors})
    try:
        with transient_settings({"plugins_used": heuristics}) as settings:
            settings.disable_filters(
                "detect_secrets.filters.allowlist.is_line_allowlisted",
                "detect_secrets.filters.common.is_ignored_due_to_verification_policies",  # no network
            )
            get_mapping_from_secret_type_to_class.cache_clear()

            def scan_lines(lines: list[tuple[int, str]], filename: str) -> Iterator[Any]:
                text = dict(lines)
                for secret in ds_scan._process_line_based_plugins(lines, filename=filename):
                    yield secret
                for number, line in lines:
                    for plugin in vendors:
                        for secret in plugin.analyze_line(filename=filename, line=line, line_number=number):
                            value = secret.secret_value
                            if isinstance(value, str) and len(value) < GRAM:
                                full = _whole_match(by_type.get(secret.type), value, text.get(number, ""))
                                if full != value:
                                    secret.secret_value = full
                                    secret.set_secret(full)
                            yield secret

            yield scan_lines
    finally:
        get_mapping_from_secret_type_to_class.cache_clear()
        get_filters.cache_clear()
        ds_logger.setLevel(previous[0])
        ds_logger.disabled = previous[1]


def _whole_match(plugin: Any, value: str, line: str) -> str:
    """The whole token when a plugin's regex reports only a short group of it.

    detect-secrets' GitHub and GitLab detectors capture the *prefix* (``ghp``, ``glpat``): every such
    token would share one fingerprint and one baseline hash (one allow entry would hide them all) and
    the value could not be redacted. Widen the value to the whole regex match.
    """
    for regex in getattr(plugin, "denylist", ()) or ():
        for m in regex.finditer(line):
            if m.re.groups and value in (m.group(i) for i in range(1, m.re.groups + 1)):
                return m.group(0)
    return value


@dataclass
class Hit:
    """One detected secret (no value: only its fingerprints)."""

    type: str
    file: str
    line: int
    fingerprint: str
    hashed_secret: str  # detect-secrets' SHA-1, only to match baselines; never reported
    commit: str | None = None
    commit_date: str | None = None
    allow_reason: str | None = None
    kind: str = "content"  # content | name | message | ref

    @property
    def location(self) -> str:
        if self.kind == "name":
            where = f"{self.file} (file name)"
        elif self.kind == "ref":
            where = f"{self.file} (ref name)"
        else:
            where = f"{self.file}:{self.line}"
        return f"{self.commit[:12]}:{where}" if self.commit else where


@dataclass
class _Scan:
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


class _Ctx:
    def __init__(self, scan_lines: Any, redactor: Redactor, max_bytes: int) -> None:
        self.scan_lines = scan_lines
        self.redactor = redactor
        self.max_bytes = max_bytes


def _hits_for(
    ctx: _Ctx,
    lines: list[str],
    filename: str,
    *,
    numbers: Sequence[int] | None = None,
    commit: str | None = None,
    date: str | None = None,
    kind: str = "content",
    allow_inline: bool = True,
    seen: set[int] | None = None,
) -> list[Hit]:
    """Detector hits on ``lines`` (numbered 1..n; reported as ``numbers``).

    With ``seen`` (history), a (file, line) pair already scanned in an earlier version of the file is
    not scanned again: its hits were attributed to the earlier commit.
    """
    if not lines:
        return []
    todo = list(range(1, len(lines) + 1))
    if seen is not None:
        keep = []
        for i in todo:
            line_key = hash((filename, lines[i - 1]))
            if line_key not in seen:
                seen.add(line_key)
                keep.append(i)
        todo = keep
        if not todo:
            return []
    # Very long lines are scanned as overlapping chunks: detect-secrets' filters re-read the whole line
    # for every candidate (quadratic). Any match up to CHUNK_OVERLAP characters lies in one chunk.
    origin: list[int] = []
    numbered: list[tuple[int, str]] = []
    for i in todo:
        line = lines[i - 1]
        if len(line) <= CHUNK:
            origin.append(i)
            numbered.append((len(numbered) + 1, line))
            continue
        for start in range(0, len(line) - CHUNK_OVERLAP, CHUNK - CHUNK_OVERLAP):
            origin.append(i)
            numbered.append((len(numbered) + 1, line[start : start + CHUNK]))
    found: dict[tuple[int, str], Hit] = {}
    for secret in ctx.scan_lines(numbered, filename):
        value = secret.secret_value
        if not value or not 0 < secret.line_number <= len(origin):
            continue
        line_number = origin[secret.line_number - 1]
        ctx.redactor.add(value)
        key = (line_number, fingerprint(value))
        hit = Hit(secret.type, filename, line_number, key[1], secret.secret_hash, commit, date, kind=kind)
        text = lines[line_number - 1]
        if secret.type == "Hex High Entropy String" and len(value) in _DIGEST_LENGTHS and _DIGEST_WORDS.search(text):
            hit.allow_reason = "hash digest on a line naming a hash (not a credential)"
        previous = found.get(key)
        # Same value on the same line seen by several plugins: keep the most specific type.
        if previous is None or (previous.type in HEURISTIC_TYPES and hit.type not in HEURISTIC_TYPES):
            found[key] = hit
        del value
    for hit in found.values():
        if hit.allow_reason or not allow_inline:
            continue
        for n in (hit.line, hit.line - 1):
            if 0 < n <= len(lines):
                m = _ALLOW_RE.search(lines[n - 1])
                if m:
                    hit.allow_reason = clean_reason(m.group("reason") or "inline aisec: allow-secret")
                    break
        if hit.allow_reason is None:
            here = lines[hit.line - 1] if 0 < hit.line <= len(lines) else ""
            above = lines[hit.line - 2] if 1 < hit.line <= len(lines) else ""
            if _PRAGMA.search(here) or _PRAGMA_NEXT.search(above):
                hit.allow_reason = "detect-secrets pragma: allowlist secret"
    hits = sorted(found.values(), key=lambda h: (h.line, h.type))
    if numbers is not None:
        for hit in hits:
            hit.line = numbers[hit.line - 1]
    return hits


def decode(data: bytes) -> tuple[str, str]:
    """Text of ``data`` and how it was read: a BOM, else the NUL pattern, else UTF-8 (lenient).

    Returns ``("", "binary")`` when ``data`` holds NUL bytes in no UTF-16/32 pattern.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace"), encoding
    if b"\x00" in data:
        guessed = _nul_pattern(data[:65536])
        if guessed:
            return data.decode(guessed, "replace"), guessed
        return "", "binary"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), "utf-8 (lenient)"


def _nul_pattern(sample: bytes) -> str | None:
    n = len(sample) - len(sample) % 4
    if n < 4:
        n = len(sample) - len(sample) % 2
        if n < 2:
            return None
    quarters = [sample[k:n:4] for k in range(4)]
    zero = [q.count(0) / max(len(q), 1) for q in quarters]
    if n % 4 == 0 and n >= 8:
        if zero[1] > 0.9 and zero[2] > 0.9 and zero[3] > 0.9 and zero[0] < 0.5:
            return "utf-32-le"
        if zero[0] > 0.9 and zero[1] > 0.9 and zero[2] > 0.9 and zero[3] < 0.5:
            return "utf-32-be"
    even, odd = sample[0:n:2], sample[1:n:2]
    z_even, z_odd = even.count(0) / max(len(even), 1), odd.count(0) / max(len(odd), 1)
    if z_odd > 0.6 and z_even < 0.2 and _textlike(even):
        return "utf-16-le"
    if z_even > 0.6 and z_odd < 0.2 and _textlike(odd):
        return "utf-16-be"
    return None


def _textlike(low_bytes: bytes) -> bool:
    """Most low bytes of UTF-16 text are not control characters."""
    controls = sum(1 for b in low_bytes if b < 0x20 and b not in (9, 10, 13))
    return controls <= len(low_bytes) // 10


def compressed(data: bytes) -> str | None:
    for magic, name in _COMPRESSED:
        if data.startswith(magic):
            return name
    return None


def _strings_runs(data: bytes) -> tuple[list[str], list[int]]:
    """Printable runs (ASCII, UTF-16 and UTF-32, both byte orders, any alignment) of ``data``."""
    texts: list[str] = []
    numbers: list[int] = []
    for pattern, encoding in zip(_RUNS, _RUN_ENCODINGS, strict=True):
        line, pos = 1, 0  # counted incrementally: from 0 for every run was quadratic in the number of runs
        for m in pattern.finditer(data):
            line += data.count(b"\n", pos, m.start())
            pos = m.start()
            texts.append(m.group().decode(encoding, "replace"))
            numbers.append(line)
    return texts, numbers


def _scan_bytes(
    ctx: _Ctx,
    data: bytes,
    filename: str,
    scan: _Scan,
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
        hits = _hits_for(ctx, lines, filename, commit=commit, date=date, seen=seen)
        found = {h.fingerprint for h in hits}
    # A binary file, or text with binary parts: also its printable runs. So too for a file decoded as
    # UTF-16/32 that holds no NUL: a UTF-16 BOM before ASCII text (bash still sources it) read as garbage.
    if b"\x00" in data or not encoding.startswith("utf-8"):
        runs, numbers = _strings_runs(data)
        scan.lines_scanned += len(runs)
        for hit in _hits_for(ctx, runs, filename, numbers=numbers, commit=commit, date=date, seen=seen):
            if hit.fingerprint not in found:
                found.add(hit.fingerprint)
                hits.append(hit)
    scan.hits.extend(hits)
    return True


# ------------------------------------------------------------------------------------------- tree
_SPECIAL = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def _special_kind(mode: int) -> str:
    for test, name in _SPECIAL:
        if test(mode):
            return name
    return "special file"


def _read_regular(path: str, max_bytes: int) -> tuple[bytes | None, str, str]:
    """Bytes of a regular file, never blocking: ``(data, "", "")`` or ``(None, reason, category)``."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or type(exc).__name__}", "unreadable"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped after lstat
            return None, f"{_special_kind(st.st_mode)}: never opened for reading", "special"
        if st.st_size > max_bytes:
            return None, f"larger than max_file_bytes ({st.st_size} > {max_bytes} bytes)", "large"
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            return None, f"larger than max_file_bytes (grew past {max_bytes} bytes)", "large"
        return b"".join(chunks), "", ""
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or type(exc).__name__}", "unreadable"
    finally:
        os.close(fd)


def _name(path: str) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _scan_tree(root: Path, ctx: _Ctx, scan: _Scan, exclude_dirs: Sequence[str]) -> None:
    names: list[str] = []
    try:
        root_st = os.stat(root)
    except OSError as exc:
        raise AisecInputError(f"secrets scan path {str(root)!r} cannot be read: {exc.strerror}") from None
    if not stat.S_ISDIR(root_st.st_mode):
        name = _name(root.name)
        names.append(name)
        if stat.S_ISREG(root_st.st_mode):
            data, reason, category = _read_regular(os.path.realpath(root), ctx.max_bytes)  # PATH itself may be a link
            if data is None:
                scan.skip(name, reason, category)
            else:
                _scan_bytes(ctx, data, name, scan, name)
        else:
            scan.skip(name, f"{_special_kind(root_st.st_mode)}: never opened for reading", "special")
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
                    data, reason, category = _read_regular(entry.path, ctx.max_bytes)
                    if data is None:
                        scan.skip(rel_path, reason, category)
                    else:
                        _scan_bytes(ctx, data, rel_path, scan, rel_path)
                else:
                    scan.skip(rel_path, f"{_special_kind(st.st_mode)}: never opened for reading", "special")
            stack.extend(reversed(subdirs))
    _scan_names(ctx, names, scan)


def _scan_git_config(ctx: _Ctx, scan: _Scan, git_dir: str, rel_path: str) -> None:
    """A repository's own ``config`` (remote URLs with tokens, credential settings) is scanned."""
    path = os.path.join(git_dir, "config")
    try:
        st = os.lstat(path)
    except OSError:
        return
    name = f"{rel_path}/config"
    if not stat.S_ISREG(st.st_mode):
        scan.skip(name, f"{_special_kind(st.st_mode)}: never opened for reading", "special")
        return
    data, reason, category = _read_regular(path, ctx.max_bytes)
    if data is None:
        scan.skip(name, reason, category)
    else:
        _scan_bytes(ctx, data, name, scan, name)


def _scan_names(ctx: _Ctx, names: list[str], scan: _Scan, commit: str | None = None, date: str | None = None) -> None:
    """File names, directory names and symlink targets are data too: scan them, one per line."""
    if not names:
        return
    scan.lines_scanned += len(names)
    for hit in _hits_for(ctx, names, "<file names>", commit=commit, date=date, kind="name", allow_inline=False):
        hit.file = names[hit.line - 1]
        hit.line = 0
        scan.hits.append(hit)


# ---------------------------------------------------------------------------------------- history
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
    from airflow_aisec.core import _secret_git as g

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


# --------------------------------------------------------------------------------------- baseline
def _read_untrusted(path: Path, what: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
    try:
        st = os.stat(path)
    except OSError:
        raise AisecInputError(f"{what} {str(path)!r} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise AisecInputError(f"{what} {str(path)!r} is not a regular file")
    data, reason, _ = _read_regular(str(path), max_bytes)
    if data is None:
        raise AisecInputError(f"{what} {str(path)!r}: {reason}")
    return data


def load_baseline(path: str | os.PathLike[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """detect-secrets baseline (untrusted strict JSON) → {(filename, hashed_secret): entry}."""
    from airflow_aisec.utils import strictjson as sj

    p = Path(path)
    try:
        return _parse_baseline(sj.loads(_read_untrusted(p, "baseline file"), source="the file"), sj)
    except AisecInputError as exc:
        raise AisecInputError(f"baseline file {str(p)!r} is not a detect-secrets baseline: {exc}") from None


def _parse_baseline(data: Any, sj: Any) -> dict[tuple[str, str], dict[str, Any]]:
    where = "baseline"
    sj.expect(data, dict, where)
    results = sj.get_dict(data, "results", where)
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    for fname, items in results.items():
        sj.expect(items, list, f"{where}: results entry #{len(entries) + 1}")
        for i, item in enumerate(items):
            at = f"{where}: results[…][{i}]"
            sj.expect(item, dict, at)
            hashed = sj.get_str(item, "hashed_secret", at)
            if not _SHA1_RE.match(hashed):
                raise AisecInputError(f"{at}: hashed_secret is not a 40-hex SHA-1")
            is_secret = sj.get(item, "is_secret", bool, at, default=None)
            entries[(str(fname), hashed)] = {"is_secret": is_secret}
    return entries


def _check_allow(allow: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if allow is None:
        return out
    if not isinstance(allow, Mapping):
        raise AisecInputError(f"allow must be a mapping of fingerprint to reason, not {type(allow).__name__}")
    for i, (fp, reason) in enumerate(allow.items(), start=1):
        if not isinstance(fp, str) or not _FINGERPRINT_RE.match(fp):
            raise AisecInputError(f"allow entry #{i}: the key is not a fingerprint (24 lowercase hex, as reported)")
        if not isinstance(reason, str) or not reason.strip():
            raise AisecInputError(f"allow entry #{i}: the reason must be a non-empty string")
        out[fp] = clean_reason(reason)
    return out


# ------------------------------------------------------------------------------------------- scan
def scan_secrets(
    path: str | os.PathLike[str],
    *,
    history: bool = False,
    baseline: str | os.PathLike[str] | None = None,
    allow: Mapping[str, str] | None = None,
    exclude_dirs: Sequence[str] = DEFAULT_EXCLUDE_DIRS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    fail_on: str = "medium",
    unscanned: str = "error",
    partial_history: bool = False,
) -> Report:
    """Scan ``path`` (and with ``history`` its git history) for secrets; return a ``secrets`` report.

    :param path: directory or file to scan.
    :param history: also scan every object reachable from any ref (``path`` must be in a git work tree).
    :param baseline: detect-secrets baseline file of known findings.
    :param allow: fingerprint → reason, for known false positives.
    :param exclude_dirs: directory names never descended into (tree scan); counted and listed.
    :param max_file_bytes: files and history blobs above this are not scanned (counted, listed).
    :param fail_on: ``medium`` (default: every finding fails) or ``high`` (vendor-format tokens fail;
        entropy / keyword heuristics are reported and make the status ``warn``).
    :param unscanned: what anything not scanned (large, compressed, special, unreadable, submodule,
        missing) decides: ``error`` (default: status ``error``, exit 2) or ``warn``.
    :param partial_history: accept a shallow, grafted, replaced or partial-clone history (reported,
        status at least ``warn``) instead of an error.
    :raises AisecInputError: bad arguments, ``path`` missing, a non-git path with ``history``, bad baseline.
    :raises AisecUndecidableError: git fails, or the history is incomplete and not accepted.
    """
    redactor = Redactor()
    with _detector() as scan_lines:
        try:
            report = _scan(
                path,
                redactor,
                scan_lines,
                history=history,
                baseline=baseline,
                allow=allow,
                exclude_dirs=exclude_dirs,
                max_file_bytes=max_file_bytes,
                fail_on=fail_on,
                unscanned=unscanned,
                partial_history=partial_history,
            )
            return seal(report, redactor, scan_lines)
        except AisecError as exc:
            message = str(exc)
            _learn(scan_lines, [message], redactor)
            kind = type(exc) if isinstance(exc, (AisecInputError, AisecUndecidableError)) else AisecUndecidableError
            raise kind(redactor.scrub(message)) from None
        except Exception as exc:  # never a value in a traceback or a message
            message = f"secrets scan failed: {type(exc).__name__}: {exc}"
            _learn(scan_lines, [message], redactor)
            raise AisecUndecidableError(redactor.scrub(message)[:500]) from None


def _scan(
    path: str | os.PathLike[str],
    redactor: Redactor,
    scan_lines: Any,
    *,
    history: bool,
    baseline: str | os.PathLike[str] | None,
    allow: Mapping[str, str] | None,
    exclude_dirs: Sequence[str],
    max_file_bytes: int,
    fail_on: str,
    unscanned: str,
    partial_history: bool,
) -> Report:
    root = Path(path)
    if not os.path.lexists(root):
        raise AisecInputError(f"secrets scan path {str(root)!r} does not exist")
    gate = parse_fail_on(fail_on, choices=FAIL_ON_LEVELS)
    if unscanned not in UNSCANNED_POLICIES:
        raise AisecInputError(f"unscanned must be one of {UNSCANNED_POLICIES}, not {unscanned!r}")
    if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int) or max_file_bytes <= 0:
        raise AisecInputError(f"max_file_bytes must be a positive integer, not {max_file_bytes!r}")
    known = load_baseline(baseline) if baseline else {}
    raw_reasons = [str(r) for r in (allow or {}).values()] if isinstance(allow, Mapping) else []
    allow = _check_allow(allow)
    _learn(scan_lines, raw_reasons, redactor)  # a value in a reason: its pieces are redacted too
    report = Report.start("secrets", str(root), tags=TAGS)
    tree, hist = _Scan(), _Scan()
    ctx = _Ctx(scan_lines, redactor, max_file_bytes)
    partial: list[str] = []
    if history:  # validates git first
        partial = _scan_history(root, ctx, hist, partial_history)
    _scan_tree(root, ctx, tree, exclude_dirs)

    suppressed: list[dict[str, Any]] = []

    def suppress_reason(hit: Hit) -> str | None:
        if hit.allow_reason:
            return f"inline: {hit.allow_reason}"
        if hit.fingerprint in allow:
            return f"allowlist: {allow[hit.fingerprint]}"
        entry = known.get((hit.file, hit.hashed_secret)) if hit.kind == "content" else None
        if entry is not None and entry.get("is_secret") is not True:
            return "baseline" + (" (audited false positive)" if entry.get("is_secret") is False else "")
        return None

    in_tree = {(h.kind, h.file, h.fingerprint) for h in tree.hits}
    reported: list[tuple[Hit, dict[str, Any]]] = [(hit, {"scope": "tree"}) for hit in tree.hits]
    first_commit: dict[tuple[str, str, str], Hit] = {}
    for hit in hist.hits:  # oldest commit first: keep the first that carried the value
        first_commit.setdefault((hit.kind, hit.file, hit.fingerprint), hit)
    for (kind, file, fp), hit in first_commit.items():
        if (kind, file, fp) in in_tree:
            continue  # still in the tree: reported there, with its commit below
        reported.append((hit, {"scope": "history", "in_current_tree": False}))

    severities: list[str] = []
    for hit, extra in reported:
        reason = suppress_reason(hit)
        details: dict[str, Any] = {
            "type": hit.type,
            "file": hit.file,
            "line": hit.line,
            "fingerprint": hit.fingerprint,
            "where": hit.kind,
            **extra,
        }
        origin = first_commit.get((hit.kind, hit.file, hit.fingerprint))
        if origin is not None:
            details["commit"] = origin.commit
            details["commit_date"] = origin.commit_date
        if reason:
            suppressed.append({**details, "location": hit.location, "reason": reason})
            continue
        severity = "medium" if hit.type in HEURISTIC_TYPES else "high"
        slug = re.sub(r"[^A-Z0-9]+", "-", hit.type.upper()).strip("-")
        if hit.kind == "name":
            where = "in a file name"
        elif hit.kind == "ref":
            where = "in a git ref name"
        elif hit.kind == "message":
            where = "in a git commit or tag object (message or header)"
        elif extra["scope"] == "history":
            where = "in git history (no longer in the tree)"
        else:
            where = "in the working tree"
        if hit.kind != "content" and extra["scope"] == "history":
            where += " in git history"
        severities.append(severity)
        if len(report.findings) < MAX_FINDINGS:
            report.add_finding(f"AISEC-SECRET-{slug}", severity, f"{hit.type} {where}", hit.location, details)

    skipped = {**tree.unscanned_count}
    for k, v in hist.unscanned_count.items():
        skipped[k] = skipped.get(k, 0) + v
    n_unscanned = sum(skipped.values())
    report.metrics.update(
        {
            "files_scanned": tree.files_scanned,
            "files_binary_strings": tree.files_binary,
            "files_non_utf8": tree.files_non_utf8,
            "files_unscanned": sum(tree.unscanned_count.values()),
            "files_skipped_large": tree.unscanned_count.get("large", 0),
            "files_skipped_compressed": tree.unscanned_count.get("compressed", 0),
            "files_skipped_special": tree.unscanned_count.get("special", 0),
            "files_skipped_unreadable": tree.unscanned_count.get("unreadable", 0),
            "dirs_excluded": tree.excluded_count,
            "symlinks_not_followed": tree.symlinks,
            "lines_scanned": tree.lines_scanned + hist.lines_scanned,
            "secrets_found": len(severities),
            "findings_not_listed": len(severities) - len(report.findings),
            "suppressed": len(suppressed),
            "unscanned": n_unscanned,
        }
    )
    if history:
        report.metrics.update(
            {
                "commits_scanned": hist.commits_scanned,
                "tags_scanned": hist.tags_scanned,
                "refs_scanned": hist.refs_scanned,
                "history_files_scanned": hist.files_scanned,
                "history_binary_strings": hist.files_binary,
                "history_unscanned": sum(hist.unscanned_count.values()),
                "history_only_findings": sum(1 for f in report.findings if f.details.get("scope") == "history"),
            }
        )
        report.details["history_partial"] = list(partial)
    if suppressed:
        report.details["suppressed"] = suppressed[:MAX_FINDINGS]
    unscanned_list = [{**u, "scope": "tree"} for u in tree.unscanned] + [
        {**u, "scope": "history"} for u in hist.unscanned
    ]
    if unscanned_list:
        report.details["unscanned"] = unscanned_list[:LIST_LIMIT]
    if tree.excluded:
        report.details["excluded_dirs"] = tree.excluded
    report.details["scope"] = "tree+history" if history else "tree"
    report.details["policy"] = {"unscanned": unscanned, "fail_on": fail_on, "partial_history": partial_history}
    n = len(severities)
    summary = (
        f"{n} secret(s) found in {tree.files_scanned} file(s)"
        + (f" and {hist.commits_scanned} commit(s)" if history else "")
        + (f" (first {len(report.findings)} listed)" if n > len(report.findings) else "")
        + (f"; {len(suppressed)} suppressed" if suppressed else "")
        + (
            f"; {n_unscanned} item(s) NOT scanned (" + ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())) + ")"
            if n_unscanned
            else ""
        )
        + (f"; {tree.excluded_count} excluded dir(s)" if tree.excluded_count else "")
        + (f"; partial history accepted: {'; '.join(partial)}" if partial else "")
    )
    # every secret found counts, not only the first MAX_FINDINGS listed; a found secret fails even when
    # something else could not be scanned
    status = gate_status(severities, gate, degraded=bool(severities or n_unscanned or partial))
    if status is not Status.FAIL and n_unscanned and unscanned == "error":
        status = Status.ERROR
        summary += " — not everything could be scanned (unscanned='error'; pass unscanned='warn' to accept)"
    if severities and status is not Status.FAIL:
        summary += f" (heuristic only, below fail_on={fail_on})"
    return report.finish(status, summary)
