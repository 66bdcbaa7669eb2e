"""Run DAGs for real in tests: ``dag.test()`` against the session's SQLite metadata DB.

``dag.test()`` needs the DAG serialised in the DB; DAGs defined inside test modules are not in the
DAGs folder, so :func:`run_dag` writes them first, exactly as the dag-processor would.
"""

from __future__ import annotations

from typing import Any


def serialize_to_db(dag: Any) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.flush()
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


def run_dag(dag: Any, conf: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Serialise ``dag`` and run it once with ``dag.test()``; return the DagRun."""
    serialize_to_db(dag)
    return dag.test(run_conf=conf, **kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: (str(ti.state) if ti.state else None) for ti in dag_run.get_task_instances()}


def xcom(dag_run: Any, task_id: str, key: str = "aisec_report", map_index: int = -1) -> Any:
    """The value of an XCom written by ``task_id`` in ``dag_run`` (``None`` when absent)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
                XComModel.map_index == map_index,
            )
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def load_example_dag(dag_id: str) -> Any:
    """Import ``dags/<dag_id>.py`` as the dag-processor would and return its DAG."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def api_test_client() -> Any:
    """A context manager: FastAPI test client over a freshly built Airflow API app (core apps + plugins)."""
    from contextlib import contextmanager

    from airflow.api_fastapi.app import create_app, purge_cached_app
    from fastapi.testclient import TestClient

    @contextmanager
    def client() -> Any:
        purge_cached_app()
        try:
            with TestClient(create_app(apps="core")) as c:
                yield c
        finally:
            purge_cached_app()

    return client()


def admin_jwt() -> str:
    """A JWT for the simple auth manager's admin (the API app must exist: see :func:`api_test_client`)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
