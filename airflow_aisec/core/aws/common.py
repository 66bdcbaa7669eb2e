"""What every AWS call of airflow-aisec shares (pure; no Airflow import; botocore only when a call fails).

* :class:`RetryPolicy` and :func:`retry_call` / :func:`call_api`: bounded exponential backoff for
  throttling, 5xx and network errors, then :class:`~airflow_aisec.exceptions.AisecTransientError` (the
  task retries); every other client error is classified once (:data:`DENIED_CODES`,
  :data:`MISSING_CODES`, "not configured" codes given by the caller) into a :class:`CallError` naming the
  resource and the API call, never retried.
* :func:`paginate`: every page of a paginated list call, each page fetched under the same retry rules.
* :func:`finish_report`: the severity gate every AWS check closes its report with (one place).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_aisec.exceptions import AisecInputError, AisecTransientError
from airflow_aisec.report import SEVERITIES, Report, parse_fail_on

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "503",
        "500",
        "502",
        "504",
    }
)
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "UnrecognizedClientException",
        "403",
    }
)
MISSING_CODES = frozenset({"NoSuchBucket", "NoSuchEntity", "404"})


# --------------------------------------------------------------------------------------- calls & errors
@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for transient failures: ``max_attempts`` calls, delays ``base_delay·2^n`` ≤ ``max_delay``."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise AisecInputError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise AisecInputError("retry delays must not be negative")

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))


class CallError(Exception):
    """A non-transient client error for one API call on one bucket (reported, never retried)."""

    def __init__(self, kind: str, bucket: str, api: str, code: str, message: str) -> None:
        self.kind, self.bucket, self.api, self.code = kind, bucket, api, code
        super().__init__(message)

    def to_dict(self) -> dict[str, str]:
        return {"bucket": self.bucket, "api_call": self.api, "kind": self.kind, "code": self.code, "message": str(self)}


class NotConfigured(Exception):
    """The configuration read by an API call is not set (``code`` says which)."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)


def error_code(exc: BaseException) -> tuple[str, int | None]:
    """``(code, http_status)`` of a botocore ``ClientError`` (``("", None)`` for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return "", None
    code = str((response.get("Error") or {}).get("Code") or "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code, status


def _is_network_error(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, (BotoConnectionError, HTTPClientError))


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0


def call_api(
    client: Any,
    api: str,
    *,
    bucket: str,
    retry: RetryPolicy,
    stats: CallStats | None = None,
    not_configured: Sequence[str] = (),
    **kwargs: Any,
) -> dict[str, Any]:
    """Call ``client.<api>(**kwargs)`` with bounded retries; classify every failure.

    :raises NotConfigured: the error code is one of ``not_configured``.
    :raises CallError: access denied, missing bucket or another client error (not retried).
    :raises AisecTransientError: throttling / 5xx / network still failing after ``retry.max_attempts``.
    """
    return retry_call(
        lambda: dict(getattr(client, api)(**kwargs) or {}),
        target=f"bucket {bucket!r}",
        name=bucket,
        api=api,
        retry=retry,
        stats=stats,
        not_configured=not_configured,
    )


def retry_call(
    fn: Callable[[], Any],
    *,
    target: str,
    name: str,
    api: str,
    retry: RetryPolicy,
    stats: CallStats | None = None,
    not_configured: Sequence[str] = (),
) -> Any:
    """Run ``fn`` (one or more AWS calls on ``target``) with :func:`call_api`'s retry and error rules."""
    from botocore.exceptions import ClientError

    stats = stats if stats is not None else CallStats()
    last: BaseException | None = None
    for attempt in range(1, retry.max_attempts + 1):
        stats.calls += 1
        try:
            return fn()
        except ClientError as exc:
            code, status = error_code(exc)
            op = _snake(getattr(exc, "operation_name", "") or "") or api
            if code in not_configured:
                raise NotConfigured(code) from None
            if code in TRANSIENT_CODES or (status is not None and status >= 500) or status == 429:
                last = exc
            elif code in MISSING_CODES or (op == "head_bucket" and status == 404):
                raise CallError(
                    "missing", name, op, code or "404", f"{target} does not exist ({op}: {code or 404})"
                ) from None
            elif code in DENIED_CODES or status == 403:
                raise CallError(
                    "denied",
                    name,
                    op,
                    code or "403",
                    f"access denied to {target} on {op} ({code or 403}); grant the caller this read permission",
                ) from None
            else:
                message = (exc.response.get("Error") or {}).get("Message", "")
                raise CallError(
                    "client_error", name, op, code, f"{op} on {target} failed: {code} {message}".strip()
                ) from None
        except Exception as exc:
            if not _is_network_error(exc):
                raise
            last = exc
        if attempt < retry.max_attempts:
            stats.retries += 1
            retry.sleep(retry.delay(attempt))
    raise AisecTransientError(
        f"{api} on {target} still failing after {retry.max_attempts} attempt(s): {_describe(last)}"
    )


def _snake(operation: str) -> str:
    """``GetBucketPolicy`` → ``get_bucket_policy`` (botocore operation name to client method)."""
    import re

    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", operation).lower()


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    code, status = error_code(exc)
    if code or status:
        return f"{code or 'HTTP'} ({status})"
    return f"{type(exc).__name__}: {exc}"


def paginate(client: Any, api: str, key: str, **kwargs: Any) -> Iterator[Any]:
    """Every item under ``key`` of every page of the paginated call ``client.<api>(**kwargs)``.

    Run it inside :func:`retry_call` (as the IAM role fetch does) so that a throttled page retries the
    whole read under the same rules as any other call.
    """
    for page in client.get_paginator(api).paginate(**kwargs):
        yield from page.get(key, [])


# --------------------------------------------------------------------------------------- the gate
def finish_report(report: Report, fail_on: str = "low") -> Report:
    """Close ``report``: ``fail`` when a finding reaches ``fail_on``, ``warn`` for lower ones, else ``pass``."""
    gate = parse_fail_on(fail_on, choices=SEVERITIES)
    counts = report.severity_counts()
    for sev, n in counts.items():
        report.metrics[f"findings_{sev}"] = n
    report.metrics["findings"] = len(report.findings)
    if not report.summary:
        worst = report.max_severity
        report.summary = f"{len(report.findings)} finding(s), worst {worst}" if report.findings else "no findings"
    return report.finish(fail_on=gate)
