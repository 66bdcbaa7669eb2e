"""Read aisec reports from Airflow's metadata DB (the plugin runs inside the API server).

Every aisec operator pushes its report to XCom under ``aisec_report``
(:data:`airflow_aisec.operators.base.REPORT_XCOM_KEY`); this module is the only place that queries
them. Queries stay cheap with many stored reports:

* "latest report per task" uses a window function (``row_number() over (partition by dag_id, task_id,
  map_index order by timestamp desc)``) on the XCom key index, selecting only the key columns; the
  JSON values are then fetched for the winners only;
* history (drift charts) is bounded to the last ``history`` reports of the tasks that need it;
* run listings are paginated in SQL (``limit``/``offset``).

Reports whose value is not an ``aisec.report/v1`` object (e.g. a custom XCom backend storing a
reference) are skipped, never guessed at.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select

from airflow_aisec.report import SCHEMA

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

REPORT_KEY = "aisec_report"
#: Upper bound of latest-report rows considered by the overview and the metrics (distinct tasks).
MAX_LATEST = 5000


@dataclass
class StoredReport:
    """One report as stored for a task instance, with the run it belongs to."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    timestamp: datetime | None
    report: dict[str, Any]
    run_after: datetime | None = None
    run_state: str | None = None

    @property
    def check(self) -> str:
        return str(self.report.get("check", ""))

    @property
    def status(self) -> str:
        return str(self.report.get("status", ""))

    @property
    def findings(self) -> list[dict[str, Any]]:
        findings = self.report.get("findings") or []
        return findings if isinstance(findings, list) else []

    @property
    def metrics(self) -> dict[str, Any]:
        metrics = self.report.get("metrics") or {}
        return metrics if isinstance(metrics, dict) else {}

    def severity_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for finding in self.findings:
            sev = str(finding.get("severity", "info"))
            counts[sev] = counts.get(sev, 0) + 1
        return counts


@dataclass
class Page:
    """A page of rows plus what the pager needs."""

    items: list[Any]
    page: int
    per_page: int
    total: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _xcom() -> Any:
    from airflow.models.xcom import XComModel

    return XComModel


def _dagrun() -> Any:
    from airflow.models.dagrun import DagRun

    return DagRun


def _as_report(value: Any) -> dict[str, Any] | None:
    if isinstance(value, (str, bytes)):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict) and value.get("schema") == SCHEMA and "check" in value and "status" in value:
        report = _clean(value, 0)
        findings = report.get("findings")
        report["findings"] = [f for f in findings if isinstance(f, dict)] if isinstance(findings, list) else []
        return report
    return None


#: deepest nesting of a stored report rendered; deeper values are replaced by a marker.
_MAX_DEPTH = 64
#: integers beyond this magnitude cannot become a float (metrics, charts): shown as text.
_MAX_INT = 2**1023


