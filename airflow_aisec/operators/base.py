"""Shared behaviour of every airflow-aisec operator.

Every check follows one life cycle: resolve inputs, call a pure core function, push
the report, decide pass/fail. :class:`AisecBaseOperator` owns the last two steps so that each
operator's ``execute`` reads as a few lines:

.. code-block:: python

    def execute(self, context):
        return self.run_check(context, subject=self.path, check=lambda: core.verify(self.path, ...))

Fail-vs-retry semantics (same for every aisec operator):

* report ``fail`` (the check found something) → ``AirflowFailException``: no retry, the data will not
  change by retrying. ``retry_on_failure=True`` raises ``AirflowException`` instead (retries apply).
* report ``error`` (cannot decide: bad input, missing evidence) → ``AirflowFailException``, except when
  the cause is transient (:class:`~airflow_aisec.exceptions.AisecTransientError`) → ``AirflowException``.
* report ``warn`` / ``pass`` → the task succeeds and returns the report.

Monitoring operators let the user choose what a failing report does (``on_drift``,
``on_degradation``; :data:`OUTCOMES`): ``fail`` as above, ``warn`` (the report becomes ``warn``, the
task succeeds) or ``pass-through`` (the report keeps ``fail``, the task succeeds; downstream decides).

The report is pushed to XCom under :data:`REPORT_XCOM_KEY` *before* anything is raised, and is also
the task's return value when it passes.

No traceback is a verdict: every subclass's ``execute`` is wrapped (:meth:`AisecBaseOperator.__init_subclass__`)
so that an exception outside airflow-aisec's hierarchy (a bug, or a hostile input nobody foresaw)
becomes an ``error`` report naming the task and its subject, and an ``AirflowFailException``.
Airflow's own control-flow exceptions (skip, defer, reschedule, fail) pass through unchanged.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_aisec.exceptions import AisecCheckFailed, AisecError
from airflow_aisec.lineage import AisecLineageMixin
from airflow_aisec.links import AisecReportLink
from airflow_aisec.report import Report, Status, validate

if TYPE_CHECKING:
    from airflow.sdk import Context

#: XCom key under which every aisec operator stores its report (also pushed when the task fails).
REPORT_XCOM_KEY = "aisec_report"
#: Environment variable naming a directory where reports are also written as files.
REPORT_DIR_ENV = "AISEC_REPORT_DIR"  # deprecated: [aisec] report_dir
#: What a failing report does to a monitoring task (``on_drift`` / ``on_degradation``).
OUTCOMES = ("fail", "warn", "pass-through")


def report_file_path(report_dir: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """Where a task's report is stored under ``report_dir``: ``<dag_id>/<run_id>/<task_id>[.N].json``."""
    safe_run = run_id.replace("/", "_").replace(":", "-")
    name = task_id if map_index < 0 else f"{task_id}.{map_index}"
    return os.path.join(report_dir, dag_id, safe_run, f"{name}.json")


