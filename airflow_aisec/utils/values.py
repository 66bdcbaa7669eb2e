"""Reading loosely typed option values (templated operator arguments, CLI text, environment variables)."""

from __future__ import annotations

from typing import Any

from airflow_aisec.exceptions import AisecInputError

#: Spellings read as true / false (case-insensitive, surrounding blanks ignored). ``""`` is false: an
#: unset templated param renders as the empty string.
TRUE_SPELLINGS = ("true", "1", "yes", "on")
FALSE_SPELLINGS = ("false", "0", "no", "off", "")


def parse_bool(value: Any, name: str) -> bool:
    """Read ``value`` as a boolean: a ``bool``, the integers 0 and 1, or one of :data:`TRUE_SPELLINGS` /
    :data:`FALSE_SPELLINGS`. Anything else raises :class:`AisecInputError` (a ``ValueError``) naming
    ``name`` and the input: an unknown spelling is never guessed.

    >>> parse_bool(" Yes", "dry_run"), parse_bool("off", "dry_run"), parse_bool(False, "dry_run")
    (True, False, False)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_SPELLINGS:
            return True
        if text in FALSE_SPELLINGS:
            return False
    raise AisecInputError(f"{name} must be true or false, not {value!r}")
