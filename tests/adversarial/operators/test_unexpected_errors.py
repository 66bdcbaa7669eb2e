"""Every aisec operator turns an unexpected exception into an ``error`` report, never a bare traceback."""

from __future__ import annotations

import importlib
import pkgutil

import pendulum
import pytest
from airflow.sdk import DAG

import airflow_aisec.operators
import airflow_aisec.sensors
from airflow_aisec.core import integrity
from airflow_aisec.operators.base import AisecBaseOperator
from airflow_aisec.operators.integrity import ArtifactHashOperator
from tests.airflow_helpers import run_dag, task_states, xcom

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_operator_execute_is_guarded() -> None:
    for package in (airflow_aisec.operators, airflow_aisec.sensors):
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")
    classes = {c for c in _all_subclasses(AisecBaseOperator) if c.__module__.startswith("airflow_aisec.")}
    assert len(classes) >= 15
    for cls in classes:
        assert getattr(cls.execute, "_aisec_guarded", False), f"{cls.__name__}.execute is not guarded"


@pytest.mark.parametrize("exc", [ZeroDivisionError("boom\n[PASS] forged"), MemoryError(), KeyError("k")])
def test_unexpected_exception_in_a_running_task_is_an_error_report(airflow_db, tmp_path, monkeypatch, exc) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"weights")

    def explode(*args, **kwargs):
        raise exc

    monkeypatch.setattr(integrity, "hash_artifact", explode)
    with DAG(f"t_unexpected_{type(exc).__name__}", schedule=None, start_date=START) as dag:
        ArtifactHashOperator(task_id="hash", path=str(target), manifest_path=str(tmp_path / "m.json"))
    dr = run_dag(dag)
    assert task_states(dr) == {"hash": "failed"}
    report = xcom(dr, "hash")
    assert report["status"] == "error"
    assert report["check"] == "integrity"
    assert report["subject"] == str(target)
    assert f"unexpected error in ArtifactHashOperator on {target}: {type(exc).__name__}" in report["summary"]
    assert "\n" not in report["summary"]
    assert not (tmp_path / "m.json").exists()
