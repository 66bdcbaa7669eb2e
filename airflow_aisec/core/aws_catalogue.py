"""Deprecated import path: the AWS action catalogue is :mod:`airflow_aisec.core.aws.catalogue`.

This name is an alias of that module (the same module object), kept so existing imports work.
"""

from __future__ import annotations

import sys
import warnings

from airflow_aisec.core.aws import catalogue as _catalogue

warnings.warn(
    "airflow_aisec.core.aws_catalogue is deprecated; import airflow_aisec.core.aws.catalogue",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _catalogue
