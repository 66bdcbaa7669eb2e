"""MinRowsTrigger: serialisation round trip and a real run against files on disk."""

from __future__ import annotations

import asyncio

import pandas as pd

from airflow_aisec.triggers.drift import MinRowsTrigger


def test_serialize_covers_every_constructor_argument():
    trigger = MinRowsTrigger(path="/data/w.parquet", min_rows=10, poke_interval=2.5, storage_conn_id="aws_data")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_aisec.triggers.drift.MinRowsTrigger"
    assert kwargs == {"path": "/data/w.parquet", "min_rows": 10, "poke_interval": 2.5, "storage_conn_id": "aws_data"}
    clone = MinRowsTrigger(**kwargs)
    assert clone.serialize() == trigger.serialize()


def test_fires_once_enough_rows_exist(tmp_path):
    path = tmp_path / "w.parquet"

    async def scenario():
        trigger = MinRowsTrigger(path=str(path), min_rows=5, poke_interval=0.05)
        gen = trigger.run()
        task = asyncio.ensure_future(gen.__anext__())
        await asyncio.sleep(0.2)
        assert not task.done()  # nothing there yet: keeps waiting
        pd.DataFrame({"x": range(3)}).to_parquet(path)
        await asyncio.sleep(0.2)
        assert not task.done()  # 3 < 5
        pd.DataFrame({"x": range(8)}).to_parquet(path)
        event = await asyncio.wait_for(task, 5)
        await gen.aclose()
        return event

    event = asyncio.run(scenario())
    assert event.payload == {"status": "success", "rows": 8, "path": str(path)}


def test_object_storage_without_a_connection_is_an_error_event_at_once(monkeypatch):
    """A missing connection will not appear by waiting: no silent poll until the timeout."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ambient")  # never used

    async def scenario():
        gen = MinRowsTrigger(path="s3://bucket/w.parquet", min_rows=1, poke_interval=0.05).run()
        event = await asyncio.wait_for(gen.__anext__(), 30)
        await gen.aclose()
        return event

    event = asyncio.run(scenario())
    assert event.payload["status"] == "error"
    assert "is object storage: give storage_conn_id" in event.payload["message"]
