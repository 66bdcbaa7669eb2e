"""Guarded retraining: :class:`RetrainTriggerOperator`.

Reads the aisec reports of upstream tasks (drift, performance, integrity/provenance of the live window)
from XCom, decides through the guards of :mod:`airflow_aisec.core.retrain` (provenance gate, need,
cooldown, daily cap, dry run) and, when the decision is ``triggered``, starts a run of the training DAG
with a ``conf`` that records why. Every decision — including every refusal — is a ``retrain`` report
(XCom ``aisec_report`` and return value) and an event on the outlet asset ``aisec://retrain/<dag_id>``
whose extra carries the decision; none of them fails the task.

How the run is started, and why this design survives restarts and concurrent monitors
--------------------------------------------------------------------------------------
Airflow 3 tasks have no DB access. ``TriggerDagRunOperator`` raises ``DagRunTriggerException``, and the
task runner then sends the Task SDK's ``TriggerDagRun`` message to the API server. This operator sends
that same message itself, because it must *see the answer*: the runner turns "run already exists" into
a skipped or failed task, whereas for the guard it is information (another monitor won the race).

* The trigger history lives in Airflow's **asset state store** of ``aisec://retrain/<dag_id>`` (key
  ``aisec_retrain_state``): durable in the metadata DB, shared by every monitoring DAG that targets the
  same training DAG, and readable without a DB session.
* That store has no compare-and-set, so it is only the *memory*; the *arbiter* is the metadata DB's
  unique ``(dag_id, run_id)``. The n-th retrain is always claimed under the run id
  ``aisec_retrain__<n>``: two monitors that read the same history both claim the same run id, and the
  API server creates it for exactly one of them. The loser sees ``DAGRUN_ALREADY_EXISTS``, catches up
  from the target DAG's runs (``get_dr_count`` over run ids, then ``GetDagRun`` for their
  ``run_after``), and decides again — normally ``suppressed_cooldown``.
* A monitor that dies between creating the run and writing the state is repaired the same way by the
  next decision (its claim collides), so a lost state write can never let a second retrain through.
  Manually triggered runs of the training DAG do not count against the guards (their run ids differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import REPORT_XCOM_KEY, AisecBaseOperator
from airflow_aisec.utils.values import parse_bool

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

    from airflow_aisec.core.retrain import RetrainPolicy, RetrainState
    from airflow_aisec.report import Report

#: how many times a decision is retaken after losing a claim to a concurrent monitor
MAX_CLAIM_ATTEMPTS = 3


def retrain_asset_uri(dag_id: str) -> str:
    """URI of the asset that carries the retrain decisions for ``dag_id``: ``aisec://retrain/<dag_id>``."""
    return f"aisec://retrain/{dag_id}"


def retrain_asset(dag_id: str) -> Asset:
    """The :class:`~airflow.sdk.Asset` ``aisec://retrain/<dag_id>`` (name = URI)."""
    from airflow.sdk import Asset

    uri = retrain_asset_uri(dag_id)
    return Asset(name=uri, uri=uri)


