"""The dependency audit's ignore file: accepted risks, each with a reason and an expiry date."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils import strictjson


@dataclass(frozen=True)
class IgnoreEntry:
    """One accepted risk: an advisory ID or alias, why, until when (inclusive), optionally one package."""

    id: str
    reason: str
    expires: date
    package: str | None = None

    def applies(self, ids: set[str], package: str) -> bool:
        from packaging.utils import canonicalize_name

        if self.id.upper() not in {i.upper() for i in ids}:
            return False
        return self.package is None or canonicalize_name(self.package.strip()) == canonicalize_name(package)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason, "expires": self.expires.isoformat(), "package": self.package}


def load_ignore_file(path: str | os.PathLike[str]) -> list[IgnoreEntry]:
    """Read an ignore file (TOML ``[[ignore]]`` tables or JSON ``{"ignore": [...]}``).

    Every entry needs ``id`` (advisory ID or alias), ``reason`` and ``expires`` (``YYYY-MM-DD``);
    ``package`` is optional.
    """
    p = Path(path)
    if not p.is_file():
        raise AisecInputError(f"ignore file {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AisecInputError(f"ignore file {str(p)!r} cannot be read: {exc}") from None
    if p.suffix == ".json":
        data = strictjson.loads(text, source=f"ignore file {str(p)!r}")
    else:
        try:
            import tomllib
        except ImportError:  # pragma: no cover - Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text)
        except ValueError as exc:
            raise AisecInputError(f"ignore file {str(p)!r} cannot be parsed: {exc}") from None
    raw = data.get("ignore") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise AisecInputError(f"ignore file {str(p)!r} must contain a list named 'ignore'")
    extra = sorted(set(data) - {"ignore"}) if isinstance(data, dict) else []
    if extra:
        raise AisecInputError(f"ignore file {str(p)!r}: unknown top-level key(s) {extra}")
    entries = []
    for i, item in enumerate(raw):
        where = f"ignore file {str(p)!r} entry {i + 1}"
        if not isinstance(item, dict):
            raise AisecInputError(f"{where} must be a table/object")
        unknown = sorted(set(item) - {"id", "reason", "expires", "package"})
        if unknown:  # a misspelt "package" would otherwise widen the ignore to every package
            raise AisecInputError(f"{where} has unknown key(s) {unknown} (allowed: id, reason, expires, package)")
        for key in ("id", "reason", "package"):
            if key in item and not isinstance(item[key], str):
                raise AisecInputError(f"{where}: {key} must be a string")
        missing = [k for k in ("id", "reason", "expires") if not str(item.get(k) or "").strip()]
        if missing:
            raise AisecInputError(
                f"{where} is missing {', '.join(missing)} (an ignore needs an id, a reason and an expiry)"
            )
        package = item.get("package")
        if package is not None and not _valid_name(package):
            raise AisecInputError(f"{where}: package {package[:60]!r} is not a valid project name")
        expires = item["expires"]
        if isinstance(expires, datetime):
            expires = expires.date()
        elif isinstance(expires, date):
            pass
        elif isinstance(expires, str):
            try:
                expires = date.fromisoformat(expires.strip())
            except ValueError as exc:
                raise AisecInputError(
                    f"{where} has an invalid expires date {item['expires']!r} (use YYYY-MM-DD)"
                ) from exc
        else:
            raise AisecInputError(
                f"{where} has an invalid expires date of type {type(expires).__name__} (use YYYY-MM-DD)"
            )
        entries.append(IgnoreEntry(item["id"].strip(), item["reason"].strip(), expires, package))
    return entries


def _valid_name(name: str) -> bool:
    import re

    return re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", name.strip()) is not None
