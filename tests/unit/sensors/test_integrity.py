"""The integrity sensor tells "still being written" from a verdict by exception type, never by message text."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_aisec.core.hashing import ArtifactChangedError
from airflow_aisec.exceptions import AisecTransientError, AisecUndecidableError, ArtifactNotReady
from airflow_aisec.sensors.integrity import ArtifactIntegritySensor


class _TI:
    dag_id, run_id, task_id, map_index = "d", "r", "wait", -1

    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def _sensor(tmp_path, exc: Exception) -> ArtifactIntegritySensor:
    sensor = ArtifactIntegritySensor(task_id="wait", path=str(tmp_path / "a.bin"), expected_digest="0" * 64)

    def verify():
        raise exc

    sensor.verify = verify  # type: ignore[method-assign]
    return sensor


def test_changed_while_hashed_is_a_transient_not_ready_error():
    exc = ArtifactChangedError("file changed while it was being hashed: /m/a.bin")
    assert isinstance(exc, ArtifactNotReady) and isinstance(exc, AisecTransientError)
    assert isinstance(exc, AisecUndecidableError)  # per-file changes are still recorded like unreadable files
    assert exc.retryable


@pytest.mark.parametrize("exc", [ArtifactNotReady("still uploading"), ArtifactChangedError("object changed")])
def test_not_ready_keeps_the_sensor_waiting(tmp_path, exc):
    ti = _TI()
    assert _sensor(tmp_path, exc)._verify_and_conclude({"ti": ti}) is None
    assert ti.pushed == {}  # no verdict published while waiting


def test_message_text_does_not_make_an_error_wait(tmp_path):
    """A path that happens to say "changed while it was being hashed" is an error like any other."""
    ti = _TI()
    exc = AisecUndecidableError("file not found: /m/changed while it was being hashed")
    with pytest.raises(AirflowFailException, match="file not found"):
        _sensor(tmp_path, exc)._verify_and_conclude({"ti": ti})
    assert ti.pushed["aisec_report"]["status"] == "error"


def test_not_ready_after_the_trigger_fired_fails_closed(tmp_path):
    sensor = _sensor(tmp_path, ArtifactNotReady("still uploading"))
    with pytest.raises(AirflowFailException, match="kept changing while it was verified"):
        sensor.execute_complete({"ti": _TI()}, {"status": "success"})
