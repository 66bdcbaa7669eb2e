"""Suppression inputs of the secrets scan: a detect-secrets baseline (untrusted JSON) and ``allow`` fingerprints."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_aisec.core.secrets.reader import read_untrusted
from airflow_aisec.core.secrets.redaction import clean_reason
from airflow_aisec.exceptions import AisecInputError

_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{24}$")
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")


def load_baseline(path: str | os.PathLike[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """detect-secrets baseline (untrusted strict JSON) → {(filename, hashed_secret): entry}."""
    from airflow_aisec.utils import strictjson as sj

    p = Path(path)
    try:
        return _parse_baseline(sj.loads(read_untrusted(p, "baseline file"), source="the file"), sj)
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


def check_allow(allow: Mapping[str, str] | None) -> dict[str, str]:
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
