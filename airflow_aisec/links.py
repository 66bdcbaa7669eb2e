"""Operator extra link from every aisec task instance to its report page in the AI Security view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

#: where :class:`airflow_aisec.plugins.aisec_plugin.AisecPlugin` mounts its app.
MOUNT = "/aisec"


def report_url(dag_id: str, run_id: str, task_id: str, map_index: int = -1, *, base_url: str = "") -> str:
    """URL of the report page of one task instance (``base_url`` = Airflow's ``[api] base_url``)."""
    url = (
        f"{base_url.rstrip('/')}{MOUNT}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
        f"/tasks/{quote(task_id, safe='')}"
    )
    return url + (f"?map_index={map_index}" if map_index >= 0 else "")


def _base_url() -> str:
    try:
        from airflow.sdk.configuration import conf

        return str(conf.get("api", "base_url", fallback="") or "")
    except Exception:  # pragma: no cover - configuration unavailable: a relative link still works
        return ""


class AisecReportLink(BaseOperatorLink):
    """ "AI Security report": opens the task instance's aisec report (findings, details, charts).

    The link is computed when the task finishes (Airflow 3 stores extra links in XCom), relative to
    ``[api] base_url`` when it is set, else as a path on the same host.
    """

    name = "AI Security report"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return report_url(
            ti_key.dag_id, ti_key.run_id, ti_key.task_id, getattr(ti_key, "map_index", -1), base_url=_base_url()
        )
