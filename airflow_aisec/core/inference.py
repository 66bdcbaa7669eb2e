"""Deprecated import path: use :mod:`airflow_aisec.core.inference_audit`.

The engine audits inference *logs* (it runs no inference), so it moved to a package named for what it
does. Every name this module had still resolves here, with a :class:`DeprecationWarning` on import.
"""

from __future__ import annotations

import warnings
from typing import Any

from airflow_aisec.core import inference_audit as _audit
from airflow_aisec.core.inference_audit import checks as _checks
from airflow_aisec.core.inference_audit import logfiles as _logfiles
from airflow_aisec.core.inference_audit import ranges as _ranges
from airflow_aisec.core.inference_audit import records as _records

warnings.warn(
    "airflow_aisec.core.inference is deprecated: import airflow_aisec.core.inference_audit instead",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = list(_audit.__all__)
_MODULES = (_audit, _records, _logfiles, _ranges, _checks)


def __getattr__(name: str) -> Any:
    for module in _MODULES:
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
