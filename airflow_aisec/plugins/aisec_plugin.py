"""The Airflow plugin (entry point ``airflow.plugins``: ``aisec``).

Registers, on the API server:

* a FastAPI app mounted at ``/aisec`` (see :mod:`airflow_aisec.plugins.app`), every route behind
  Airflow's own authentication;
* external views in the Airflow 3 UI: "AI Security" in the navigation (overview), a tab on each DAG
  run and on each task instance, embedding the app's pages;
* the "AI Security report" operator extra link (:class:`airflow_aisec.links.AisecReportLink`).

Importing this module stays cheap (plugins are also loaded by schedulers and task runners): the
FastAPI app is only built on its first request.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_aisec.links import AisecReportLink

MOUNT = "/aisec"


class LazyAisecApp:
    """ASGI app that builds the real FastAPI app on first use (keeps plugin import light)."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from airflow_aisec.plugins.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        return "airflow_aisec.plugins.app:create_app()"


class AisecPlugin(AirflowPlugin):
    """AI Security views, metrics endpoint and operator extra link."""

    name = "aisec"
    fastapi_apps = [{"app": LazyAisecApp(), "url_prefix": MOUNT, "name": "AI Security"}]
    external_views = [
        {
            "name": "AI Security",
            "href": f"{MOUNT}/",
            "destination": "nav",
            "url_route": "aisec",
        },
        {
            "name": "AI Security",
            "href": MOUNT + "/dags/{DAG_ID}/runs/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "aisec-run",
        },
        {
            "name": "AI Security report",
            "href": MOUNT + "/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{TASK_ID}?map_index={MAP_INDEX}",
            "destination": "task_instance",
            "url_route": "aisec-task",
        },
    ]
    operator_extra_links = [AisecReportLink()]
