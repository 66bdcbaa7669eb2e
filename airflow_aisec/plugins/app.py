"""The ``/aisec`` FastAPI app: overview, DAG-run and task-instance pages, JSON and Prometheus metrics.

Mounted on Airflow's API server by :class:`airflow_aisec.plugins.aisec_plugin.AisecPlugin`. Every route
requires an authenticated user allowed to see plugins (``AccessView.PLUGINS``): the UI's ``_token``
cookie authenticates the embedded pages, ``Authorization: Bearer <JWT from POST /auth/token>``
authenticates scripts and Prometheus. Every page and the metrics show reports only of the DAGs
:func:`report_dag_ids` allows (XCom read on the DAG; unknown means deny).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import cache
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_view
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response

from airflow_aisec.plugins import charts, metrics, store, summary
from airflow_aisec.report import SEVERITIES

log = logging.getLogger(__name__)

MOUNT = "/aisec"
PER_PAGE_MAX = 200
#: drift charts on the overview: the DAGs with the highest latest drift share (filter by DAG for others).
MAX_DRIFT_CHARTS = 8


@cache
def _templates() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("airflow_aisec.plugins", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.globals["SEVERITIES"] = SEVERITIES
    return env


def report_dag_ids(user: Any, candidates: Iterable[str]) -> set[str]:
    """The one authorisation rule: which of ``candidates`` the user may see aisec reports of.

    Reports are XCom values, so a DAG's reports are shown only when the auth manager answers exactly
    ``True`` to ``is_authorized_dag(method="GET", access_entity=DagAccessEntity.XCOM,
    details=DagDetails(id=dag_id, team_name=<the DAG's team>))`` — the check Airflow's own XCom
    endpoints make. DAG read access alone is not enough. Unknown means deny: an auth manager that
    raises (``NotImplementedError`` included) or answers anything but ``True`` denies; an exception
    denies every DAG of the request (logged, without the user).

    Every route (overview, run, task instance, JSON report, ``/metrics``) uses this function.
    """
    wanted = sorted({str(d) for d in candidates})
    if not wanted:
        return set()
    try:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.models.dag import DagModel

        auth_manager = get_auth_manager()
        teams = DagModel.get_dag_id_to_team_name_mapping(wanted)
        allowed = set()
        for dag_id in wanted:
            answer = auth_manager.is_authorized_dag(
                method="GET",
                access_entity=DagAccessEntity.XCOM,
                details=DagDetails(id=dag_id, team_name=teams.get(dag_id)),
                user=user,
            )
            if answer is True:
                allowed.add(dag_id)
        return allowed
    except Exception as exc:
        log.warning("aisec UI: authorisation check failed (%s): denying all reports", type(exc).__name__)
        return set()


def _readable_dag_ids(user: Any, session: Any, dag_id: str | None = None) -> set[str]:
    """DAG ids whose reports ``user`` may see, among those with stored reports (or just ``dag_id``)."""
    candidates = {dag_id} if dag_id is not None else store.report_dag_ids(session)
    return report_dag_ids(user, candidates)


def _require_dag(user: Any, dag_id: str) -> None:
    if dag_id not in report_dag_ids(user, {dag_id}):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")


def _links(request: Request) -> dict[str, Any]:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    airflow_root = root[: -len(MOUNT)] if root.endswith(MOUNT) else ""

    def run(dag_id: str, run_id: str, **params: Any) -> str:
        url = f"{root}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
        return url + (f"?{urlencode(params)}" if params else "")

    def task(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        url = f"{run(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"
        return url + (f"?map_index={map_index}" if map_index >= 0 else "")

    def page(n: int, **params: Any) -> str:
        query = {k: v for k, v in {**dict(request.query_params), **params, "page": n}.items() if v is not None}
        return f"{request.url.path}?{urlencode(query)}"

    def airflow_run(dag_id: str, run_id: str) -> str:
        return f"{airflow_root}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

    return {
        "home": f"{root}/",
        "run_url": run,
        "task_url": task,
        "page_url": page,
        "airflow_run_url": airflow_run,
        "metrics_url": f"{root}/metrics",
    }


def _render(request: Request, template: str, **context: Any) -> HTMLResponse:
    html = _templates().get_template(template).render(**_links(request), **context)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def create_app() -> FastAPI:
    """Build the app (called once, lazily, by the plugin's ASGI wrapper)."""
    app = FastAPI(
        title="airflow-aisec",
        description="AI security reports stored by airflow-aisec operators.",
        dependencies=[Depends(requires_access_view(AccessView.PLUGINS))],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    for path, endpoint, name, html in _ROUTES:
        options: dict[str, Any] = {"response_class": HTMLResponse} if html else {}
        app.add_api_route(path, endpoint, methods=["GET"], name=name, **options)
    return app


def _overview_page(
    request: Request,
    user: GetUserDep,
    session: SessionDep,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=PER_PAGE_MAX)] = 50,
    dag_id: str | None = None,
    history: Annotated[int, Query(ge=2, le=100)] = 20,
) -> HTMLResponse:
    dag_ids = _readable_dag_ids(user, session, dag_id)
    latest = store.latest_reports(session, dag_ids)
    agg = summary.overview(latest)
    start = (page - 1) * per_page
    table = store.Page(items=latest[start : start + per_page], page=page, per_page=per_page, total=len(latest))
    return _render(
        request,
        "overview.html",
        agg=agg,
        table=table,
        drift_charts=_drift_charts(session, agg, dag_ids, history),
        drift_dags_total=len({d for d, _ in agg.drift_tasks}),
        stored=store.count_reports(session, dag_ids),
        dag_filter=dag_id,
        sev_bar=charts.severity_bar(agg.severity_counts),
        vuln_bar=charts.severity_bar(agg.open_vulnerabilities),
        max_severity=summary.max_severity,
        severity_counts=summary.severity_counts,
        retrain_decision=summary.retrain_decision,
    )


def _drift_charts(session: Any, agg: Any, dag_ids: set[str], history: int) -> dict[str, str]:
    """One line chart per DAG: the drift share of its most drifted tasks over the last ``history`` runs."""
    charted = summary.top_drift_tasks(agg, MAX_DRIFT_CHARTS)
    hist = store.history(session, charted, dag_ids, last=history)
    drift_series: dict[str, list[tuple[str, list[float | None]]]] = {}
    for (d, t, m), rows in sorted(hist.items()):
        name = t if m < 0 else f"{t}[{m}]"
        drift_series.setdefault(d, []).append((name, [summary.drift_share(r.report) for r in rows]))
    return {
        d: charts.line_chart(series, title=f"drift share over the last {history} runs of {d}")
        for d, series in drift_series.items()
    }


def _run_page(
    request: Request,
    user: GetUserDep,
    session: SessionDep,
    dag_id: str,
    run_id: str,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=PER_PAGE_MAX)] = 50,
) -> HTMLResponse:
    _require_dag(user, dag_id)
    reports = store.run_reports(session, dag_id, run_id, page=page, per_page=per_page)
    return _render(
        request,
        "run.html",
        dag_id=dag_id,
        run_id=run_id,
        reports=reports,
        max_severity=summary.max_severity,
        severity_counts=summary.severity_counts,
    )


