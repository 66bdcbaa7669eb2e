"""Range matching per the OSV spec: whether a PyPI version is affected by an advisory (see the package docstring)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from packaging.version import InvalidVersion, Version


def parse_version(text: str) -> Version | None:
    """``Version(text)``, or ``None`` when ``text`` is not PEP 440."""
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


_N = r"(?:0|[1-9][0-9]*)"
#: PEP 440 versions already in normal form (what ``str(Version(text)) == text`` holds for).
_NORMAL_FORM = re.compile(
    rf"(?:[1-9][0-9]*!)?{_N}(?:\.{_N})*(?:(?:a|b|rc){_N})?(?:\.post{_N})?(?:\.dev{_N})?(?:\+[a-z0-9]+(?:\.[a-z0-9]+)*)?"
)


def version_key(text: str) -> str:
    """Comparable form of a version string: PEP 440 normal form, else the stripped lower-case text."""
    if _NORMAL_FORM.fullmatch(text):  # already normal (the vast majority): skip the parser
        return text
    parsed = parse_version(text)
    return str(parsed) if parsed is not None else text.strip().lower()


def _public(version: Version) -> Version:
    """``version`` without its local label (``1.0+ubuntu1`` → ``1.0``)."""
    return version if version.local is None else Version(version.public)


# ----------------------------------------------------------------------------------------- ranges
@dataclass(frozen=True)
class _Range:
    """One compiled ``ECOSYSTEM`` range: events sorted by version, or indeterminate."""

    events: tuple[tuple[Version | None, str], ...]  # (version or None for "0", kind); sorted
    limits: tuple[Version, ...]
    indeterminate: bool  # some bound could not be parsed
    raw: dict[str, Any]
    #: (start, end, end_inclusive) intervals paired in document order; None start = "0", None end = open.
    pairs: tuple[tuple[Version | None, Version | None, bool], ...] = ()

    @classmethod
    def compile(cls, raw: dict[str, Any]) -> _Range:
        events: list[tuple[Version | None, str]] = []
        limits: list[Version] = []
        pairs: list[tuple[Version | None, Version | None, bool]] = []
        start: Version | None = None
        open_interval = False
        indeterminate = False
        for event in raw.get("events") or ():
            if not isinstance(event, dict):
                indeterminate = True
                continue
            for kind in ("introduced", "fixed", "last_affected", "limit"):
                if kind not in event:
                    continue
                text = str(event[kind])
                if kind == "introduced" and text == "0":
                    events.append((None, kind))
                    if not open_interval:
                        start, open_interval = None, True
                    continue
                if kind == "limit" and text == "*":
                    continue
                parsed = parse_version(text)
                if parsed is None:
                    indeterminate = True
                elif kind == "limit":
                    limits.append(parsed)
                else:
                    events.append((parsed, kind))
                    if kind == "introduced":
                        if not open_interval:
                            start, open_interval = parsed, True
                    elif open_interval:
                        pairs.append((start, parsed, kind == "last_affected"))
                        open_interval = False
        if open_interval:
            pairs.append((start, None, False))
        if not any(kind == "introduced" for _, kind in events):
            # The OSV schema requires an ``introduced`` event: without one (only fixed / last_affected /
            # limit, or an unparsable introduced) the sweep would say "never affected" — fail closed.
            indeterminate = True
        # "0" sorts first; at equal versions an introduced event precedes fixed/last_affected.
        order = {"introduced": 0, "fixed": 1, "last_affected": 2}
        events.sort(key=lambda e: (e[0] is not None, e[0] or Version("0"), order[e[1]]))
        return cls(tuple(events), tuple(limits), indeterminate, raw, tuple(pairs))

    def contains(self, version: Version) -> bool:
        """Whether ``version`` is in this range (callers check :attr:`indeterminate` first).

        The OSV spec's evaluation (sweep the events in version order) **or** the intervals read in
        document order (``introduced`` paired with the next ``fixed``/``last_affected``). Both agree on
        well-formed ranges; real PyPA records sometimes pack overlapping intervals into one range
        (``PYSEC-2022-236`` pyspark, ``PYSEC-2021-114`` wagtail), where the sweep alone would miss
        affected versions — the union fails closed.
        """
        if any(version >= limit for limit in self.limits):
            return False
        for start, end, inclusive in self.pairs:
            if (start is None or version >= start) and (end is None or version < end or (inclusive and version == end)):
                return True
        affected = False
        for bound, kind in self.events:
            if kind == "introduced":
                if bound is None or version >= bound:
                    affected = True
            elif kind == "fixed":
                if version >= bound:  # type: ignore[operator]
                    affected = False
            elif kind == "last_affected" and version > bound:  # type: ignore[operator]
                affected = False
        return affected


@dataclass
class Advisory:
    """One OSV record's ``affected`` entry for one package (a record can name several packages)."""

    id: str
    package: str  # normalised name
    record: dict[str, Any] = field(repr=False)
    affected: dict[str, Any] = field(repr=False)

    @property
    def aliases(self) -> list[str]:
        return [str(a) for a in self.record.get("aliases") or ()]

    @property
    def withdrawn(self) -> str | None:
        value = self.record.get("withdrawn")
        return str(value) if value else None

    @property
    def summary(self) -> str:
        text = self.record.get("summary") or self.record.get("details") or "N/A"
        return " ".join(str(text).split())

    @cached_property
    def ranges(self) -> tuple[_Range, ...]:
        return tuple(
            _Range.compile(r)
            for r in self.affected.get("ranges") or ()
            if isinstance(r, dict) and r.get("type") in ("ECOSYSTEM", "SEMVER")
        )

    @cached_property
    def listed_versions(self) -> frozenset[str] | None:
        """Listed versions that PEP 440 cannot parse, as normalised strings (``None``: no list)."""
        versions = self.affected.get("versions")
        if not versions:  # an empty list lists nothing: it cannot decide an indeterminate range
            return None
        return frozenset(version_key(str(v)) for v in versions if parse_version(str(v)) is None)

    @cached_property
    def listed_parsed(self) -> frozenset[Version]:
        """Listed PEP 440 versions by their public part (``0.5`` == ``0.5.0``; ``+local`` ignored)."""
        out: set[Version] = set()
        for v in self.affected.get("versions") or ():
            parsed = parse_version(str(v))
            if parsed is not None:
                out.add(_public(parsed))
        return frozenset(out)

    @cached_property
    def unevaluable(self) -> bool:
        """No listed version and no range the matcher can evaluate (only GIT ranges, or nothing)."""
        return not self.affected.get("versions") and not self.ranges

    @cached_property
    def fix_versions(self) -> list[Version]:
        fixes = {bound for rng in self.ranges for bound, kind in rng.events if kind == "fixed" and bound is not None}
        return sorted(fixes)  # type: ignore[type-var]

    def range_verdict(self, version: Version) -> bool | None:
        """Whether the ECOSYSTEM ranges alone say ``version`` is affected; ``None`` when they cannot tell."""
        if not self.ranges:
            return None
        if any(rng.contains(version) for rng in self.ranges if not rng.indeterminate):
            return True
        if any(rng.indeterminate for rng in self.ranges):
            return None
        return False

    def match(self, version: Version | str) -> Match | None:
        """Evaluate this advisory for ``version``; ``None`` when not affected."""
        if self.withdrawn:
            return None
        text = str(version)
        listed = self.listed_versions
        parsed = version if isinstance(version, Version) else parse_version(text)
        if self.unevaluable:
            return Match(self, text, certain=False, reason="advisory names the package without evaluable versions")
        if parsed is not None and _public(parsed) in self.listed_parsed:
            return Match(self, text, certain=True, reason="listed in affected versions")
        if parsed is None and listed is not None and version_key(text) in listed:
            return Match(self, text, certain=True, reason="listed in affected versions")
        if parsed is None:
            if self.ranges and listed is None:
                return Match(self, text, certain=False, reason="installed version is not PEP 440; range not evaluable")
            return None
        verdict = self.range_verdict(parsed)
        if not verdict and parsed.local is not None:
            verdict = self.range_verdict(_public(parsed)) or verdict
        if verdict:
            return Match(self, text, certain=True, reason="within an affected range")
        if verdict is None and listed is None and self.ranges:
            return Match(self, text, certain=False, reason="affected range has an unparsable bound")
        return None


@dataclass(frozen=True)
class Match:
    """An advisory that applies to an installed version (``certain=False``: needs a human, counted as a hit)."""

    advisory: Advisory
    version: str
    certain: bool
    reason: str

    @property
    def fix_versions(self) -> list[Version]:
        parsed = parse_version(self.version)
        fixes = self.advisory.fix_versions
        return [f for f in fixes if parsed is None or f > parsed]
