"""Publish the aisec metrics to Amazon CloudWatch (the series the Prometheus endpoint exports).

The reports come from upstream tasks of the same run (their ``aisec_report`` XCom) and/or from a report
directory (``AISEC_REPORT_DIR`` layout, the latest report of each task); they are rendered by the same
code as ``/aisec/metrics`` and published with ``PutMetricData`` through an Airflow AWS connection
(providers-amazon, imported only when the task runs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_aisec.exceptions import AisecError
from airflow_aisec.operators.base import REPORT_DIR_ENV, REPORT_XCOM_KEY
from airflow_aisec.operators.cloud import AWS_TEMPLATE_FIELDS, AisecAwsHookMixin, _as_list

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Most report files read from a report directory in one run.
MAX_REPORT_FILES = 20_000
_MAPPED = re.compile(r"^(.*)\.(\d+)$")


@dataclass
class _Row:
    """One report as the metrics renderer reads it (``ReportLike``)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    report: dict[str, Any]
    timestamp: datetime | None = None


def latest_reports_in(report_dir: str) -> list[_Row]:
    """The latest report of each task under ``report_dir`` (``<dag_id>/<run_id>/<task_id>[.N].json``)."""
    root = Path(report_dir)
    if not root.is_dir():
        raise AirflowFailException(f"report_dir {report_dir!r} is not a directory")
    latest: dict[tuple[str, str, int], tuple[float, Path]] = {}
    for count, path in enumerate(root.glob("*/*/*.json"), 1):
        if count > MAX_REPORT_FILES:
            raise AirflowFailException(f"report_dir {report_dir!r} holds over {MAX_REPORT_FILES} report files")
        m = _MAPPED.match(path.stem)
        task_id, map_index = (m.group(1), int(m.group(2))) if m else (path.stem, -1)
        key = (path.parent.parent.name, task_id, map_index)
        mtime = path.stat().st_mtime
        if key not in latest or mtime > latest[key][0]:
            latest[key] = (mtime, path)
    rows = []
    for (dag_id, task_id, map_index), (mtime, path) in sorted(latest.items()):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise AirflowFailException(f"stored report {path} cannot be read: {type(exc).__name__}") from None
        if not isinstance(report, dict):
            raise AirflowFailException(f"stored report {path} is not a JSON object")
        when = datetime.fromtimestamp(mtime, tz=timezone.utc)
        rows.append(_Row(dag_id, path.parent.name, task_id, map_index, report, when))
    return rows


