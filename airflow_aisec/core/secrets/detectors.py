"""detect-secrets' plugins plus ours, run over numbered lines: which values are secrets, and where."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow_aisec.core.secrets.redaction import GRAM, Redactor, clean_reason, fingerprint

#: Secret types from pattern heuristics (entropy, keyword, public IP) get ``medium``; vendor-format tokens ``high``.
HEURISTIC_TYPES = {"Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword", "Public IP (ipv4)"}
#: Lines longer than this are scanned in chunks of this size overlapping by CHUNK_OVERLAP characters.
CHUNK = 16384
CHUNK_OVERLAP = 4096

_ALLOW_RE = re.compile(r"aisec:\s*allow-secret\b[\s:=-]*(?P<reason>.*?)\s*(?:\*/|-->)?\s*$")
_PRAGMA = re.compile(r"pragma: ?(?:allow|white)list[ -]secret")
_PRAGMA_NEXT = re.compile(r"^[\s#/*;<!-]*pragma: ?allowlist[ -]nextline[ -]secret")
#: Hex strings of digest length on a line that names a hash are checksums (model / dataset digests), not keys.
_DIGEST_LENGTHS = {32, 40, 56, 64, 96, 128}
_DIGEST_WORDS = re.compile(r"sha\d*|hash|digest|checksum|md5|blake", re.IGNORECASE)


@contextmanager
def detector(prefilter: bool = True) -> Iterator[Any]:
    """detect-secrets' plugins plus ours; yields ``scan_lines(lines, filename)``.

    Vendor-format detectors (every plugin but the entropy and keyword heuristics) run on every line
    with NO filter: detect-secrets' heuristic filters (indirect references, templates, ``$``-prefixes
    …) exist to quiet the heuristics and would otherwise hide a real token (``secret = get("hf_…")``).
    The heuristics run through detect-secrets' filters, except its ``pragma: allowlist secret`` filter,
    which would drop a finding without a trace: that pragma is honoured by :func:`hits_for` instead,
    as a listed suppression.

    With ``prefilter`` (and the detect-secrets version it was verified against), a plugin is not run
    on a line (or a file) where it provably finds nothing (:mod:`.prefilter`): same results, faster.
    """
    from detect_secrets.core import scan as ds_scan
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import get_filters, transient_settings

    from airflow_aisec.core.secrets import prefilter as _prefilter

    ds_logger = logging.getLogger("detect-secrets")
    previous = (ds_logger.level, ds_logger.disabled)
    ds_logger.setLevel(logging.CRITICAL + 1)  # its messages contain secret values
    ds_logger.disabled = True
    get_mapping_from_secret_type_to_class.cache_clear()
    by_type: dict[str, Any] = dict(get_mapping_from_secret_type_to_class())
    heuristics = [{"name": cls.__name__} for t, cls in by_type.items() if t in HEURISTIC_TYPES]
    vendors = vendor_plugins()
    by_type.update({p.secret_type: type(p) for p in vendors})
    prefilter = prefilter and _prefilter.detect_secrets_verified()
    vendor_filters = [(p, _prefilter.plugin_filter(p) if prefilter else None) for p in vendors]
    heuristic_filters = _prefilter.PluginFilters()
    try:
        with transient_settings({"plugins_used": heuristics}) as settings:
            settings.disable_filters(
                "detect_secrets.filters.allowlist.is_line_allowlisted",
                "detect_secrets.filters.common.is_ignored_due_to_verification_policies",  # no network
            )
            get_mapping_from_secret_type_to_class.cache_clear()

            def scan_lines(lines: list[tuple[int, str]], filename: str) -> Iterator[Any]:
                text = dict(lines)
                if prefilter:
                    yield from _prefilter.process_line_based_plugins(lines, filename, heuristic_filters)
                else:
                    yield from ds_scan._process_line_based_plugins(lines, filename=filename)
                whole = "\n".join(line for _, line in lines) if prefilter else ""
                active = [(p, f) for p, f in vendor_filters if f is None or f.may_match_text(whole)]
                for number, line in lines:
                    for plugin, line_filter in active:
                        if line_filter is not None and not line_filter.may_match(line):
                            continue
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


def vendor_plugins() -> list[Any]:
    """One instance of every vendor-format plugin: detect-secrets' (all but the heuristics), then ours."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    from airflow_aisec.core.secrets import vendor_detectors as _secret_plugins

    mapping: dict[str, Any] = get_mapping_from_secret_type_to_class()
    vendors = [cls() for t, cls in mapping.items() if t not in HEURISTIC_TYPES]
    return [*vendors, _secret_plugins.HuggingFaceTokenDetector(), _secret_plugins.OpenAIApiKeyDetector()]


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


class ScanContext:
    def __init__(self, scan_lines: Any, redactor: Redactor, max_bytes: int) -> None:
        self.scan_lines = scan_lines
        self.redactor = redactor
        self.max_bytes = max_bytes


def hits_for(
    ctx: ScanContext,
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
        if not hit.allow_reason and allow_inline:
            hit.allow_reason = _inline_reason(hit.line, lines)
    hits = sorted(found.values(), key=lambda h: (h.line, h.type))
    if numbers is not None:
        for hit in hits:
            hit.line = numbers[hit.line - 1]
    return hits


def _inline_reason(line: int, lines: list[str]) -> str | None:
    """The reason of an ``aisec: allow-secret`` comment on ``line`` or the line above, or a detect-secrets pragma."""
    for n in (line, line - 1):
        if 0 < n <= len(lines):
            m = _ALLOW_RE.search(lines[n - 1])
            if m:
                return clean_reason(m.group("reason") or "inline aisec: allow-secret")
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    above = lines[line - 2] if 1 < line <= len(lines) else ""
    if _PRAGMA.search(here) or _PRAGMA_NEXT.search(above):
        return "detect-secrets pragma: allowlist secret"
    return None
