"""Trigger for the deferrable integrity sensor: waits (in the triggerer) until paths exist.

Only existence is polled here — cheap and non-blocking (filesystem calls run in a thread); hashing
happens back on a worker, never in the triggerer's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


def _exists(path: str, conn_id: str | None) -> bool:
    """Whether ``path`` exists, read through the storage door (:mod:`airflow_aisec.hooks.storage`)."""
    from airflow_aisec.hooks.storage import StorageHook

    return StorageHook(storage_conn_id=conn_id).exists(path)


class PathsExistTrigger(BaseTrigger):
    """Fire once every path in ``paths`` exists.

    :param paths: local paths or object-storage URIs.
    :param conn_id: Airflow connection for object-storage URIs.
    :param poll_interval: seconds between checks.
    """

    def __init__(self, *, paths: list[str], conn_id: str | None = None, poll_interval: float = 30.0) -> None:
        super().__init__()
        self.paths = list(paths)
        self.conn_id = conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"paths": self.paths, "conn_id": self.conn_id, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                missing = [p for p in self.paths if not await asyncio.to_thread(_exists, p, self.conn_id)]
            except Exception as exc:  # report, don't crash the triggerer
                yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
                return
            if not missing:
                yield TriggerEvent({"status": "success", "paths": self.paths})
                return
            self.log.info("waiting for %s", ", ".join(missing))
            await asyncio.sleep(self.poll_interval)
