"""Exact shortcuts for the secrets detectors: skip a (line, plugin) pair only when the plugin provably finds nothing.

**Required literals.** :func:`required_literals` reads a compiled regex's parse tree (``re._parser``)
and derives a set of strings such that *every* match of the regex contains at least one of them. A
match is a substring of the searched line (and a line a substring of the file), so "no literal of the
set occurs in the line" proves "the regex cannot match the line", whatever lookarounds or anchors the
regex has. Only nodes whose matched text is known contribute: literals, small character classes,
alternations (union), groups, repeats (``min >= 1`` keeps the item's requirement, small bounded
repeats are expanded), zero-width assertions (match ``""``). Anything else (``.``, ``\\w``, negated
classes, back-references, ...) contributes nothing; when nothing is left the result is ``None``:
"always run the regex".

**Case-insensitive regexes.** Python folds case with Unicode rules: ``k`` matches KELVIN SIGN,
``s`` matches LONG S. So an ``IGNORECASE`` literal set is only used on an ASCII line (compared with
the line lower-cased); on a non-ASCII line it is used only if none of its characters is cased (an
uncased character is compiled to an exact match). A non-ASCII *cased* pattern character may match
an ASCII one, so such characters are cut out of the literal (``contraseña`` keeps ``contrase``).

**Plugins.** A detect-secrets plugin is only filtered when its result provably comes from searching
known regexes (its class and methods are checked, see :func:`plugin_filter`). For such a plugin a
file is skipped when it holds none of the literals, and a line when it holds none of them or when
none of the plugin's regexes matches it (a regex searched on the very string the plugin gets: no
match there, no finding). The entropy plugins' quoted-string regex is narrowed to values long enough
to exceed their entropy limit (Shannon entropy of n characters is at most log2(n)).

**Heuristics.** A line on which no heuristic plugin can find a candidate yields nothing whatever
detect-secrets' filters do (filters only remove), so :func:`process_line_based_plugins` skips it and
otherwise does what detect-secrets 1.5.0's ``_process_line_based_plugins`` does (same filters, same
code-snippet context from the full line list). The shortcuts are only used with the detect-secrets
version they were verified against (:data:`VERIFIED_DETECT_SECRETS`).
"""

from __future__ import annotations

import _sre
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

try:
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]
except ImportError:  # Python 3.10
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

#: detect-secrets version whose plugins and ``_process_line_based_plugins`` were reviewed.
VERIFIED_DETECT_SECRETS = "1.5.0"
#: Largest literal set kept (larger sets are shortened to prefixes / suffixes, or dropped).
CAP = 64
_REPEAT_EXPAND = 4  # bounded repeats up to this many copies are expanded

Strings = frozenset[str]


@dataclass(frozen=True)
class _Info:
    exact: Strings | None = None  # every match is one of these
    pre: Strings | None = None  # every match starts with one of these
    suf: Strings | None = None  # every match ends with one of these
    req: Strings | None = None  # every match contains one of these (none empty)


_NOTHING = _Info()
_REPEATS = tuple(getattr(C, name) for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(C, name))
_ATOMIC_GROUP = getattr(C, "ATOMIC_GROUP", object())  # Python 3.11+
_EMPTY = frozenset({""})


def _shrink(s: Strings | None, keep: str) -> Strings | None:
    """``s`` if small, else its strings cut to prefixes (``keep="pre"``) or suffixes until at most CAP remain."""
    if s is None or len(s) <= CAP:
        return s
    for k in range(max(map(len, s)) - 1, 0, -1):
        t = frozenset(x[:k] if keep == "pre" else x[-k:] for x in s)
        if len(t) <= CAP:
            return t
    return None


def _cat(a: Strings, b: Strings, keep: str | None) -> Strings | None:
    """All concatenations; with ``keep``, shortened (as :func:`_shrink`) when too many."""
    out = frozenset(x + y for x in a for y in b)
    return out if keep is None else _shrink(out, keep)


def _requirement(s: Strings | None) -> Strings | None:
    return s if s and "" not in s else None


def _from_exact(e: Strings | None) -> _Info:
    if e is None:
        return _NOTHING
    return _Info(
        exact=e if len(e) <= CAP else None,
        pre=_shrink(e, "pre"),
        suf=_shrink(e, "suf"),
        req=_requirement(_shrink(e, "pre")),
    )


def _best(cands: Iterable[Strings | None]) -> Strings | None:
    """The most selective valid requirement: longest shortest string, then fewest strings."""
    valid = [c for c in cands if c is not None and _requirement(c)]
    return max(valid, key=lambda c: (min(map(len, c)), -len(c)), default=None)