class RetrainTriggerOperator(AisecBaseOperator):
    """Decide from monitoring reports whether to retrain, through guards; trigger the training DAG if so.

    Decisions (report ``details.decision`` and the outlet asset event's ``decision``):
    ``triggered``, ``no_drift``, ``suppressed_cooldown``, ``suppressed_cap``, ``refused_provenance``.
    Reports: ``no_drift`` → ``pass``; any other decision → ``warn``. The task fails only when it cannot
    decide (a drift/performance report is ``error`` or missing and nothing else calls for retraining, a
    malformed report, an unknown target DAG).

    Give the upstream tasks ``trigger_rule="all_done"`` on this operator when an integrity task may fail
    (a tampered window): its failing report is still in XCom and becomes ``refused_provenance``.

    :param trigger_dag_id: the training DAG to trigger. Not templated: it names the outlet asset
        ``aisec://retrain/<trigger_dag_id>``, which must be known when the DAG is parsed.
    :param report_task_ids: upstream task ids whose ``aisec_report`` XCom is consumed (one id or a list).
        Reports with check ``integrity``/``provenance`` feed the provenance gate; ``drift``/``performance``
        may call for retraining; others travel as context in the run's ``conf``. (templated)
    :param min_interval: cooldown: at most one retrain of the target per this interval (``timedelta``
        or seconds; ``0`` disables). Default 6 hours.
    :param max_per_day: daily cap: at most this many retrains of the target in any rolling 24 hours
        (``None`` disables). Default 4.
    :param require_provenance: refuse when no integrity/provenance report is consumed at all. Default True.
    :param trigger_on: drift/performance report statuses that call for retraining. Default ``("fail",)``.
    :param dry_run: decide and report, start nothing, record nothing. Accepts ``"true"``/``"false"``
        strings so it can come from a param. Stored as ``retrain_dry_run`` (``BaseOperator.dry_run`` is a
        method). (templated)
    :param run_id_prefix: prefix of the run ids the guard claims (``aisec_retrain__000001``, …).
    :param note: note attached to the triggered run (templated).
    """

    aisec_check = "retrain"
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, "report_task_ids", "retrain_dry_run", "note")
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        report_task_ids: str | Sequence[str],
        min_interval: timedelta | float = timedelta(hours=6),
        max_per_day: int | None = 4,
        require_provenance: bool = True,
        trigger_on: Sequence[str] = ("fail",),
        dry_run: bool | str = False,
        run_id_prefix: str | None = None,
        note: str | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_aisec.core.retrain import RUN_ID_PREFIX, RetrainPolicy

        asset = retrain_asset(trigger_dag_id)
        outlets = list(kwargs.pop("outlets", None) or [])
        if asset not in outlets:
            outlets.append(asset)
        super().__init__(outlets=outlets, **kwargs)
        if not trigger_dag_id:
            raise ValueError("trigger_dag_id must name the DAG to trigger")
        self.trigger_dag_id = trigger_dag_id
        self.report_task_ids = report_task_ids
        seconds = min_interval.total_seconds() if isinstance(min_interval, timedelta) else float(min_interval)
        self.min_interval = seconds
        self.max_per_day = max_per_day
        self.require_provenance = require_provenance
        self.trigger_on = tuple(trigger_on)
        self.retrain_dry_run = dry_run  # not ``dry_run``: BaseOperator.dry_run() is a method
        self.run_id_prefix = run_id_prefix or RUN_ID_PREFIX
        self.note = note
        self.retrain_asset = asset
        # validate the static part of the policy now (DAG parse time), not at the first drift
        RetrainPolicy(seconds, max_per_day, require_provenance, self.trigger_on, False)

    # ------------------------------------------------------------------------------------- execute
    def execute(self, context: Context) -> dict[str, Any]:
        data = self.run_check(context, subject=self.trigger_dag_id, check=lambda: self._decide(context))
        details = data.get("details", {})
        self.emit_asset_events(
            context,
            {
                "decision": details.get("decision"),
                "dry_run": details.get("dry_run"),
                "status": data["status"],
                "summary": data["summary"][:500],
                "triggered_run_id": details.get("triggered_run_id"),
                "triggering_report_ids": details.get("triggering_report_ids", []),
            },
        )
        return data

    def _task_ids(self) -> list[str]:
        ids = [self.report_task_ids] if isinstance(self.report_task_ids, str) else list(self.report_task_ids)
        return [str(i).strip() for i in ids if str(i).strip()]

    def _policy(self) -> RetrainPolicy:
        from airflow_aisec.core.retrain import RetrainPolicy

        dry_run = parse_bool(self.retrain_dry_run, "dry_run")
        return RetrainPolicy(self.min_interval, self.max_per_day, self.require_provenance, self.trigger_on, dry_run)

    def _decide(self, context: Context) -> Report:
        from airflow_aisec.core import retrain as core
        from airflow_aisec.exceptions import AisecUndecidableError

        ti = context["ti"]
        policy = self._policy()
        pulled = {tid: ti.xcom_pull(task_ids=tid, key=REPORT_XCOM_KEY) for tid in self._task_ids()}
        reports = core.consume(pulled, dag_id=ti.dag_id, run_id=ti.run_id)
        runs = _TargetRuns(context, self.retrain_asset, self.trigger_dag_id)
        state = core.RetrainState.from_dict(runs.load_state())
        monitor = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id}

        for attempt in range(1, MAX_CLAIM_ATTEMPTS + 1):
            now = datetime.now(timezone.utc)
            decision = core.decide(reports, state, policy, now, run_id_prefix=self.run_id_prefix)
            if decision.decision != "triggered" or policy.dry_run:
                return core.build_report(
                    decision,
                    target_dag_id=self.trigger_dag_id,
                    policy=policy,
                    state=state,
                    triggered_run_id=None,
                    attempts=attempt,
                )
            if decision.run_id is None or decision.seq is None:  # pragma: no cover - decide() sets both
                raise AssertionError("a triggered decision must carry the run id to claim")
            conf = core.build_conf(decision, monitor=monitor, decided_at=now)
            if runs.trigger(decision.run_id, conf, self.note):
                self.log.info("Triggered %s run %s", self.trigger_dag_id, decision.run_id)
                state = state.recorded(core.TriggerRecord(decision.seq, decision.run_id, now), now)
                runs.save_state(state.to_dict())
                return core.build_report(
                    decision,
                    target_dag_id=self.trigger_dag_id,
                    policy=policy,
                    state=state,
                    triggered_run_id=decision.run_id,
                    conf=conf,
                    attempts=attempt,
                )
            self.log.info("Run %s of %s already exists: catching up", decision.run_id, self.trigger_dag_id)
            state = self._catch_up(runs, state, decision.seq, policy)
        raise AisecUndecidableError(
            f"could not claim a retrain run of {self.trigger_dag_id!r} in {MAX_CLAIM_ATTEMPTS} attempts"
        )

    def _catch_up(self, runs: _TargetRuns, state: RetrainState, start: int, policy: RetrainPolicy) -> RetrainState:
        """Rebuild the history from the target's runs after losing the claim of ``start``."""
        from airflow_aisec.core import retrain as core

        def count(seqs: list[int]) -> int:
            return runs.count([core.claim_run_id(s, self.run_id_prefix) for s in seqs])

        latest = core.find_latest_seq(count, start)
        keep = max(1, policy.max_per_day or 1)
        now = datetime.now(timezone.utc)
        for seq in range(max(start, latest - keep + 1), latest + 1):
            run_id = core.claim_run_id(seq, self.run_id_prefix)
            state = state.recorded(core.TriggerRecord(seq, run_id, runs.run_after(run_id)), now)
        state = core.RetrainState(seq=max(state.seq, latest), history=state.history)
        runs.save_state(state.to_dict())
        return state