def _clean(value: Any, depth: int) -> Any:
    """A stored report as the pages and ``/metrics`` can always render it: text that is valid UTF-8
    (a lone surrogate from ``"\\ud800"`` would make every response carrying it fail to encode),
    integers a float can hold (else text), finite floats (else text), string keys, bounded nesting. Any task can push an XCom
    under ``aisec_report``: one malformed value must not take the overview or ``/metrics`` down."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):  # NaN/Infinity are not JSON: the JSON route could not send the report
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        if -_MAX_INT < value < _MAX_INT:
            return value
        return "<integer too large>"
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, dict):
        return {_clean(str(k), depth): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, depth + 1) for v in value]
    return _clean(str(value), depth)


def _stored(row: Any) -> StoredReport | None:
    """A result row (dag_id, run_id, task_id, map_index, timestamp, value, run_after, state) as a report."""
    report = _as_report(row.value)
    if report is None:
        return None
    return StoredReport(
        dag_id=row.dag_id,
        run_id=row.run_id,
        task_id=row.task_id,
        map_index=row.map_index,
        timestamp=row.timestamp,
        report=report,
        run_after=row.run_after,
        run_state=str(row.state) if row.state is not None else None,
    )


def _ranked(session: Session, dag_ids: Iterable[str], *, task_filter: Sequence[tuple[str, str]] = ()) -> Any:
    """Subquery: key columns of every report with its recency rank within its task (1 = newest)."""
    x = _xcom()
    rank = (
        func.row_number()
        .over(
            partition_by=(x.dag_id, x.task_id, x.map_index),
            order_by=(x.timestamp.desc(), x.dag_run_id.desc()),
        )
        .label("rn")
    )
    query = select(x.dag_run_id, x.dag_id, x.run_id, x.task_id, x.map_index, x.timestamp, rank).where(
        x.key == REPORT_KEY
    )
    query = query.where(x.dag_id.in_(sorted(dag_ids)))  # always filtered: no "None means all"
    if task_filter:
        query = query.where(
            x.dag_id.in_(sorted({d for d, _ in task_filter})), x.task_id.in_(sorted({t for _, t in task_filter}))
        )
    return query.subquery("ranked")


def _fetch(session: Session, ranked: Any, where: Any, *, limit: int) -> list[StoredReport]:
    x, dr = _xcom(), _dagrun()
    query = (
        select(
            ranked.c.dag_id,
            ranked.c.run_id,
            ranked.c.task_id,
            ranked.c.map_index,
            ranked.c.timestamp,
            x.value,
            dr.run_after,
            dr.state,
        )
        .join(
            x,
            and_(
                x.dag_run_id == ranked.c.dag_run_id,
                x.task_id == ranked.c.task_id,
                x.map_index == ranked.c.map_index,
                x.key == REPORT_KEY,
            ),
        )
        .outerjoin(dr, dr.id == ranked.c.dag_run_id)
        .where(where)
        .order_by(ranked.c.dag_id, ranked.c.task_id, ranked.c.map_index, ranked.c.rn)
        .limit(limit)
    )
    return [stored for row in session.execute(query) if (stored := _stored(row)) is not None]


def report_dag_ids(session: Session) -> set[str]:
    """Every DAG id with at least one stored report (the candidates the authorisation rule filters)."""
    x = _xcom()
    return {str(d) for d in session.scalars(select(x.dag_id).where(x.key == REPORT_KEY).distinct())}


def latest_reports(session: Session, dag_ids: Iterable[str]) -> list[StoredReport]:
    """The newest report of every (dag, task, map index) of ``dag_ids``, ordered by dag and task
    (at most ``MAX_LATEST``). ``dag_ids`` is required: only the DAGs the caller authorised."""
    ranked = _ranked(session, dag_ids)
    return _fetch(session, ranked, ranked.c.rn == 1, limit=MAX_LATEST)


def history(
    session: Session, tasks: Sequence[tuple[str, str]], dag_ids: Iterable[str], *, last: int = 20
) -> dict[tuple[str, str, int], list[StoredReport]]:
    """The last ``last`` reports of each (dag_id, task_id) in ``tasks``, oldest first."""
    if not tasks:
        return {}
    wanted = set(tasks)
    ranked = _ranked(session, dag_ids, task_filter=tasks)
    rows = _fetch(session, ranked, ranked.c.rn <= last, limit=last * len(wanted) * 4 + 100)
    out: dict[tuple[str, str, int], list[StoredReport]] = {}
    for row in rows:
        if (row.dag_id, row.task_id) in wanted:
            out.setdefault((row.dag_id, row.task_id, row.map_index), []).append(row)
    for rows_ in out.values():
        rows_.reverse()
    return out


def count_reports(session: Session, dag_ids: Iterable[str]) -> int:
    x = _xcom()
    query = select(func.count()).select_from(x).where(x.key == REPORT_KEY, x.dag_id.in_(sorted(dag_ids)))
    return int(session.scalar(query) or 0)


def run_reports(session: Session, dag_id: str, run_id: str, *, page: int = 1, per_page: int = 50) -> Page:
    """Every report of one DAG run (paginated, ordered by task)."""
    x, dr = _xcom(), _dagrun()
    base = (x.key == REPORT_KEY) & (x.dag_id == dag_id) & (x.run_id == run_id)
    total = int(session.scalar(select(func.count()).select_from(x).where(base)) or 0)
    query = (
        select(x.dag_id, x.run_id, x.task_id, x.map_index, x.timestamp, x.value, dr.run_after, dr.state)
        .outerjoin(dr, dr.id == x.dag_run_id)
        .where(base)
        .order_by(x.task_id, x.map_index)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = [stored for row in session.execute(query) if (stored := _stored(row)) is not None]
    return Page(items=items, page=page, per_page=per_page, total=total)


def task_report(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> StoredReport | None:
    """The report of one task instance, or ``None``."""
    x, dr = _xcom(), _dagrun()
    row = session.execute(
        select(x.dag_id, x.run_id, x.task_id, x.map_index, x.timestamp, x.value, dr.run_after, dr.state)
        .outerjoin(dr, dr.id == x.dag_run_id)
        .where(
            x.key == REPORT_KEY,
            x.dag_id == dag_id,
            x.run_id == run_id,
            x.task_id == task_id,
            x.map_index == map_index,
        )
    ).first()
    return None if row is None else _stored(row)