class _Walker:
    def __init__(self) -> None:
        self.icase = False

    def seq(self, items: Any) -> _Info:
        infos = [self.item(op, av) for op, av in items]
        cands: list[Strings | None] = []
        cur: Strings | None = None  # the match of the items so far ends with one of these
        exact: Strings | None = _EMPTY
        for inf in infos:
            cands += [inf.req, inf.pre, inf.suf]
            exact = _cat(exact, inf.exact, None) if exact is not None and inf.exact is not None else None
            if exact is not None and len(exact) > CAP:
                exact = None
            if inf.exact is not None:
                cur = inf.exact if cur is None else _cat(cur, inf.exact, "suf")
            else:
                if cur is not None and inf.pre is not None:
                    cands.append(_cat(cur, inf.pre, "pre"))
                cands.append(cur)
                cur = inf.suf
            cands.append(cur)
        pre: Strings | None = _EMPTY
        for inf in infos:
            step = inf.exact if inf.exact is not None else inf.pre
            if step is not None and pre is not None:
                pre = _cat(pre, step, "pre")
            if inf.exact is None:
                break
        suf: Strings | None = _EMPTY
        for inf in reversed(infos):
            step = inf.exact if inf.exact is not None else inf.suf
            if step is not None and suf is not None:
                suf = _cat(step, suf, "suf")
            if inf.exact is None:
                break
        return _Info(exact=exact, pre=pre, suf=suf, req=_best(cands))

    def item(self, op: Any, av: Any) -> _Info:
        if op is C.LITERAL:
            return _from_exact(frozenset({chr(av)}))
        if op is C.IN:
            chars: set[str] = set()
            for kind, value in av:
                if kind is C.LITERAL:
                    chars.add(chr(value))
                elif kind is C.RANGE and value[1] - value[0] < CAP:
                    chars.update(map(chr, range(value[0], value[1] + 1)))
                else:  # NEGATE, CATEGORY, big ranges: unknown
                    return _NOTHING
            return _from_exact(frozenset(chars))
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            return _from_exact(_EMPTY)  # zero width: matches the empty string, whatever it asserts
        if op is C.SUBPATTERN:
            _group, add_flags, del_flags, p = av
            if (add_flags | del_flags) & (C.SRE_FLAG_IGNORECASE | C.SRE_FLAG_LOCALE):
                self.icase = True
            return self.seq(p)
        if op is _ATOMIC_GROUP:
            return self.seq(av)
        if op is C.BRANCH:
            alts = [self.seq(a) for a in av[1]]

            def union(field: str, keep: str | None) -> Strings | None:
                sets = [getattr(a, field) for a in alts]
                if any(s is None for s in sets):
                    return None
                out = frozenset[str]().union(*sets)
                return out if keep is None else _shrink(out, keep)

            exact = union("exact", None)
            return _Info(
                exact=exact if exact is not None and len(exact) <= CAP else None,
                pre=union("pre", "pre"),
                suf=union("suf", "suf"),
                req=_requirement(union("req", "pre")),
            )
        if op in _REPEATS:
            lo, hi, p = av
            inf = self.seq(p)
            if inf.exact is not None and hi <= _REPEAT_EXPAND:
                out: set[str] = set()
                power: Strings = _EMPTY
                for k in range(hi + 1):
                    if k >= lo:
                        out |= power
                    if k == hi or len(out) > CAP:
                        break
                    power = frozenset(x + y for x in power for y in inf.exact)
                if len(out) <= CAP:
                    return _from_exact(frozenset(out))
            if lo >= 1:
                return _Info(pre=inf.pre, suf=inf.suf, req=inf.req)
            return _NOTHING
        return _NOTHING  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, GROUPREF_EXISTS, ...


@dataclass(frozen=True)
class Requirement:
    """Every match of the regex contains one of ``literals``; ``folded``: compare case-insensitively."""

    literals: Strings
    folded: bool


def _fold(lit: str) -> str:
    """The longest piece of ``lit`` without a non-ASCII cased character, lower-cased."""
    pieces = []
    piece = ""
    for ch in lit:
        if ch.isascii() or not _sre.unicode_iscased(ord(ch)):
            piece += ch
        else:
            pieces.append(piece)
            piece = ""
    pieces.append(piece)
    return max(pieces, key=len).lower()


def required_literals(regex: re.Pattern[Any]) -> Requirement | None:
    """Strings one of which every match of ``regex`` contains, or None (no such set derived)."""
    if not isinstance(regex, re.Pattern) or not isinstance(regex.pattern, str):
        return None
    return _required_literals(regex)


