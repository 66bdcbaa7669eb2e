"""A sensor that waits until an artifact (and its manifest) exist, then verifies it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from airflow_aisec.exceptions import AisecError, ArtifactNotReady
from airflow_aisec.operators.base import AisecBaseOperator
from airflow_aisec.operators.integrity import VerificationArgs

if TYPE_CHECKING:
    from airflow.sdk import Context


class ArtifactIntegritySensor(VerificationArgs, BaseSensorOperator, AisecBaseOperator):
    """Wait until ``path`` (and ``manifest_path`` or ``bundle_path``) exist, then verify it like
    ``ArtifactIntegrityOperator``.

    Works in ``poke`` and ``reschedule`` modes, and deferrable (``deferrable=True``: the triggerer waits
    for the files, a worker verifies). A file still being written (it changed while it was hashed:
    :class:`~airflow_aisec.exceptions.ArtifactNotReady`) keeps the sensor waiting; a mismatch or bad signature fails the task at once (fail closed) after the report is
    pushed — unless ``soft_fail`` turns that into a skip.

    Takes every argument of :class:`~airflow_aisec.operators.integrity.ArtifactIntegrityOperator`, plus
    the usual sensor arguments (``poke_interval``, ``timeout``, ``mode``, ``soft_fail`` …) and:

    :param bundle_path: an OpenSSF model-signing bundle to wait for and verify the artifact against
        (instead of ``expected_digest`` / ``manifest_path``; needs the signer's ECDSA public key). (templated)
    :param deferrable: wait in the triggerer instead of occupying a worker slot.
    """

    aisec_check = "integrity"
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, *VerificationArgs.VERIFY_TEMPLATE_FIELDS)
    ui_color = "#e1bee7"

    def __init__(
        self,
        *,
        path: str,
        expected_digest: str | None = None,
        manifest_path: str | None = None,
        bundle_path: str | None = None,
        signature_path: str | None = None,
        public_key_path: str | None = None,
        signing_conn_id: str | None = None,
        require_signature: bool | None = None,
        algorithm: str = "sha256",
        workers: int | None = None,
        follow_symlinks: bool = False,
        storage_conn_id: str | None = None,
        conn_id: str | None = None,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_verification_args(
            path=path,
            expected_digest=expected_digest,
            manifest_path=manifest_path,
            bundle_path=bundle_path,
            signature_path=signature_path,
            public_key_path=public_key_path,
            signing_conn_id=signing_conn_id,
            require_signature=require_signature,
            algorithm=algorithm,
            workers=workers,
            follow_symlinks=follow_symlinks,
            storage_conn_id=storage_conn_id,
            conn_id=conn_id,
        )
        self.deferrable = deferrable

    def _all_exist(self) -> bool:
        from airflow_aisec.triggers.integrity import _exists

        return all(_exists(p, self.storage_conn_id) for p in self.evidence_paths())

    def _verify_and_conclude(self, context: Context) -> dict[str, Any] | None:
        """Verify; ``None`` means "not ready yet" (the artifact changed while it was hashed)."""
        try:
            report = self.verify()
        except ArtifactNotReady as exc:  # by type: a path naming "changed while" is not one
            self.log.info("artifact is still being written (%s); waiting", exc)
            return None
        except AisecError as exc:
            self.fail_undecided(context, self.path, exc)
        return self.conclude(context, report)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        if not self._all_exist():
            self.log.info("waiting for %s", ", ".join(self.evidence_paths()))
            return False
        data = self._verify_and_conclude(context)
        return False if data is None else PokeReturnValue(is_done=True, xcom_value=data)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self._all_exist():
            data = self._verify_and_conclude(context)
            if data is not None:
                return data
        from airflow_aisec.triggers.integrity import PathsExistTrigger

        self.defer(
            trigger=PathsExistTrigger(
                paths=self.evidence_paths(), conn_id=self.storage_conn_id, poll_interval=self.poke_interval
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        if not event or event.get("status") != "success":
            raise AirflowFailException(f"waiting for {self.path} failed: {(event or {}).get('message', 'no event')}")
        data = self._verify_and_conclude(context)
        if data is None:
            raise AirflowFailException(f"{self.path} kept changing while it was verified")
        return data
