"""Deprecated import path: the AWS posture checks live in :mod:`airflow_aisec.core.aws`.

S3 bucket posture is :mod:`airflow_aisec.core.aws.s3`, SageMaker settings
:mod:`airflow_aisec.core.aws.sagemaker`, the IAM lint :mod:`airflow_aisec.core.aws.iam`, and the retry
and error rules of every AWS call :mod:`airflow_aisec.core.aws.common`. Every name of the former module
still resolves here, so existing imports keep working.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from airflow_aisec.core.aws.common import (
    DENIED_CODES,
    MISSING_CODES,
    TRANSIENT_CODES,
    CallError,
    CallStats,
    NotConfigured,
    call_api,
    error_code,
    retry_call,
)
from airflow_aisec.core.aws.iam.lint import lint_iam_policies
from airflow_aisec.core.aws.s3 import *  # noqa: F403
from airflow_aisec.core.aws.s3 import __all__ as _s3_all
from airflow_aisec.core.aws.sagemaker import (
    SAGEMAKER_CHECKS,
    audit_sagemaker,
    evaluate_notebook_instance,
    evaluate_training_job,
)

__all__ = [
    *_s3_all,
    "DENIED_CODES",
    "MISSING_CODES",
    "SAGEMAKER_CHECKS",
    "TRANSIENT_CODES",
    "CallError",
    "CallStats",
    "NotConfigured",
    "audit_sagemaker",
    "call_api",
    "error_code",
    "evaluate_notebook_instance",
    "evaluate_training_job",
    "lint_iam_policies",
    "retry_call",
]

_MOVED_TO = (
    "airflow_aisec.core.aws.common",
    "airflow_aisec.core.aws.s3",
    "airflow_aisec.core.aws.s3_config",
    "airflow_aisec.core.aws.s3_evaluate",
    "airflow_aisec.core.aws.s3_enforce",
    "airflow_aisec.core.aws.sagemaker",
)

warnings.warn(
    "airflow_aisec.core.cloud is deprecated; import airflow_aisec.core.aws.s3 (or .sagemaker, .iam, .common)",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    for module in _MOVED_TO:
        mod = importlib.import_module(module)
        if hasattr(mod, name):
            return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
