"""Drift operators: build a reference profile, test a window of data against it.

.. code-block:: python

    profile = ReferenceProfileOperator(
        task_id="build_profile", reference_path="s3://bucket/train.parquet", profile_path="/data/ref.prof"
    )
    drift = DriftTestOperator(
        task_id="drift",
        profile_path="/data/ref.prof",
        current_path="s3://bucket/live/{{ ds }}.parquet",
        on_drift="warn",
        outlets=[Asset("aisec://drift/model-a")],
    )
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.report import Report

CORRECTIONS = ("bh", "bonferroni", "none")


class _StorageMixin:
    """``storage_conn_id`` → readable/writable locations, through :mod:`airflow_aisec.hooks.storage`."""

    storage_conn_id: str | None

    def _storage(self, location: Any, what: str) -> Any:
        if location is None:
            return None
        from airflow_aisec.hooks.storage import resolve_storage

        return resolve_storage(str(location), self.storage_conn_id, what=what)


class ReferenceProfileOperator(_StorageMixin, AisecBaseOperator):
    """Build a reference profile from reference data and store it as one verified file.

    The report carries the profile's digest (``details.profile.digest``); it is also pushed to XCom
    under ``profile_digest`` so that a drift test can pin it (``expected_profile_digest``), and put on
    every outlet asset event.

    :param reference_path: reference data: Parquet file/directory or CSV, local path or URI. (templated)
    :param profile_path: where to write the profile (atomically). (templated)
    :param columns: profile only these columns (default: all). (templated)
    :param exact_max: numeric columns with more finite values are stored as a quantile grid.
    :param grid_size: number of grid knots (certified KS error bound about ``1 / grid_size``).
    :param max_categories: categorical columns with more distinct values are skipped.
    :param storage_conn_id: Airflow connection for object-storage paths (``s3://`` …; required for them:
        credentials are never taken from the worker's environment). (templated)
    """

    aisec_check = "drift"
    lineage_inputs = ("reference_path",)
    lineage_outputs = ("profile_path",)
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "reference_path",
        "profile_path",
        "columns",
        "storage_conn_id",
    )
    ui_color = "#e1f5fe"

    def __init__(
        self,
        *,
        reference_path: str,
        profile_path: str,
        columns: list[str] | None = None,
        exact_max: int = 2_000_000,
        grid_size: int = 16_384,
        max_categories: int = 200,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.storage_conn_id = storage_conn_id
        self.reference_path = reference_path
        self.profile_path = profile_path
        self.columns = columns
        self.exact_max = exact_max
        self.grid_size = grid_size
        self.max_categories = max_categories
        for name in ("exact_max", "grid_size", "max_categories"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2, not {value!r}")

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.drift import build_and_save_profile
        from airflow_aisec.core.drift_profile import BuildOptions

        options = BuildOptions(exact_max=self.exact_max, grid_size=self.grid_size, max_categories=self.max_categories)
        result = self.run_check(
            context,
            subject=str(self.profile_path),
            check=lambda: build_and_save_profile(
                self._storage(self.reference_path, "reference data"),
                self._storage(self.profile_path, "reference profile"),
                columns=self.columns,
                options=options,
            ),
        )
        digest = result["details"]["profile"]["digest"]
        context["ti"].xcom_push(key="profile_digest", value=digest)
        self.emit_asset_events(
            context,
            {
                "profile_path": str(self.profile_path),
                "profile_digest": digest,
                "n_features": result["metrics"]["n_features"],
                "n_rows_reference": result["metrics"]["n_rows_reference"],
            },
        )
        return result


class DriftTestOperator(_StorageMixin, AisecBaseOperator):
    """Test a window of current data for drift against a reference profile (or reference data).

    Per feature: method, statistic, p-value, corrected p-value, threshold, n, null rate and status, in
    ``details.features``; the dataset decision in ``details.dataset``; metrics ``drift_share``,
    ``n_drifted``, ``n_features``. On success every outlet asset gets an event whose metadata lists
    ``drifted_features`` and ``drift_share`` (so a DAG can be scheduled on drift).

    :param current_path: the window to test (Parquet/CSV path or URI, e.g. ``.../{{ ds }}.parquet``). (templated)
    :param profile_path: stored reference profile (from :class:`ReferenceProfileOperator`). (templated)
    :param reference_path: reference data instead of a profile (profiled in memory; slower). (templated)
    :param expected_profile_digest: refuse a profile with another digest (fail closed). (templated)
    :param columns: test only these columns (default: every profiled column). (templated)
    :param methods: per-column test override, ``{"age": "psi"}`` (ks, chi2, psi, js, wasserstein, auto).
    :param alpha: significance level of the corrected p-values. Default 0.05.
    :param correction: ``bh`` (Benjamini-Hochberg, default), ``bonferroni`` or ``none``.
    :param drift_share: dataset drift when this share of tested features drifted. Default 0.5.
    :param critical_features: any of these drifting means dataset drift. (templated)
    :param thresholds: distance thresholds for ``js`` / ``wasserstein`` (default 0.1).
    :param null_rate_tolerance: absolute null-rate change counted as drift (when significant). Default 0.05.
    :param on_drift: ``fail`` (default: the task fails), ``warn`` (report status ``warn``, task
        succeeds) or ``pass-through`` (report keeps status ``fail``, task succeeds; downstream decides).
    :param html_report_path: also write a static HTML drift report there (atomically; a local path). (templated)
    :param storage_conn_id: Airflow connection for object-storage paths (``s3://`` …; required for them:
        credentials are never taken from the worker's environment). (templated)
    :param partition: test only rows ``K/N`` of the window and write its additive statistics to
        ``partial_path`` instead of deciding (map it over the partitions with ``.expand()``, then
        :class:`DriftMergeOperator` decides; the merged result is the whole-window test). (templated)
    :param partial_path: where a partition's statistics are written (local or shared path). (templated)
    """

    aisec_check = "drift"
    lineage_inputs = ("current_path", "profile_path", "reference_path")
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "current_path",
        "profile_path",
        "reference_path",
        "expected_profile_digest",
        "columns",
        "critical_features",
        "html_report_path",
        "storage_conn_id",
        "partition",
        "partial_path",
    )
    ui_color = "#fff3e0"
    outcome_option = "on_drift"

    def __init__(
        self,
        *,
        current_path: str,
        profile_path: str | None = None,
        reference_path: str | None = None,
        expected_profile_digest: str | None = None,
        columns: list[str] | None = None,
        methods: Mapping[str, str] | None = None,
        alpha: float = 0.05,
        correction: str = "bh",
        drift_share: float = 0.5,
        critical_features: Sequence[str] = (),
        thresholds: Mapping[str, float] | None = None,
        null_rate_tolerance: float = 0.05,
        on_drift: str = "fail",
        html_report_path: str | None = None,
        storage_conn_id: str | None = None,
        partition: str | None = None,
        partial_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.storage_conn_id = storage_conn_id
        self.partition = partition
        self.partial_path = partial_path
        if (partition is None) != (partial_path is None) or (partition is not None and profile_path is None):
            raise ValueError("partition needs partial_path and profile_path (and partial_path needs partition)")
        if (profile_path is None) == (reference_path is None):
            raise ValueError("DriftTestOperator needs exactly one of profile_path or reference_path")
        self.set_outcome(on_drift)
        if correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, not {correction!r}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), not {alpha!r}")
        if not 0 < drift_share <= 1:
            raise ValueError(f"drift_share must be in (0, 1], not {drift_share!r}")
        self.current_path = current_path
        self.profile_path = profile_path
        self.reference_path = reference_path
        self.expected_profile_digest = expected_profile_digest
        self.columns = columns
        self.methods = dict(methods or {})
        self.alpha = alpha
        self.correction = correction
        self.drift_share = drift_share
        self.critical_features = critical_features
        self.thresholds = dict(thresholds or {})
        self.null_rate_tolerance = null_rate_tolerance
        self.on_drift = on_drift
        self.html_report_path = html_report_path

    def _check(self) -> Report:
        from airflow_aisec.core.drift import DriftConfig, run_drift

        if not self.current_path:
            raise AisecInputError("current_path is empty")
        html_path = None
        if self.html_report_path:  # refuse a bad destination before any work
            from airflow_aisec.utils.fs import check_output_path
            from airflow_aisec.utils.uri import local_path

            html_path = local_path(str(self.html_report_path))
            check_output_path(html_path)
        # a string stays a string so that DriftConfig refuses it (never split into characters)
        critical: Any = (
            self.critical_features if isinstance(self.critical_features, str) else tuple(self.critical_features or ())
        )
        config = DriftConfig(
            alpha=self.alpha,
            correction=self.correction,
            drift_share=self.drift_share,
            critical_features=critical,
            methods=self.methods,
            thresholds=self.thresholds,
            null_rate_tolerance=self.null_rate_tolerance,
            columns=self.columns if isinstance(self.columns, str) or self.columns is None else list(self.columns),
        )
        if self.partition:
            return self._partial(config)
        report = run_drift(
            self._storage(self.current_path, "current data"),
            profile=self._storage(self.profile_path, "reference profile"),
            reference=self._storage(self.reference_path, "reference data"),
            config=config,
            expected_digest=self.expected_profile_digest or None,
            subject=str(self.current_path),
        )
        self.soften(report)
        if html_path:
            from airflow_aisec.core.drift_html import write_html_report

            write_html_report(report.to_dict(), html_path)
        return report

    def _partial(self, config: Any) -> Report:
        """Rows ``partition`` of the window: write their statistics; the verdict comes at the merge."""
        from airflow_aisec.core.drift_partition import write_partial
        from airflow_aisec.utils.uri import local_path

        return write_partial(
            self._storage(self.current_path, "current data"),
            profile=self._storage(self.profile_path, "reference profile"),
            partition=self.partition,
            output=local_path(str(self.partial_path)),
            config=config,
            expected_digest=self.expected_profile_digest or None,
            subject=str(self.current_path),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        result = self.run_check(context, subject=str(self.current_path), check=self._check)
        if self.partition:  # no verdict yet: no asset event (the merge emits it)
            return result
        dataset = result.get("details", {}).get("dataset", {})
        self.emit_asset_events(
            context,
            {
                "status": result["status"],
                "drift": bool(dataset.get("drift", False)),
                "drift_share": dataset.get("drift_share"),
                "n_drifted": dataset.get("n_drifted"),
                "n_features": dataset.get("n_features"),
                "drifted_features": dataset.get("drifted_features", []),
                "current_path": str(self.current_path),
                "profile_digest": result.get("details", {}).get("profile", {}).get("digest"),
            },
        )
        return result


class DriftMergeOperator(AisecBaseOperator):
    """Merge the partitions' statistics of a mapped :class:`DriftTestOperator` into the window's verdict.

    The report is the whole-window drift report (same statistics, p-values and decision as testing the
    window in one task); partials that do not tile one window against one profile fail closed. Given
    the partition tasks' reports, a partial file that is not the one its task wrote (its digest differs
    from the one in the task's report: replaced on shared storage, even with a recomputed digest) fails
    closed too.

    .. code-block:: python

        parts = DriftTestOperator.partial(task_id="drift_part", profile_path=..., current_path=...).expand_kwargs(plan)
        DriftMergeOperator(task_id="drift_merge", partials=parts.output)

    :param partials: the mapped task's reports (``parts.output``) or the partials' paths. (templated)
    :param profile_path: the reference profile (default: the path the partials record). (templated)
    :param expected_profile_digest: refuse partials computed against another profile. (templated)
    :param on_drift: ``fail`` (default), ``warn`` or ``pass-through``, as for :class:`DriftTestOperator`.
    """

    aisec_check = "drift"
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "partials",
        "profile_path",
        "expected_profile_digest",
    )
    ui_color = "#fff3e0"
    outcome_option = "on_drift"

    def __init__(
        self,
        *,
        partials: Any,
        profile_path: str | None = None,
        expected_profile_digest: str | None = None,
        on_drift: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.set_outcome(on_drift)
        self.partials = partials
        self.profile_path = profile_path
        self.expected_profile_digest = expected_profile_digest
        self.on_drift = on_drift

    def _paths(self) -> list[tuple[str, str | None]]:
        """``(path, digest the partition task reported)`` per partial (``None`` for a bare path)."""
        paths: list[tuple[str, str | None]] = []
        for item in list(self.partials or []):
            digest = None
            if isinstance(item, Mapping):  # a mapped DriftTestOperator's report
                partial = (item.get("details") or {}).get("partial", {})
                item, digest = partial.get("path"), partial.get("digest")
            if not isinstance(item, str) or not item:
                raise AisecInputError(f"partials must be partial paths or partition reports, not {item!r}"[:200])
            paths.append((item, digest if isinstance(digest, str) else None))
        return paths

    def _check(self) -> Report:
        from airflow_aisec.core.drift_partition import merge_partials

        parts = self._paths()
        report = merge_partials(
            [path for path, _ in parts],
            profile=self.profile_path or None,
            expected_digest=self.expected_profile_digest or None,
            part_digests=[digest for _, digest in parts],
        )
        self.soften(report)
        return report

    def execute(self, context: Context) -> dict[str, Any]:
        result = self.run_check(context, subject=f"{self.task_id} partials", check=self._check)
        dataset = result.get("details", {}).get("dataset", {})
        self.emit_asset_events(
            context,
            {
                "status": result["status"],
                "drift": bool(dataset.get("drift", False)),
                "drift_share": dataset.get("drift_share"),
                "drifted_features": dataset.get("drifted_features", []),
                "partitions": result.get("details", {}).get("partitions"),
            },
        )
        return result
