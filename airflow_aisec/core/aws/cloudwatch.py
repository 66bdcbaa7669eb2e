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

:func:`alarm_definitions` derives the alarms equivalent to the Prometheus alert rules
(``deploy/prometheus/alerts.yml``), and :func:`apply_alarms` creates or updates them idempotently.
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
from airflow_aisec.report import SEVERITIES

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


def _call(
    client: Any,
    api: str,
    namespace: str,
    retry: RetryPolicy,
    stats: CallStats,
    *,
    target: str | None = None,
    **kwargs: Any,
) -> Any:
    try:
        return retry_call(
            functools.partial(getattr(client, api), **kwargs),
            target=target or f"CloudWatch namespace {namespace!r}",
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


# --- Alarms equivalent to the Prometheus alert rules -------------------------------------------------

#: Alarm fields :func:`apply_alarms` compares with ``DescribeAlarms`` (everything :func:`alarm_definitions` sets).
ALARM_FIELDS = (
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "Namespace",
    "MetricName",
    "Statistic",
    "Dimensions",
    "Period",
    "Metrics",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)
_SAFE_VALUE = re.compile(r"^[^'\"\\\x00-\x1f]{1,255}$")
_SAFE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,254}$")


@dataclass(frozen=True)
class _Rule:
    """One alarm: the Prometheus alert it stands for and how CloudWatch evaluates it."""

    alert: str
    description: str
    metric: str
    function: str
    where: tuple[str, ...]
    comparison: str
    threshold: float
    evaluation_periods: int = 1
    math: str | None = None
    period: int = 300
    prometheus: bool = True  # False: CloudWatch only (the Prometheus side shows it on the dashboard)


#: ``severity=~"critical|high"`` with the operators every Metrics Insights ``WHERE`` accepts (``!=``, ``AND``).
_CRITICAL_OR_HIGH = tuple(f"Severity != '{s}'" for s in SEVERITIES if s not in ("critical", "high"))


def _rules(latency_threshold: float) -> list[_Rule]:
    return [
        _Rule("AisecDataDrift", "More than 30% of the monitored features drifted in a drift check",
              "aisec_drift_share", "MAX", (), "GreaterThanThreshold", 0.3),
        _Rule("AisecNewCriticalOrHighVulnerability", "A dependency audit reports open critical/high vulnerabilities",
              "aisec_vulnerabilities", "MAX", _CRITICAL_OR_HIGH,
              "GreaterThanThreshold", 0),
        _Rule("AisecVulnerabilityCountIncreased",
              "More critical/high vulnerabilities than at the previous publication",
              "aisec_vulnerabilities", "SUM", _CRITICAL_OR_HIGH,
              "GreaterThanThreshold", 0, math="DIFF(m)"),
        _Rule("AisecIntegrityOrProvenanceFailure",
              "An artifact failed integrity, provenance or model-scan verification; do not deploy it",
              "aisec_integrity_failure", "MAX", (), "GreaterThanOrEqualToThreshold", 1),
        _Rule("AisecSecretsFound", "A secrets scan found credentials; rotate them",
              "aisec_secrets_found", "MAX", (), "GreaterThanThreshold", 0),
        _Rule("AisecInferenceLatencySpike",
              f"p95 inference latency above {latency_threshold:g} s for 10 minutes",
              "aisec_inference_latency_p95_seconds", "MAX", (), "GreaterThanThreshold", latency_threshold, 2),
        _Rule("AisecInferenceErrorRate", "More than 5% of inference requests answered with an error",
              "aisec_report_metric", "MAX", ("Name = 'error_rate'",), "GreaterThanThreshold", 0.05, prometheus=False),
        _Rule("AisecChecksFailing", "More than 5% of aisec checks failed or could not decide",
              FAILED_METRIC, "AVG", (), "GreaterThanThreshold", 0.05, prometheus=False),
        _Rule("AisecCheckCannotDecide", "A check could not decide for 30 minutes (fails closed); see its report",
              "aisec_check_status", "MAX", ("Status = 'error'",), "GreaterThanOrEqualToThreshold", 1, 6),
    ]  # fmt: skip


