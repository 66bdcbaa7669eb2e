"""Trigger behind the deferrable :class:`~airflow_aisec.sensors.drift.DriftWindowSensor`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


def count_rows_at(path: str, storage_conn_id: str | None) -> int:
    """Rows at ``path`` (0 when missing), read through the storage door (:mod:`airflow_aisec.hooks.storage`).

    :raises AisecInputError: malformed or unsupported location, or object storage without a usable connection.
    """
    from airflow_aisec.core.tabular import count_rows
    from airflow_aisec.hooks.storage import resolve_storage

    return count_rows(resolve_storage(path, storage_conn_id, what="data"))


class MinRowsTrigger(BaseTrigger):
    """Fire once the data at ``path`` has at least ``min_rows`` rows (checked every ``poke_interval`` s).

    Row counting reads Parquet footers only (pyarrow) and runs in a worker thread, so the triggerer's
    event loop is never blocked. Unreadable data is retried until the sensor's timeout; the last error
    is reported in the event when the timeout fires.

    :param path: Parquet file/directory or CSV, local path or URI.
    :param min_rows: number of rows to wait for.
    :param poke_interval: seconds between checks.
    :param storage_conn_id: Airflow connection for an object-storage ``path``.
    """

    def __init__(
        self, path: str, min_rows: int, poke_interval: float = 60.0, storage_conn_id: str | None = None
    ) -> None:
        super().__init__()
        self.path = path
        self.storage_conn_id = storage_conn_id
        self.min_rows = int(min_rows)
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_aisec.triggers.drift.MinRowsTrigger",
            {
                "path": self.path,
                "min_rows": self.min_rows,
                "poke_interval": self.poke_interval,
                "storage_conn_id": self.storage_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_aisec.exceptions import AisecInputError
        from airflow_aisec.hooks.storage import resolve_storage

        try:  # a bad location or connection will not heal by waiting: say so now
            await asyncio.to_thread(resolve_storage, self.path, self.storage_conn_id, what="data")
        except AisecInputError as exc:
            yield TriggerEvent({"status": "error", "message": str(exc), "path": self.path})
            return
        while True:
            try:
                rows = await asyncio.to_thread(count_rows_at, self.path, self.storage_conn_id)
            except Exception as exc:  # unreadable for now: keep waiting, the sensor timeout bounds this
                self.log.info("aisec: cannot count rows of %s yet: %s", self.path, exc)
                rows = 0
            if rows >= self.min_rows:
                yield TriggerEvent({"status": "success", "rows": rows, "path": self.path})
                return
            self.log.info("aisec: %s has %d/%d rows; waiting %.0fs", self.path, rows, self.min_rows, self.poke_interval)
            await asyncio.sleep(self.poke_interval)
