"""/aisec authorisation: one rule (XCom read on the DAG) on every route; unknown means deny.

Real API server app, real DB with real runs. The auth manager is replaced, method by method, by fakes:

* ``dag-read-only``: DAG read on every DAG (``get_authorized_dag_ids`` lists them all), XCom read only
  on ``aisec_adv_open``: reports of every other DAG must stay invisible everywhere;
* ``raises``/``not-implemented``/``non-bool``: the auth manager cannot answer: nothing is shown.

Each case asserts the status code and that no report data of an unauthorised DAG is in the body.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.airflow_helpers import admin_jwt, api_test_client, run_dag

UI_DAG_FILE = Path(__file__).resolve().parents[2] / "integration" / "ui_dags" / "aisec_ui_demo.py"
OPEN = "aisec_adv_open"
SECRET = "aisec_adv_secret"
#: text that only unauthorised DAGs' reports contain (this module's secret DAG; the UI demo DAG of
#: other tests, when in the same DB, is unauthorised as well)
SECRET_MARKERS = (
    SECRET,
    "aisec_ui_demo",
    "PYSEC-2018-28",
    "GHSA-x84v-xcm2-53pg",
    "weights.bin",
    "check_vulns",
    "check_integrity",
)


def _ui_module() -> Any:
    spec = importlib.util.spec_from_file_location("aisec_ui_demo_dag_adv", UI_DAG_FILE)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(airflow_db):
    from airflow.sdk import dag

    module = _ui_module()

    @dag(dag_id=OPEN, schedule=None, catchup=False)
    def open_dag() -> None:
        module.FabricatedCheckOperator(task_id="open_latency", check="inference_audit", scenario="latency")

    @dag(dag_id=SECRET, schedule=None, catchup=False)
    def secret_dag() -> None:
        module.FabricatedCheckOperator(task_id="check_vulns", check="dependency_audit", scenario="vulns")
        module.FabricatedCheckOperator(task_id="check_integrity", check="integrity", scenario="integrity")

    secret = run_dag(secret_dag())
    opened = run_dag(open_dag())
    return secret, opened


@pytest.fixture(scope="module")
def client(runs):
    with api_test_client() as c:
        yield c


@pytest.fixture(scope="module")
def auth(client):
    return {"Authorization": f"Bearer {admin_jwt()}"}


# ----------------------------------------------------------------------------- fake auth managers
def _all_dag_ids() -> set[str]:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return {d for (d,) in session.query(DagModel.dag_id)}


def _dag_read_only(*, method: str, user: Any, access_entity: Any = None, details: Any = None) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    if method != "GET":
        return False
    if access_entity is None:
        return True  # DAG read everywhere
    return access_entity == DagAccessEntity.XCOM and details is not None and details.id == OPEN


def _raises(exc: type[Exception]):
    def fake(**kwargs: Any) -> bool:
        raise exc("auth backend unavailable")

    return fake


FAKES = {
    "dag-read-only": _dag_read_only,
    "not-implemented": _raises(NotImplementedError),
    "raises": _raises(RuntimeError),
    "non-bool": lambda **kw: "yes",
    "none": lambda **kw: None,
}


@pytest.fixture(params=sorted(FAKES))
def fake(request, client, monkeypatch):
    from airflow.api_fastapi.app import get_auth_manager

    am = get_auth_manager()
    monkeypatch.setattr(am, "is_authorized_dag", FAKES[request.param])
    # a rule based on DAG read would see every DAG: make that path available, and wrong
    monkeypatch.setattr(am, "get_authorized_dag_ids", lambda **kw: _all_dag_ids())
    monkeypatch.setattr(am, "filter_authorized_dag_ids", lambda *, dag_ids, **kw: set(dag_ids))
    monkeypatch.setattr(am, "batch_is_authorized_dag", lambda *a, **kw: True)
    return request.param


def _assert_no_secret(body: str) -> None:
    leaked = [m for m in SECRET_MARKERS if m in body]
    assert leaked == [], f"report data of an unauthorised DAG leaked: {leaked}"


def _run_path(dag_run) -> str:
    return f"/aisec/dags/{dag_run.dag_id}/runs/{quote(dag_run.run_id, safe='')}"


# ----------------------------------------------------------------------------- every route
def test_overview_shows_only_authorised_dags(client, auth, runs, fake, caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_aisec.plugins.app"):
        for url in ("/aisec/", f"/aisec/?dag_id={SECRET}", "/aisec/?history=2", f"/aisec/?dag_id={OPEN}"):
            r = client.get(url, headers=auth)
            assert r.status_code == 200
            _assert_no_secret(r.text.replace(f"in DAG <code>{SECRET}</code>", ""))  # the filter is echoed
            if fake == "dag-read-only" and f"dag_id={SECRET}" not in url:
                assert "open_latency" in r.text
            else:
                assert "open_latency" not in r.text
    if fake in ("not-implemented", "raises"):
        assert "authorisation check failed" in caplog.text
        assert "auth backend unavailable" not in caplog.text


def test_metrics_only_carry_authorised_dags(client, auth, runs, fake):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    r = client.get("/aisec/metrics", headers=auth)
    assert r.status_code == 200
    _assert_no_secret(r.text)
    labelled = set(re.findall(r'dag_id="([^"]*)"', r.text))
    stored = int(re.search(r"^aisec_reports_stored (\d+)$", r.text, re.M).group(1))
    if fake == "dag-read-only":
        with create_session() as session:
            n_open = session.query(XComModel).filter_by(dag_id=OPEN, key="aisec_report").count()
        assert labelled == {OPEN}
        assert stored == n_open >= 1
    else:
        assert labelled == set()
        assert stored == 0


def test_detail_routes_of_an_unauthorised_dag_are_403(client, auth, runs, fake):
    secret, opened = runs
    urls = [
        _run_path(secret),
        f"{_run_path(secret)}/tasks/check_vulns",
        f"{_run_path(secret)}/tasks/check_vulns?map_index=-1",
        f"/aisec/api/dags/{SECRET}/runs/{quote(secret.run_id, safe='')}/tasks/check_vulns",
    ]
    for url in urls:
        r = client.get(url, headers=auth)
        assert r.status_code == 403, url
        _assert_no_secret(r.text)
    open_urls = [
        _run_path(opened),
        f"{_run_path(opened)}/tasks/open_latency",
        f"/aisec/api/dags/{OPEN}/runs/{quote(opened.run_id, safe='')}/tasks/open_latency",
    ]
    for url in open_urls:
        r = client.get(url, headers=auth)
        assert r.status_code == (200 if fake == "dag-read-only" else 403), url
        _assert_no_secret(r.text)


NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\?#%"), min_size=1, max_size=24
).filter(lambda s: s.strip() not in ("", ".", "..") and s != OPEN)


@settings(max_examples=30)
@given(dag_id=NAME, run_id=NAME, task_id=NAME, route=st.sampled_from(["run", "task", "json"]))
def test_any_unauthorised_dag_id_is_403_on_every_detail_route(client, auth, runs, dag_id, run_id, task_id, route):
    from airflow.api_fastapi.app import get_auth_manager

    am = get_auth_manager()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(am, "is_authorized_dag", _dag_read_only)
        mp.setattr(am, "get_authorized_dag_ids", lambda **kw: _all_dag_ids())
        base = f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
        url = {
            "run": f"/aisec{base}",
            "task": f"/aisec{base}/tasks/{quote(task_id, safe='')}",
            "json": f"/aisec/api{base}/tasks/{quote(task_id, safe='')}",
        }[route]
        r = client.get(url, headers=auth)
    assert r.status_code == 403
    _assert_no_secret(r.text.replace(quote(dag_id, safe=""), ""))


def test_report_dag_ids_is_the_single_rule(runs, client, monkeypatch):
    """The rule function itself: XCom entity, the DAG's id, exact True only; exceptions deny all."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    from airflow_aisec.plugins import app

    am = get_auth_manager()
    calls: list[tuple[str, Any, str]] = []

    def record(*, method, user, access_entity=None, details=None):
        calls.append((method, access_entity, details.id))
        return details.id == OPEN

    monkeypatch.setattr(am, "is_authorized_dag", record)
    assert app.report_dag_ids(object(), {OPEN, SECRET, "ghost"}) == {OPEN}
    assert sorted(calls) == sorted(("GET", DagAccessEntity.XCOM, d) for d in (OPEN, SECRET, "ghost"))
    assert app.report_dag_ids(object(), set()) == set()

    def flaky(*, details, **kw):
        if details.id == SECRET:
            raise PermissionError("backend down")
        return True

    monkeypatch.setattr(am, "is_authorized_dag", flaky)
    assert app.report_dag_ids(object(), {OPEN, SECRET}) == set()


_ANSWERS = st.sampled_from([True, False, None, 1, "yes", "True", [True], NotImplementedError, KeyError])


@settings(max_examples=60)
@given(answers=st.dictionaries(st.sampled_from([OPEN, SECRET, "a", "b", "c", "ghost"]), _ANSWERS, max_size=6))
def test_only_an_exact_true_authorises_and_any_error_denies_all(client, answers):
    from airflow.api_fastapi.app import get_auth_manager

    from airflow_aisec.plugins import app

    def answer(*, details, **kw):
        value = answers[details.id]
        if isinstance(value, type):
            raise value("no")
        return value

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(get_auth_manager(), "is_authorized_dag", answer)
        got = app.report_dag_ids(object(), set(answers))
    if any(isinstance(v, type) for v in answers.values()):
        assert got == set()
    else:
        assert got == {d for d, v in answers.items() if v is True}
