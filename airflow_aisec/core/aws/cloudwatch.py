"""CloudWatch metrics: the series of the Prometheus endpoint, published with ``PutMetricData`` (pure; no
Airflow import; the boto3 CloudWatch client is passed in).

The input is the endpoint's own exposition text (:func:`airflow_aisec.plugins.metrics.render` over the
latest reports), so CloudWatch receives exactly the metric families and values Prometheus scrapes:
:func:`parse_exposition` reads it back into samples, :func:`metric_datums` turns each sample into a datum
(the family name as ``MetricName``; labels as dimensions: ``dag_id`` → ``DAG``, ``task_id`` → ``Task``,
``check`` → ``Check``, the others likewise), and :func:`publish` sends them in batches within the API's
limits, each call under the retry and error rules of :mod:`airflow_aisec.core.aws.common`. A value
CloudWatch cannot store (NaN, ±Inf) is skipped and counted, never sent as something else.

One more, dimensionless, datum is added: ``aisec_check_error_rate``, the share of tasks whose latest
report is ``fail`` or ``error``; :func:`put_error_rate_alarm` creates (or updates) an alarm on it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_aisec.core.aws.common import CallError, CallStats, RetryPolicy, retry_call
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

#: ``PutMetricData``: at most 1000 datums per call, and a request of at most 1 MB.
MAX_DATUMS_PER_CALL = 1000
#: Bytes of serialised datums per call; below the 1 MB request limit with room for the request encoding.
MAX_BATCH_BYTES = 700_000
#: Dimensions per datum, and characters per dimension value (CloudWatch limits).
MAX_DIMENSIONS = 30
MAX_DIMENSION_VALUE = 1024
#: Prometheus label → CloudWatch dimension name.
DIMENSIONS = {
    "dag_id": "DAG",
    "task_id": "Task",
    "check": "Check",
    "map_index": "MapIndex",
    "status": "Status",
    "severity": "Severity",
    "name": "Name",
}
ERROR_RATE_METRIC = "aisec_check_error_rate"
FAILED_METRIC = "aisec_check_failed"
DEFAULT_NAMESPACE = "Airflow/AISec"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_exposition(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition (format 0.0.4), comments skipped.

    :raises AisecInputError: a line that is not a sample (the text is not the endpoint's).
    """
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            raise AisecInputError(f"metrics line {number} is not a Prometheus sample: {line[:80]!r}")
        name, labels_text, value = m.groups()
        labels: dict[str, str] = {}
        rest = labels_text or ""
        while rest:
            lm = _LABEL.match(rest)
            if lm is None:
                raise AisecInputError(f"metrics line {number}: unreadable labels {rest[:80]!r}")
            labels[lm.group(1)] = re.sub(r"\\[\\\"n]", lambda e: _UNESCAPE[e.group(0)], lm.group(2))
            rest = rest[lm.end() :]
        out.append(Sample(name, labels, float(value)))
    return out


@dataclass
class Datums:
    """The datums to publish, and what was left out (with why)."""

    datums: list[dict[str, Any]] = field(default_factory=list)
    skipped_non_finite: int = 0


def metric_datums(samples: Sequence[Sample], *, timestamp: datetime) -> Datums:
    """One ``MetricDatum`` per finite sample, plus the dimensionless error rate (when tasks were seen)."""
    out = Datums()
    failed = [s.value for s in samples if s.name == FAILED_METRIC]
    if failed:
        samples = [*samples, Sample(ERROR_RATE_METRIC, {}, sum(failed) / len(failed))]
    for s in samples:
        if not math.isfinite(s.value):
            out.skipped_non_finite += 1
            continue
        dims = [
            {"Name": DIMENSIONS.get(k, k), "Value": v[:MAX_DIMENSION_VALUE]} for k, v in sorted(s.labels.items()) if v
        ]
        if len(dims) > MAX_DIMENSIONS:
            raise AisecInputError(f"{s.name} has {len(dims)} labels; CloudWatch accepts {MAX_DIMENSIONS} dimensions")
        datum: dict[str, Any] = {"MetricName": s.name, "Value": s.value, "Timestamp": timestamp}
        datum["Unit"] = "Seconds" if s.name.endswith("_seconds") and "timestamp" not in s.name else "None"
        if dims:
            datum["Dimensions"] = dims
        out.datums.append(datum)
    return out


