"""Strict JSON for untrusted inputs: advisories, policies, manifests, profiles, logs, references.

Python's :func:`json.loads` is lenient in ways an attacker can use: a duplicate key silently keeps the
last value (so two parsers of the same bytes can disagree), ``NaN``/``Infinity`` are accepted, a
400-digit number is parsed at quadratic cost, ``1e999`` becomes ``inf``, and deep nesting ends in a
``RecursionError`` traceback. :func:`loads` refuses every one of these with an
:class:`~airflow_aisec.exceptions.AisecInputError` naming the input, so a check that reads hostile
JSON fails closed (``error``, exit 2) instead of skipping a record or crashing.

The typed accessors (:func:`get_str`, :func:`get_int`, ...) and :func:`parse_timestamp` give the
same treatment to fields: a wrong type or an absurd value is an error naming the field, never a
silently skipped record. No Airflow import here.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from airflow_aisec.exceptions import AisecInputError

#: Deepest nesting accepted (arrays + objects). Real advisories, policies and manifests use < 10.
MAX_DEPTH = 64
#: Longest integer literal accepted, in digits (a 64-bit integer has at most 20).
MAX_INT_DIGITS = 32
#: Largest document accepted by default, in bytes.
MAX_BYTES = 256 * 1024 * 1024

T = TypeVar("T")


class _Refused(ValueError):
    """Raised from inside the decoder hooks; turned into AisecInputError with the input's name."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key!r}")
        out[key] = value
    return out


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"integer literal of {len(text)} characters (at most {MAX_INT_DIGITS} digits)")
    return int(text)


def _float(text: str) -> float:
    if len(text) > 64:
        raise _Refused(f"number literal of {len(text)} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:20]!r} is out of range")
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of ``obj`` (iterative: no recursion on hostile input)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads(data: bytes | str, *, source: str, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """Parse ``data`` as strict JSON; raise :class:`AisecInputError` naming ``source`` on anything odd.

    Refused: invalid UTF-8, a byte-order mark, duplicate keys, ``NaN``/``Infinity``, numbers out of
    float range or with more than :data:`MAX_INT_DIGITS` digits, nesting deeper than ``max_depth``,
    documents larger than ``max_bytes``.

    :param data: the document (bytes are decoded as UTF-8, strictly).
    :param source: what the document is, for the error message (a path, a URI, "policy", ...).
    :param max_depth: deepest nesting accepted.
    :param max_bytes: largest document accepted.
    """
    if len(data) > max_bytes:
        raise AisecInputError(f"{source}: JSON document of {len(data)} bytes exceeds the limit of {max_bytes}")
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AisecInputError(f"{source}: not valid UTF-8 JSON ({exc.reason} at byte {exc.start})") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        raise AisecInputError(f"{source}: JSON starts with a byte-order mark")
    try:
        obj = json.loads(text, object_pairs_hook=_pairs, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _Refused as exc:
        raise AisecInputError(f"{source}: invalid JSON: {exc}") from None
    except RecursionError:
        raise AisecInputError(f"{source}: JSON nested too deeply (limit {max_depth})") from None
    except json.JSONDecodeError as exc:
        raise AisecInputError(f"{source}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # e.g. int() digit limits
        raise AisecInputError(f"{source}: invalid JSON: {exc}") from None
    if _depth(obj, max_depth) > max_depth:
        raise AisecInputError(f"{source}: JSON nested too deeply (limit {max_depth})")
    return obj


def load_path(path: str | os.PathLike[str], *, source: str | None = None, **limits: int) -> Any:
    """Read and :func:`loads` a local file; unreadable files are an :class:`AisecInputError` too."""
    name = source or os.fspath(path)
    max_bytes = limits.get("max_bytes", MAX_BYTES)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise AisecInputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return loads(data, source=name, **limits)


# ---------------------------------------------------------------------------------------- fields
def _type_name(types: type | tuple[type, ...]) -> str:
    names = [t.__name__ for t in (types if isinstance(types, tuple) else (types,))]
    table = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}
    table |= {"dict": "an object", "list": "an array"}
    return " or ".join(table.get(n, n) for n in names)


def expect(value: Any, types: type | tuple[type, ...], where: str) -> Any:
    """Return ``value`` if it is an instance of ``types`` (``bool`` is never an ``int``), else raise."""
    ok = isinstance(value, types)
    if ok and isinstance(value, bool):
        allowed = types if isinstance(types, tuple) else (types,)
        ok = bool in allowed
    if not ok:
        raise AisecInputError(f"{where}: expected {_type_name(types)}, got {type(value).__name__}")
    return value


def get(obj: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    """``obj[key]`` checked with :func:`expect`; a missing key returns ``default`` or raises when none."""
    if not isinstance(obj, Mapping):
        raise AisecInputError(f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        if default is ...:
            raise AisecInputError(f"{where}: missing {key!r}")
        return default
    return expect(obj[key], types, f"{where}.{key}")


def get_str(obj: Mapping[str, Any], key: str, where: str, default: Any = ...) -> Any:
    return get(obj, key, str, where, default)


def get_list(obj: Mapping[str, Any], key: str, where: str, default: Any = ...) -> Any:
    return get(obj, key, list, where, default)


def get_dict(obj: Mapping[str, Any], key: str, where: str, default: Any = ...) -> Any:
    return get(obj, key, dict, where, default)


def get_int(
    obj: Mapping[str, Any], key: str, where: str, default: Any = ..., *, lo: int | None = None, hi: int | None = None
) -> Any:
    value = get(obj, key, int, where, default)
    if isinstance(value, int) and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        raise AisecInputError(f"{where}.{key}: {value} is outside [{lo}, {hi}]")
    return value


# ------------------------------------------------------------------------------------ timestamps
#: Earliest timestamp accepted from untrusted data.
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
#: How far in the future an untrusted timestamp may lie (clock skew).
SKEW = timedelta(days=1)


def parse_timestamp(value: Any, where: str, *, now: datetime | None = None, future: timedelta = SKEW) -> datetime:
    """Parse an RFC 3339 / ISO 8601 timestamp from untrusted data, as an aware UTC datetime.

    Refused (:class:`AisecInputError` naming ``where``): non-strings, unparsable text, dates before
    :data:`EARLIEST`, and dates more than ``future`` after ``now`` (so a year-9999 record cannot make
    data look fresh). A timestamp without a zone is taken as UTC.
    """
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise AisecInputError(f"{where}: expected an RFC 3339 timestamp string, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise AisecInputError(f"{where}: not an RFC 3339 timestamp: {value[:40]!r}") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    try:
        ts = ts.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise AisecInputError(f"{where}: timestamp out of range: {value[:40]!r}") from None
    now = now or datetime.now(timezone.utc)
    if ts < EARLIEST or ts > now + future:
        raise AisecInputError(f"{where}: implausible timestamp {value[:40]!r} (before 1990 or in the future)")
    return ts
