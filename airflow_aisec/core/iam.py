"""Deprecated import path: IAM policy parsing and lint live in :mod:`airflow_aisec.core.aws.iam`.

Every name of the former module still resolves here (public ones re-exported, the others looked up in
the modules they moved to), so existing imports keep working.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from airflow_aisec.core.aws.common import finish_report
from airflow_aisec.core.aws.iam import *  # noqa: F403
from airflow_aisec.core.aws.iam import __all__ as _iam_all

__all__ = [*_iam_all, "finish_report"]

_MOVED_TO = (
    "airflow_aisec.core.aws.iam.policy",
    "airflow_aisec.core.aws.iam.match",
    "airflow_aisec.core.aws.iam.rules",
    "airflow_aisec.core.aws.iam.lint",
)

warnings.warn(
    "airflow_aisec.core.iam is deprecated; import airflow_aisec.core.aws.iam", DeprecationWarning, stacklevel=2
)


def __getattr__(name: str) -> Any:
    for module in _MOVED_TO:
        mod = importlib.import_module(module)
        if hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