@functools.lru_cache(maxsize=1024)  # patterns compare by pattern text and flags
def _required_literals(regex: re.Pattern[str]) -> Requirement | None:
    if regex.flags & C.SRE_FLAG_LOCALE:
        return None
    try:
        parsed = _parser.parse(regex.pattern, regex.flags)
    except Exception:
        return None
    walker = _Walker()
    req = walker.seq(parsed).req
    if req is None:
        return None
    if walker.icase or regex.flags & C.SRE_FLAG_IGNORECASE:
        folded = frozenset(_fold(lit) for lit in req)
        return Requirement(folded, True) if "" not in folded else None
    return Requirement(req, False)


def _minimal(lits: Iterable[str]) -> list[str]:
    """``lits`` without the strings containing another one (same "contains one of them" test)."""
    kept: list[str] = []
    for lit in sorted(set(lits), key=lambda s: (len(s), s)):
        if not any(k in lit for k in kept):
            kept.append(lit)
    return kept


def _trie(lits: list[str]) -> str:
    """A regex matching exactly the (minimal, non-empty) ``lits``: a trie, characters with the same tail as a class."""
    tails: dict[str, list[str]] = {}
    for lit in lits:
        tails.setdefault(lit[0], []).append(lit[1:])
    by_tail: dict[tuple[str, ...], list[str]] = {}
    for ch, tail in tails.items():
        by_tail.setdefault(tuple(sorted(tail)), []).append(ch)
    alts = []
    for rest, chars in by_tail.items():
        head = re.escape(chars[0]) if len(chars) == 1 else "[" + "".join(map(re.escape, sorted(chars))) + "]"
        if len(rest) == 1:
            alts.append(head + re.escape(rest[0]))
        else:
            alts.append(head + "(?:" + _trie(list(rest)) + ")")
    return "|".join(alts)


def _alternation(lits: Iterable[str]) -> re.Pattern[str] | None:
    return _alternation_of(frozenset(lits))


@functools.lru_cache(maxsize=256)
def _alternation_of(lits: frozenset[str]) -> re.Pattern[str] | None:
    kept = _minimal(lits)
    return re.compile(_trie(kept)) if kept else None


class LineFilter:
    """``may_match(line)`` is False only if no regex of ``confirm`` matches ``line``.

    ``may_match`` first tests the literals required by ``regexes`` (cheap), then searches ``confirm``
    (by default ``regexes``) in the line itself. ``may_match_text`` (a whole file) only tests literals:
    a line is a substring of the file, but an anchor or lookaround may behave differently in the file.
    """

    def __init__(self, regexes: Iterable[Any], confirm: Iterable[re.Pattern[str]] | None = None) -> None:
        regexes = list(regexes)
        self.confirm = tuple(regexes if confirm is None else confirm)
        reqs = [required_literals(r) for r in regexes]
        self.literal = not any(r is None for r in reqs)
        self._exact = self._folded = None
        self._folded_cased = False
        if self.literal:
            self._exact = _alternation(lit for r in reqs if r and not r.folded for lit in r.literals)
            folded = [lit for r in reqs if r and r.folded for lit in r.literals]
            self._folded = _alternation(folded)
            # An uncased literal matches exactly (also on a non-ASCII line); a cased one only on ASCII lines.
            self._folded_cased = any(_sre.unicode_iscased(ord(ch)) for lit in folded for ch in lit)

    def may_match_text(self, text: str) -> bool:
        """False only if no required literal is in ``text`` (then no regex matches any substring of it)."""
        if not self.literal:
            return True
        if self._exact is not None and self._exact.search(text):
            return True
        if self._folded is None:
            return False
        if text.isascii():
            return self._folded.search(text.lower()) is not None
        return self._folded_cased or self._folded.search(text) is not None

    def may_match(self, line: str) -> bool:
        """False only if no ``confirm`` regex matches ``line``."""
        return self.may_match_text(line) and any(r.search(line) for r in self.confirm)