def _task_page(
    request: Request,
    user: GetUserDep,
    session: SessionDep,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: str = "-1",
) -> HTMLResponse:
    # the UI leaves ``{MAP_INDEX}`` unsubstituted for unmapped tasks: anything not an int means -1
    map_index_ = _map_index(map_index)
    _require_dag(user, dag_id)
    row = store.task_report(session, dag_id, run_id, task_id, map_index_)
    tables = _detail_tables(row.report) if row is not None else []
    response = _render(
        request,
        "task.html",
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=map_index_,
        row=row,
        tables=tables,
        drift_share=summary.drift_share(row.report) if row is not None else None,
        severity_counts=summary.severity_counts,
    )
    if row is None:
        response.status_code = status.HTTP_404_NOT_FOUND
    return response


def _report_json(
    user: GetUserDep, session: SessionDep, dag_id: str, run_id: str, task_id: str, map_index: int = -1
) -> JSONResponse:
    _require_dag(user, dag_id)
    row = store.task_report(session, dag_id, run_id, task_id, map_index)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no aisec report for this task instance")
    return JSONResponse(row.report)


def _prometheus(user: GetUserDep, session: SessionDep) -> Response:
    dag_ids = _readable_dag_ids(user, session)
    latest = store.latest_reports(session, dag_ids)
    body = metrics.render(latest, stored=store.count_reports(session, dag_ids))
    return Response(body, media_type=metrics.CONTENT_TYPE)


#: (path, endpoint, route name, HTML page?) — every route also requires ``AccessView.PLUGINS`` (app-wide).
_ROUTES: tuple[tuple[str, Callable[..., Any], str, bool], ...] = (
    ("/", _overview_page, "overview", True),
    ("/dags/{dag_id}/runs/{run_id}", _run_page, "run", True),
    ("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", _task_page, "task", True),
    ("/api/dags/{dag_id}/runs/{run_id}/tasks/{task_id}", _report_json, "report_json", False),
    ("/metrics", _prometheus, "metrics", False),
)


def _map_index(value: str) -> int:
    try:
        return max(int(value), -1)
    except ValueError:
        return -1


def _detail_tables(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Tables (and a bar chart of their first numeric column) from a report's ``details``.

    Any list of objects under ``details`` becomes a table (drift's per-feature results, per-class
    performance, …). A ``drifted``/``failed``/``flagged`` boolean column highlights rows.
    """
    details = report.get("details") or {}
    out: list[dict[str, Any]] = []
    if not isinstance(details, dict):
        return out
    for name, value in details.items():
        rows = _as_rows(value)
        if not rows:
            continue
        columns: list[str] = []
        for row in rows:
            for key in row:
                if key not in columns:
                    columns.append(key)
        flag = next((c for c in ("drifted", "drift", "failed", "flagged", "alert") if c in columns), None)
        label_col = columns[0]
        numeric = [
            c
            for c in columns
            if c != label_col
            and c != flag
            and all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool) for r in rows)
        ]
        preferred = next((c for c in ("statistic", "psi", "score", "distance", "ks", "p_value") if c in numeric), None)
        chart_col = preferred or (numeric[0] if numeric else None)
        chart = None
        if chart_col is not None and len(rows) <= 200:
            chart = charts.bar_chart(
                [(str(r.get(label_col)), float(r[chart_col]), bool(flag and r.get(flag))) for r in rows],
                title=f"{name}: {chart_col} per {label_col}",
            )
        out.append(
            {"name": name, "columns": columns, "rows": rows[:500], "total": len(rows), "chart": chart, "flag": flag}
        )
    return out


def _as_rows(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return [{"name": k, **v} for k, v in value.items()]
    return []