class AisecBaseOperator(AisecLineageMixin, BaseOperator):
    """Base class of airflow-aisec operators (not used directly).

    :param report_path: file to also write the report to (atomically). Default: under the directory
        of the ``[aisec] report_dir`` option (or the deprecated ``AISEC_REPORT_DIR`` environment
        variable) when set, else no file. (templated)
    :param sarif_path: file to also write the report to as SARIF 2.1.0 (atomically), for code-scanning
        dashboards. Default: no SARIF file. (templated)
    :param retry_on_failure: raise a retryable ``AirflowException`` instead of ``AirflowFailException``
        when the check fails. Default ``False``: findings do not go away on retry.
    """

    #: the ``check`` name of the reports this operator produces (one of :data:`airflow_aisec.report.CHECKS`).
    aisec_check: ClassVar[str] = ""
    template_fields: Sequence[str] = ("report_path", "sarif_path")
    ui_color = "#f3e5f5"
    #: "AI Security report" button on every aisec task instance (the plugin's report page).
    operator_extra_links = (AisecReportLink(),)
    #: name of the operator's outcome option (``on_drift``, ...) when it has one; see :data:`OUTCOMES`.
    outcome_option: ClassVar[str] = ""

    #: attributes tried, in order, to name the subject of an unexpected-error report.
    subject_attributes: ClassVar[tuple[str, ...]] = ("path", "data", "current", "model_path", "log_path", "url")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        execute = cls.__dict__.get("execute")
        if execute is not None and not getattr(execute, "_aisec_guarded", False):
            cls.execute = _guarded(execute)  # type: ignore[method-assign]

    def __init__(
        self,
        *,
        report_path: str | None = None,
        sarif_path: str | None = None,
        retry_on_failure: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.report_path = report_path
        self.sarif_path = sarif_path
        self.retry_on_failure = retry_on_failure
        self.outcome = "fail"

    def set_outcome(self, outcome: str) -> None:
        """Validate and set what a failing report does (operators with an outcome option call this)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"{self.outcome_option or 'outcome'} must be one of {OUTCOMES}, not {outcome!r}")
        self.outcome = outcome

    def soften(self, report: Report) -> Report:
        """With outcome ``warn`` a failing report becomes ``warn`` (its summary says why); else unchanged."""
        if report.status == "fail" and self.outcome == "warn":
            report.status = Status.WARN
            report.summary = f"[{self.outcome_option}=warn] {report.summary}"
        return report

    # ------------------------------------------------------------------ life cycle
    def run_check(self, context: Context, *, subject: str, check: Callable[[], Report]) -> dict[str, Any]:
        """Run ``check``, publish its report, then pass or raise (module docstring).

        Exceptions from airflow-aisec's hierarchy become an ``error`` report naming the cause; any
        other exception propagates unchanged (a bug is not a verdict).
        """
        try:
            report = check()
        except AisecCheckFailed as exc:  # core already built the failing report
            report = exc.report if isinstance(exc.report, Report) else Report.from_dict(exc.report)
        except AisecError as exc:
            self.fail_undecided(context, subject, exc)
        return self.conclude(context, report)

    def describe_subject(self) -> str:
        """What this task checks, for a report written when the check itself could not say."""
        for name in self.subject_attributes:
            value = getattr(self, name, None)
            if value:
                return str(value)
        return self.task_id

    def fail_unexpected(self, context: Context, exc: BaseException) -> NoReturn:
        """Publish an ``error`` report for an exception nobody anticipated and fail the task (no retry)."""
        from airflow_aisec.utils.extras import missing_extra

        exc = missing_extra(exc) or exc  # an optional dependency not installed: name the extra
        if isinstance(exc, AisecError):
            self.fail_undecided(context, self.describe_subject(), exc)
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        message = f"unexpected error in {type(self).__name__} on {self.describe_subject()}: {text}"
        self.log.error("%s", message)
        report = Report.start(self.aisec_check or "integrity", self.describe_subject()).error(message)
        try:
            self.publish(context, report)
        except Exception:  # the report cannot be stored: the failure itself still stands
            self.log.exception("could not publish the error report")
        raise AirflowFailException(message) from exc

    def fail_undecided(self, context: Context, subject: str, exc: AisecError) -> NoReturn:
        """Publish an ``error`` report naming ``exc`` and raise (retryable only for transient causes)."""
        report = Report.start(self.aisec_check, subject).error(f"{type(exc).__name__}: {exc}")
        self.publish(context, report)
        raise (AirflowException if exc.retryable else AirflowFailException)(report.summary) from exc

    def conclude(self, context: Context, report: Report) -> dict[str, Any]:
        """Publish ``report`` and raise according to its status; return it as a dict when it passes.

        With outcome ``pass-through`` a failing report is published unchanged and the task succeeds.
        """
        data = self.publish(context, report)
        if data["status"] == "fail" and self.outcome == "pass-through":
            self.log.warning("%s=pass-through: check failed, task succeeds; %s", self.outcome_option, data["summary"])
            return data
        if data["status"] == "fail":
            raise (AirflowException if self.retry_on_failure else AirflowFailException)(
                f"{data['check']} failed: {data['summary']}"
            )
        if data["status"] == "error":
            raise AirflowFailException(f"{data['check']} could not decide: {data['summary']}")
        return data

    def publish(self, context: Context, report: Report | Mapping[str, Any]) -> dict[str, Any]:
        """Validate, log, store (XCom, optional file) and emit metrics for ``report``."""
        data = report.to_dict() if isinstance(report, Report) else dict(report)
        validate(data)
        self.aisec_last_report = data  # what this run's OpenLineage facets describe (airflow_aisec.lineage)
        self.log.info("aisec %s [%s] %s: %s", data["check"], data["status"].upper(), data["subject"], data["summary"])
        for finding in data["findings"][:50]:
            self.log.info(
                "  %-8s %s %s (%s)", finding["severity"], finding["id"], finding["title"], finding["location"]
            )
        if len(data["findings"]) > 50:
            self.log.info("  … and %d more finding(s) in the report", len(data["findings"]) - 50)
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=data)
        path = self._resolve_report_path(context)
        if path:
            from airflow_aisec.utils.fs import write_json_atomic

            write_json_atomic(path, data)
            self.log.info("aisec report written to %s", path)
        if self.sarif_path:
            from airflow_aisec.outputs.sarif import dumps
            from airflow_aisec.utils.fs import write_text_atomic

            write_text_atomic(str(self.sarif_path), dumps(data))
            self.log.info("aisec SARIF written to %s", self.sarif_path)
        self._emit_stats(data)
        return data

    # ------------------------------------------------------------------ helpers
    def _resolve_report_path(self, context: Context) -> str | None:
        if self.report_path:
            return str(self.report_path)
        from airflow_aisec import settings

        report_dir = settings.get("report_dir")  # [aisec] report_dir, else the deprecated $AISEC_REPORT_DIR
        if not report_dir:
            return None
        ti = context["ti"]
        return report_file_path(report_dir, ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))

    def _emit_stats(self, data: Mapping[str, Any]) -> None:
        """Emit StatsD/OpenTelemetry metrics through Airflow's stats interface (no-op when off)."""
        try:
            from airflow.sdk.observability import stats
        except ImportError:  # pragma: no cover - older Task SDK
            return
        tags = {"dag_id": self.dag_id, "task_id": self.task_id, "check": data["check"], "status": data["status"]}
        stats.incr(f"aisec.check.{data['status']}", tags=tags)
        stats.gauge(f"aisec.{data['check']}.findings", len(data["findings"]), tags=tags)

    def emit_asset_events(self, context: Context, extra: Mapping[str, Any]) -> None:
        """Attach ``extra`` (summary metadata) to the asset event of every outlet of this task."""
        from airflow.sdk import Asset

        for outlet in self.outlets or ():
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra.update(dict(extra))


def _guarded(execute: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an operator's ``execute``: unexpected exceptions become an ``error`` report (see module docstring)."""

    @functools.wraps(execute)
    def wrapper(self: AisecBaseOperator, context: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, context, *args, **kwargs)
        except AirflowException:  # Airflow's control flow (fail, skip, reschedule, timeout): unchanged
            raise
        except Exception as exc:
            self.fail_unexpected(context, exc)

    wrapper._aisec_guarded = True  # type: ignore[attr-defined]
    return wrapper
