"""Wait until a window of current data is large enough to test for drift."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_aisec.exceptions import AisecInputError

if TYPE_CHECKING:
    from airflow.sdk import Context


class DriftWindowSensor(BaseSensorOperator):
    """Succeed when the data at ``path`` has at least ``min_rows`` rows (a missing path counts as 0).

    A drift test on a handful of rows has no power; this sensor holds the test back until the window
    is big enough. With ``deferrable=True`` the wait happens in the triggerer
    (:class:`~airflow_aisec.triggers.drift.MinRowsTrigger`) and frees the worker slot. The XCom
    return value is the row count.

    :param path: Parquet file/directory or CSV, local path or URI. (templated)
    :param min_rows: rows to wait for (>= 1).
    :param deferrable: wait in the triggerer instead of a worker.
    :param storage_conn_id: Airflow connection for an object-storage ``path`` (``s3://`` …; required for
        it: credentials are never taken from the worker's environment). (templated)
    """

    template_fields: Sequence[str] = ("path", "storage_conn_id")
    ui_color = "#fff8e1"

    def __init__(
        self, *, path: str, min_rows: int, deferrable: bool = False, storage_conn_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.storage_conn_id = storage_conn_id
        if not isinstance(min_rows, int) or min_rows < 1:
            raise ValueError(f"min_rows must be a positive integer, not {min_rows!r}")
        self.path = path
        self.min_rows = min_rows
        self.deferrable = deferrable

    def _rows(self) -> int:
        from airflow_aisec.hooks.storage import resolve_storage
        from airflow_aisec.triggers.drift import count_rows_at

        try:  # a bad location or connection will not heal by waiting: fail now, naming it
            resolve_storage(str(self.path), self.storage_conn_id, what="data")
        except AisecInputError as exc:
            raise AirflowFailException(f"aisec: cannot wait for rows at {self.path}: {exc}") from None
        return count_rows_at(str(self.path), self.storage_conn_id)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        rows = self._rows()
        self.log.info("aisec: %s has %d row(s), need %d", self.path, rows, self.min_rows)
        return PokeReturnValue(is_done=rows >= self.min_rows, xcom_value=rows)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context=context)
        rows = self._rows()
        if rows >= self.min_rows:
            self.log.info("aisec: %s has %d row(s) already", self.path, rows)
            return rows
        from airflow_aisec.triggers.drift import MinRowsTrigger

        self.defer(
            trigger=MinRowsTrigger(
                path=str(self.path),
                min_rows=self.min_rows,
                poke_interval=self.poke_interval,
                storage_conn_id=self.storage_conn_id,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )
        return None  # pragma: no cover - defer raises

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> int:
        if not event or event.get("status") != "success":
            raise AirflowException(f"aisec: waiting for rows at {self.path} ended without success: {event}")
        return int(event["rows"])