def batches(datums: Sequence[Mapping[str, Any]], *, max_datums: int = MAX_DATUMS_PER_CALL) -> Iterator[list[Any]]:
    """``datums`` in order, in lists of at most ``max_datums`` and :data:`MAX_BATCH_BYTES` serialised bytes."""
    if not 1 <= max_datums <= MAX_DATUMS_PER_CALL:
        raise AisecInputError(f"max_datums must be between 1 and {MAX_DATUMS_PER_CALL}, not {max_datums}")
    batch: list[Any] = []
    size = 0
    for datum in datums:
        n = len(json.dumps(datum, default=str))
        if batch and (len(batch) >= max_datums or size + n > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(datum)
        size += n
    if batch:
        yield batch


def check_namespace(namespace: str) -> str:
    """A namespace CloudWatch accepts for custom metrics (1–255 characters, not ``AWS/…``, no leading ``:``)."""
    if not namespace or len(namespace) > 255 or namespace.startswith(":") or namespace.startswith("AWS/"):
        raise AisecInputError(
            f"namespace must be 1-255 characters, not start with ':' or 'AWS/' (reserved), not {namespace!r}"
        )
    return namespace


def _call(client: Any, api: str, namespace: str, retry: RetryPolicy, stats: CallStats, **kwargs: Any) -> Any:
    try:
        return retry_call(
            functools.partial(getattr(client, api), **kwargs),
            target=f"CloudWatch namespace {namespace!r}",
            name=namespace,
            api=api,
            retry=retry,
            stats=stats,
        )
    except CallError as exc:  # denied or refused: nothing (more) was published
        raise AisecUndecidableError(str(exc)) from None


def publish(
    client: Any,
    exposition: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    timestamp: datetime,
    max_datums: int = MAX_DATUMS_PER_CALL,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Publish the samples of ``exposition`` to ``namespace``; returns what was sent.

    :raises AisecUndecidableError: a call was denied or refused (calls before it were published).
    :raises AisecTransientError: throttling / 5xx / network errors outlasting the retries.
    """
    check_namespace(namespace)
    found = metric_datums(parse_exposition(exposition), timestamp=timestamp)
    retry = retry or RetryPolicy()
    stats = CallStats()
    calls = 0
    for batch in batches(found.datums, max_datums=max_datums):
        _call(client, "put_metric_data", namespace, retry, stats, Namespace=namespace, MetricData=batch)
        calls += 1
    return {
        "namespace": namespace,
        "datums": len(found.datums),
        "metrics": sorted({d["MetricName"] for d in found.datums}),
        "put_metric_data_calls": calls,
        "api_retries": stats.retries,
        "skipped_non_finite": found.skipped_non_finite,
    }


def put_error_rate_alarm(
    client: Any,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    alarm_name: str | None = None,
    threshold: float = 0.05,
    period: int = 300,
    alarm_actions: Sequence[str] = (),
    retry: RetryPolicy | None = None,
) -> str:
    """Create or update the alarm "share of failed or undecided checks > ``threshold``"; returns its name."""
    check_namespace(namespace)
    if not 0 <= threshold < 1:
        raise AisecInputError(f"threshold must be a share in [0, 1), not {threshold}")
    if period < 10 or (period > 30 and period % 60):
        raise AisecInputError(f"period must be 10, 20, 30 or a multiple of 60 seconds, not {period}")
    name = alarm_name or f"{namespace} aisec check error rate"
    _call(
        client,
        "put_metric_alarm",
        namespace,
        retry or RetryPolicy(),
        CallStats(),
        AlarmName=name,
        AlarmDescription=f"More than {threshold:.0%} of aisec checks failed or could not decide",
        Namespace=namespace,
        MetricName=ERROR_RATE_METRIC,
        Statistic="Maximum",
        Period=period,
        EvaluationPeriods=1,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=list(alarm_actions),
    )
    return name