class CloudWatchMetricsOperator(AisecAwsHookMixin, BaseOperator):
    """Publish the aisec metrics of stored reports to CloudWatch, optionally with an error-rate alarm.

    Every metric family of the Prometheus endpoint (``aisec_check_status``, ``aisec_check_failed``,
    ``aisec_findings``, ``aisec_report_metric`` …) becomes a CloudWatch metric of the same name in
    ``namespace``, with the labels as dimensions (``DAG``, ``Task``, ``Check``, ``Severity``, ``Status``,
    ``Name``, ``MapIndex``), plus the dimensionless ``aisec_check_error_rate`` (share of tasks whose latest
    report is ``fail`` or ``error``). ``PutMetricData`` calls carry at most ``max_datums`` datums (API
    limit 1000) and stay under the request size limit; throttling and network errors are retried with
    bounded backoff, then the task retries. A denied call or no report to publish fails the task.

    :param report_task_ids: upstream tasks of this run whose reports to publish. (templated)
    :param report_dir: a report directory (``AISEC_REPORT_DIR`` layout) whose latest report per task to
        publish; ``"env"`` reads the ``[aisec] report_dir`` option (or the deprecated ``AISEC_REPORT_DIR``
        environment variable). (templated)
    :param namespace: CloudWatch namespace (not ``AWS/…``). (templated)
    :param max_datums: datums per ``PutMetricData`` call (1–1000).
    :param create_alarm: also create or update the alarm "``aisec_check_error_rate`` > ``alarm_threshold``".
    :param alarm_threshold: share of failed or undecided checks above which the alarm fires (default 5 %).
    :param alarm_period: alarm period in seconds (10, 20, 30 or a multiple of 60).
    :param alarm_name: alarm name (default ``"<namespace> aisec check error rate"``). (templated)
    :param alarm_actions: ARNs to notify (SNS topics …) when the alarm fires (the rule alarms too).
    :param create_rule_alarms: also create or update the alarms equivalent to the Prometheus alert rules
        (as ``aisec cloudwatch-alarms --apply``: only missing or changed alarms are written).
    :param alarm_dimensions: narrow the rule alarms to series with these dimensions (``{"DAG": "prod"}``).
    :param max_attempts: attempts per API call for throttling / 5xx / network errors.
    :param aws_conn_id: Airflow AWS connection. (templated)
    :param region_name: AWS region; default from the connection. (templated)
    :param verify: verify TLS certificates (or a CA bundle path); default from the connection. (templated)
    :param botocore_config: botocore client configuration, as a dict.
    """

    aws_client_type = "cloudwatch"
    template_fields: Sequence[str] = (
        "report_task_ids",
        "report_dir",
        "namespace",
        "alarm_name",
        *AWS_TEMPLATE_FIELDS,
    )
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        report_task_ids: str | Sequence[str] = (),
        report_dir: str | None = None,
        namespace: str = "Airflow/AISec",
        max_datums: int = 1000,
        create_alarm: bool = False,
        alarm_threshold: float = 0.05,
        alarm_period: int = 300,
        alarm_name: str | None = None,
        alarm_actions: Sequence[str] = (),
        create_rule_alarms: bool = False,
        alarm_dimensions: dict[str, str] | None = None,
        max_attempts: int = 4,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not report_task_ids and not report_dir:
            raise ValueError("CloudWatchMetricsOperator needs report_task_ids or report_dir")
        if not 1 <= max_datums <= 1000:
            raise ValueError(f"max_datums must be between 1 and 1000 (PutMetricData limit), not {max_datums}")
        if not 0 <= alarm_threshold < 1:
            raise ValueError(f"alarm_threshold must be a share in [0, 1), not {alarm_threshold}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self._set_aws_params(aws_conn_id, region_name, verify, botocore_config)
        self.report_task_ids = report_task_ids
        self.report_dir = report_dir
        self.namespace = namespace
        self.max_datums = max_datums
        self.create_alarm = create_alarm
        self.alarm_threshold = alarm_threshold
        self.alarm_period = alarm_period
        self.alarm_name = alarm_name
        self.alarm_actions = list(alarm_actions)
        self.create_rule_alarms = create_rule_alarms
        self.alarm_dimensions = dict(alarm_dimensions or {})
        self.max_attempts = max_attempts

    def execute(self, context: Context) -> dict[str, Any]:
        rows = self._rows(context)
        if not rows:
            raise AirflowFailException("no aisec report to publish (none in XCom or the report directory)")
        try:
            return self._publish(rows)
        except AisecError as exc:
            raise (AirflowException if exc.retryable else AirflowFailException)(
                f"CloudWatch publish failed: {exc}"
            ) from exc

    def _rows(self, context: Context) -> list[_Row]:
        ti = context["ti"]
        rows: list[_Row] = []
        for task_id in _as_list(self.report_task_ids, "report_task_ids"):
            value = ti.xcom_pull(task_ids=task_id, key=REPORT_XCOM_KEY)
            values = value if isinstance(value, list) else [value]
            for index, report in enumerate(values):
                if isinstance(report, dict):
                    map_index = index if isinstance(value, list) and len(values) > 1 else -1
                    rows.append(_Row(ti.dag_id, ti.run_id, task_id, map_index, report))
                else:
                    self.log.warning("task %s pushed no aisec report; nothing published for it", task_id)
        from airflow_aisec import settings

        report_dir = settings.get("report_dir") if self.report_dir == "env" else self.report_dir
        if self.report_dir == "env" and not report_dir:
            raise AirflowFailException(f"report_dir='env' but neither [aisec] report_dir nor {REPORT_DIR_ENV} is set")
        if report_dir:
            rows += latest_reports_in(report_dir)
        return rows

    def _publish(self, rows: list[_Row]) -> dict[str, Any]:
        from airflow_aisec.core.aws import cloudwatch
        from airflow_aisec.core.aws.common import RetryPolicy
        from airflow_aisec.plugins.metrics import render

        retry = RetryPolicy(max_attempts=self.max_attempts)
        client = self.hook.conn
        result = cloudwatch.publish(
            client,
            render(rows, stored=len(rows)),
            namespace=self.namespace,
            timestamp=datetime.now(timezone.utc),
            max_datums=self.max_datums,
            retry=retry,
        )
        result["reports"] = len(rows)
        if self.create_alarm:
            result["alarm"] = cloudwatch.put_error_rate_alarm(
                client,
                namespace=self.namespace,
                alarm_name=self.alarm_name or None,
                threshold=self.alarm_threshold,
                period=self.alarm_period,
                alarm_actions=self.alarm_actions,
                retry=retry,
            )
        if self.create_rule_alarms:
            alarms = cloudwatch.alarm_definitions(
                namespace=self.namespace, dimensions=self.alarm_dimensions, alarm_actions=self.alarm_actions
            )
            result["rule_alarms"] = cloudwatch.apply_alarms(client, alarms, retry=retry)
            self.log.info("CloudWatch rule alarms: %s", result["rule_alarms"]["summary"])
        self.log.info(
            "published %s datum(s) of %s report(s) to CloudWatch namespace %s in %s call(s)",
            result["datums"],
            len(rows),
            self.namespace,
            result["put_metric_data_calls"],
        )
        return result
