"""Trigger behind the deferrable :class:`~airflow_aisec.sensors.drift.DriftWindowSensor`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class MinRowsTrigger(BaseTrigger):
    """Fire once the data at ``path`` has at least ``min_rows`` rows (checked every ``poke_interval`` s).

    Row counting reads Parquet footers only (pyarrow) and runs in a worker thread, so the triggerer's
    event loop is never blocked. Unreadable data is retried until the sensor's timeout; the last error
    is reported in the event when the timeout fires.

    :param path: Parquet file/directory or CSV, local path or URI.
    :param min_rows: number of rows to wait for.
    :param poke_interval: seconds between checks.
    """

    def __init__(self, path: str, min_rows: int, poke_interval: float = 60.0) -> None:
        super().__init__()
        self.path = path
        self.min_rows = int(min_rows)
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_aisec.triggers.drift.MinRowsTrigger",
            {"path": self.path, "min_rows": self.min_rows, "poke_interval": self.poke_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_aisec.core.tabular import count_rows

        while True:
            try:
                rows = await asyncio.to_thread(count_rows, self.path)
            except Exception as exc:  # unreadable for now: keep waiting, the sensor timeout bounds this
                self.log.info("aisec: cannot count rows of %s yet: %s", self.path, exc)
                rows = 0
            if rows >= self.min_rows:
                yield TriggerEvent({"status": "success", "rows": rows, "path": self.path})
                return
            self.log.info("aisec: %s has %d/%d rows; waiting %.0fs", self.path, rows, self.min_rows, self.poke_interval)
            await asyncio.sleep(self.poke_interval)