def detect_secrets_verified() -> bool:
    """Whether the installed detect-secrets is the version the plugin shortcuts were reviewed against."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("detect-secrets") == VERIFIED_DETECT_SECRETS
    except PackageNotFoundError:
        return False


def _entropy_regex(plugin: Any) -> re.Pattern[str] | None:
    """The entropy plugin's quoted-string regex, narrowed to strings long enough to pass its entropy limit.

    The values are made of the (distinct) ``charset`` characters only, so their Shannon entropy over
    ``charset`` is at most log2(n) for n characters (and the hex plugin only lowers it), so a value needs more than 2**limit characters; one less is required here,
    leaving room for floating-point error.
    """
    charset, limit = getattr(plugin, "charset", None), getattr(plugin, "entropy_limit", None)
    if not isinstance(charset, str) or not isinstance(limit, (int, float)) or not 0 <= limit <= 8:
        return None
    if len(set(charset)) != len(charset):  # a repeated character would be counted twice
        return None
    if plugin.regex.pattern != rf'([\'"])([{re.escape(charset)}]+)(\1)':
        return None
    return re.compile(rf'([\'"])([{re.escape(charset)}]{{{max(1, int(2**limit))},}})(\1)')


def plugin_filter(plugin: Any) -> LineFilter | None:
    """A filter proving when ``plugin.analyze_line`` finds nothing on a line, or None (always run it).

    Reviewed against detect-secrets 1.5.0: ``BasePlugin.analyze_line`` only wraps what
    ``analyze_string`` yields; ``RegexBasedDetector.analyze_string`` yields ``findall`` results of
    ``denylist`` (nothing unless one of them matches); ``JwtTokenDetector`` keeps a subset of them;
    ``HighEntropyStringsPlugin`` (without eager search, which the line scan does not ask for) yields
    ``self.regex`` matches above an entropy limit; ``KeywordDetector`` yields groups of ``search``
    matches of the regexes for the file's type (all of them are used here).
    """
    from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import (
        Base64HighEntropyString,
        HexHighEntropyString,
        HighEntropyStringsPlugin,
    )
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.keyword import (
        QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
        REGEX_BY_FILETYPE,
        KeywordDetector,
    )

    cls = type(plugin)
    if cls is KeywordDetector:
        tables = (*REGEX_BY_FILETYPE.values(), QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)
        return LineFilter(sorted({r for table in tables for r in table}, key=lambda r: r.pattern))
    if cls in (Base64HighEntropyString, HexHighEntropyString) and isinstance(plugin.regex, re.Pattern):
        narrowed = _entropy_regex(plugin)
        return LineFilter([plugin.regex], [narrowed or plugin.regex])
    if (
        isinstance(plugin, HighEntropyStringsPlugin)
        and cls.analyze_line is HighEntropyStringsPlugin.analyze_line
        and cls.analyze_string is HighEntropyStringsPlugin.analyze_string
        and isinstance(plugin.regex, re.Pattern)
    ):
        return LineFilter([plugin.regex])
    if isinstance(plugin, RegexBasedDetector) and cls.analyze_line is BasePlugin.analyze_line:
        if cls.analyze_string is RegexBasedDetector.analyze_string or cls is JwtTokenDetector:
            denylist = getattr(plugin, "denylist", None)
            if isinstance(denylist, (list, tuple)) and all(isinstance(r, re.Pattern) for r in denylist):
                return LineFilter(denylist)
    return None


class PluginFilters:
    """:func:`plugin_filter` of each plugin object, computed once (the object is kept: its id stays its own)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, LineFilter | None]] = {}

    def __call__(self, plugin: Any) -> LineFilter | None:
        known = self._by_id.get(id(plugin))
        if known is None or known[0] is not plugin:
            known = self._by_id[id(plugin)] = (plugin, plugin_filter(plugin))
        return known[1]


def process_line_based_plugins(lines: list[tuple[int, str]], filename: str, filters: PluginFilters) -> Iterator[Any]:
    """detect-secrets 1.5.0's ``_process_line_based_plugins``, skipping a plugin on a line where its filter fails.

    A skipped (line, plugin) pair yields nothing in the original (the plugin finds no candidate); a
    line where every plugin is skipped is not even run through the line filters (which only drop).
    """
    from detect_secrets.core import scan as ds_scan
    from detect_secrets.util.code_snippet import get_code_snippet

    text = "\n".join(line for _, line in lines)
    active = [(p, filters(p)) for p in ds_scan.get_plugins()]
    active = [(p, f) for p, f in active if f is None or f.may_match_text(text)]
    if not active:
        return
    line_content = [line[1] for line in lines]
    for line_number, line in lines:
        line = line.rstrip()
        run = [p for p, f in active if f is None or f.may_match(line)]
        if not run:
            continue
        code_snippet = get_code_snippet(lines=line_content, line_number=line_number)
        if ds_scan._is_filtered_out(
            required_filter_parameters=["line"], filename=filename, line=line, context=code_snippet
        ):
            continue
        yield from (
            secret
            for plugin in run
            for secret in ds_scan._scan_line(
                plugin=plugin, filename=filename, line=line, line_number=line_number, context=code_snippet
            )
            if not ds_scan._is_filtered_out(
                required_filter_parameters=["context"],
                filename=secret.filename,
                secret=secret.secret_value,
                plugin=plugin,
                line=line,
                context=code_snippet,
            )
        )