#: Prometheus alert → CloudWatch alarm standing for it (a unit test compares with deploy/prometheus/alerts.yml).
ALERT_ALARMS = {
    **{r.alert: r.alert for r in _rules(1.0) if r.prometheus},
    "AisecMetricsMissing": "AisecMetricsMissing",
}


def parse_dimensions(items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict (keys and values a Metrics Insights query can hold safely).

    :raises AisecInputError: not ``KEY=VALUE``, a repeated key, or a quote/backslash/control character.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _SAFE_KEY.match(key) or not _SAFE_VALUE.match(value):
            raise AisecInputError(
                f"dimension must be KEY=VALUE (key: letters, digits, '_'; value: 1-255 characters without quotes, "
                f"backslashes or control characters), not {item[:80]!r}"
            )
        if key in out:
            raise AisecInputError(f"dimension {key!r} given twice")
        out[key] = value
    return out


def alarm_definitions(
    *,
    namespace: str = DEFAULT_NAMESPACE,
    dimensions: Mapping[str, str] | None = None,
    alarm_actions: Sequence[str] = (),
    latency_threshold: float = 2.0,
    missing_after: int = 900,
) -> list[dict[str, Any]]:
    """``PutMetricAlarm`` parameters of the alarms equivalent to the Prometheus alert rules (pure).

    Each alarm aggregates over every series of its metric in ``namespace`` (a Metrics Insights query,
    ``SELECT MAX(metric) FROM "namespace" WHERE …``): like the rules' ``max by (dag_id, task_id)``, it fires
    when any task is in breach. ``dimensions`` narrow every query (``WHERE DAG = 'x'``) except the
    dimensionless ``aisec_reports_stored``. Missing data keeps the alarm's state (``ignore``): the metrics
    describe the latest reports, published when the publishing task runs, so a quiet period is not "healthy";
    ``AisecMetricsMissing`` treats missing data as breaching (nothing published for ``missing_after`` s).

    :raises AisecInputError: bad namespace, dimension, threshold or window.
    """
    check_namespace(namespace)
    if '"' in namespace:
        raise AisecInputError(f"namespace must not contain '\"' (it is quoted in the alarm queries): {namespace!r}")
    dims = parse_dimensions([f"{k}={v}" for k, v in (dimensions or {}).items()])
    if not (math.isfinite(latency_threshold) and latency_threshold > 0):
        raise AisecInputError(f"latency_threshold must be a positive number of seconds, not {latency_threshold}")
    if not 300 <= missing_after <= 86_400 or missing_after % 300:
        raise AisecInputError(f"missing_after must be a multiple of 300 s between 300 and 86400, not {missing_after}")
    scope = "".join(f" [{k}={v}]" for k, v in sorted(dims.items()))
    common: dict[str, Any] = {"ActionsEnabled": True, "AlarmActions": list(alarm_actions), "TreatMissingData": "ignore"}
    out: list[dict[str, Any]] = []
    for rule in _rules(latency_threshold):
        where = [*rule.where, *(f"{k} = '{v}'" for k, v in sorted(dims.items()))]
        query = f'SELECT {rule.function}({rule.metric}) FROM "{namespace}"' + (
            f" WHERE {' AND '.join(where)}" if where else ""
        )
        metrics: list[dict[str, Any]] = [
            {"Id": "m", "Expression": query, "Period": rule.period, "ReturnData": rule.math is None}
        ]
        if rule.math:
            metrics.append({"Id": "e", "Expression": rule.math, "ReturnData": True})
        out.append(
            {
                "AlarmName": f"{namespace} {rule.alert}{scope}",
                "AlarmDescription": f"{rule.description}"
                + (f" (Prometheus rule {rule.alert})." if rule.prometheus else "."),
                **common,
                "Metrics": metrics,
                "EvaluationPeriods": rule.evaluation_periods,
                "DatapointsToAlarm": rule.evaluation_periods,
                "Threshold": float(rule.threshold),
                "ComparisonOperator": rule.comparison,
            }
        )
    periods = missing_after // 300
    out.append(
        {
            "AlarmName": f"{namespace} AisecMetricsMissing{scope}",
            "AlarmDescription": f"No aisec metrics published to {namespace} for {missing_after} s "
            "(publishing task not running or denied) (Prometheus rule AisecMetricsMissing).",
            **common,
            "Namespace": namespace,
            "MetricName": "aisec_reports_stored",
            "Statistic": "SampleCount",
            "Period": 300,
            "EvaluationPeriods": periods,
            "DatapointsToAlarm": periods,
            "Threshold": 1.0,
            "ComparisonOperator": "LessThanThreshold",
            "TreatMissingData": "breaching",
        }
    )
    for alarm in out:
        if len(alarm["AlarmName"]) > 255:
            raise AisecInputError(f"alarm name over 255 characters: {alarm['AlarmName'][:80]!r}…")
    return out


def _same(want: Any, have: Any) -> bool:
    """``have`` (from ``DescribeAlarms``) holds ``want``: dicts compared on ``want``'s keys, numbers as floats."""
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(_same(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(map(_same, want, have))
    if isinstance(want, bool):
        return have is want
    if isinstance(want, (int, float)):
        return isinstance(have, (int, float)) and not isinstance(have, bool) and float(want) == float(have)
    return bool(want == have)


def changed_fields(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    """The :data:`ALARM_FIELDS` of ``want`` that the existing alarm ``have`` does not match."""
    return [k for k in ALARM_FIELDS if k in want and not _same(want[k], have.get(k))]


def apply_alarms(
    client: Any, alarms: Sequence[Mapping[str, Any]], *, retry: RetryPolicy | None = None
) -> dict[str, Any]:
    """Create or update ``alarms`` idempotently: ``DescribeAlarms`` first, ``PutMetricAlarm`` only for the
    missing ones and those whose compared fields differ; returns the names by outcome.

    :raises AisecUndecidableError: a call was denied or refused (alarms before it were applied).
    :raises AisecTransientError: throttling / 5xx / network errors outlasting the retries.
    """
    retry = retry or RetryPolicy()
    stats = CallStats()
    names = [a["AlarmName"] for a in alarms]
    existing: dict[str, Mapping[str, Any]] = {}
    for start in range(0, len(names), 100):  # DescribeAlarms: at most 100 names per call
        token = None
        while True:
            kwargs: dict[str, Any] = {"AlarmNames": names[start : start + 100], "AlarmTypes": ["MetricAlarm"]}
            if token:
                kwargs["NextToken"] = token
            page = _call(client, "describe_alarms", "alarms", retry, stats, target="CloudWatch alarms", **kwargs)
            existing.update((a["AlarmName"], a) for a in page.get("MetricAlarms") or [])
            token = page.get("NextToken")
            if not token:
                break
    created, updated, unchanged = [], [], []
    changes: dict[str, list[str]] = {}
    for alarm in alarms:
        name = alarm["AlarmName"]
        have = existing.get(name)
        diff = changed_fields(alarm, have) if have is not None else []
        if have is not None and not diff:
            unchanged.append(name)
            continue
        _call(client, "put_metric_alarm", name, retry, stats, target=f"CloudWatch alarm {name!r}", **alarm)
        if have is None:
            created.append(name)
        else:
            updated.append(name)
            changes[name] = diff
    return {
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "changed_fields": changes,
        "api_retries": stats.retries,
        "summary": f"{len(created)} created, {len(updated)} updated, {len(unchanged)} unchanged",
    }