class _TargetRuns:
    """The few Task SDK calls the guard needs: its state, the target's runs, triggering one.

    Everything goes through the task's supervisor (no DB access from tasks in Airflow 3).
    """

    def __init__(self, context: Context, asset: Asset, dag_id: str) -> None:
        self.context = context
        self.asset = asset
        self.dag_id = dag_id

    def _store(self) -> Any:
        stores = self.context.get("asset_state_store")
        if stores is None:
            from airflow_aisec.exceptions import AisecUndecidableError

            raise AisecUndecidableError("this Airflow has no asset state store (Airflow >= 3.3 needed)")
        return stores[self.asset]

    def load_state(self) -> dict[str, Any] | None:
        from airflow_aisec.core.retrain import STATE_KEY

        value = self._store().get(STATE_KEY)
        return value if isinstance(value, dict) else None

    def save_state(self, state: dict[str, Any]) -> None:
        from airflow_aisec.core.retrain import STATE_KEY

        self._store().set(STATE_KEY, state)

    def count(self, run_ids: list[str]) -> int:
        return int(self.context["ti"].get_dr_count(dag_id=self.dag_id, run_ids=run_ids))

    def run_after(self, run_id: str) -> datetime:
        from airflow.sdk.execution_time.comms import GetDagRun
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        response = SUPERVISOR_COMMS.send(GetDagRun(dag_id=self.dag_id, run_id=run_id))
        value = getattr(response, "run_after", None)
        if not isinstance(value, datetime):
            from airflow_aisec.exceptions import AisecUndecidableError

            raise AisecUndecidableError(f"cannot read run {run_id!r} of {self.dag_id!r}: {response!r}")
        return value

    def trigger(self, run_id: str, conf: dict[str, Any], note: str | None) -> bool:
        """Create run ``run_id`` of the target; ``False`` when that run id already exists."""
        from airflow.sdk.api.client import ServerResponseError
        from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
        from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        from airflow_aisec.exceptions import AisecInputError, AisecTransientError

        message = TriggerDagRun(dag_id=self.dag_id, run_id=run_id, conf=conf, note=note)
        try:
            response = SUPERVISOR_COMMS.send(message)
        except AirflowRuntimeError as exc:  # the supervisor relays API errors as error frames
            error: Any = exc.error
        except ServerResponseError as exc:  # in-process supervisor (dag.test) raises them directly
            error = ErrorResponse(
                error=ErrorType.API_SERVER_ERROR,
                detail={"status_code": exc.response.status_code, "detail": exc.detail},
            )
        else:
            error = response if isinstance(response, ErrorResponse) else None
        if error is None:
            return True
        if getattr(error, "error", None) == ErrorType.DAGRUN_ALREADY_EXISTS or self.count([run_id]):
            return False  # lost the claim (also a concurrent insert surfacing as a server error)
        detail = getattr(error, "detail", None) or {}
        status = detail.get("status_code") if isinstance(detail, dict) else None
        if status in (400, 404):
            raise AisecInputError(f"cannot trigger DAG {self.dag_id!r} (trigger_dag_id): {detail}")
        raise AisecTransientError(f"triggering DAG {self.dag_id!r} failed: {error}")
