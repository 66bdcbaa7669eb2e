"""Data drift: compare a current window with a reference profile, feature by feature, and decide.

Per feature (column) a test is chosen automatically, overridable per column with ``methods``:

* continuous numeric → two-sample **Kolmogorov-Smirnov** at every size (exact from the sorted
  reference, p-values identical to ``scipy.stats.ks_2samp``; :mod:`airflow_aisec.core.stats`);
* low-cardinality integers, booleans, strings, dictionaries → **chi-square** (new categories are
  reported, never a crash); constant reference columns → chi-square on value-vs-other;
* ``psi`` (decile bins, size-aware p-value), ``js`` (Jensen-Shannon distance, base 2, threshold) and
  ``wasserstein`` (W1 / reference std, threshold) can be chosen per column; all of them are reported
  as effect sizes beside the chosen test.

Decision: p-values corrected across features (Benjamini-Hochberg by default, Bonferroni, none); a
feature drifts when its corrected p-value is below ``alpha`` (distance methods: statistic >= threshold)
or its null rate moved by more than ``null_rate_tolerance`` (two-proportion test significant). The
dataset drifts when the share of drifted features >= ``drift_share`` or a ``critical_features`` member
drifted. Report status: ``fail`` on dataset drift, ``warn`` when some features drift, else ``pass``.

Bad columns never crash the run: empty, all-null, constant, datetime, mixed-type, unsupported or
high-cardinality columns get a per-feature status (``skipped`` / ``derived``) and a reason; expected
columns missing from the window are ``missing`` (counted as drifted, high finding); an empty window is
an error (:class:`AisecUndecidableError`), not "no drift".

Length (~680 lines, over the package's ~600 target): the per-feature evaluation, the dataset rule and
the report builders share one configuration and the check's tags; moving ``profile_to_report`` and
``build_and_save_profile`` out would create an import cycle through those tags. Every function stays short.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airflow_aisec.core import stats
from airflow_aisec.core.drift_profile import (
    BuildOptions,
    ColumnProfile,
    Profile,
    build_profile,
    category_counts,
    classify,
    open_profile,
    positive_zeros,
    profile_column,
    sorted_finite,
    to_float64,
)
from airflow_aisec.core.tabular import ColumnSource, open_source
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report
from airflow_aisec.utils.cpus import available_cpus
from airflow_aisec.utils.progress import Progress

log = logging.getLogger(__name__)

METHODS = ("auto", "ks", "chi2", "psi", "js", "wasserstein")
CORRECTIONS = ("bh", "bonferroni", "none")
TAGS = ("OWASP-ML08", "OWASP-ML02", "AML.T0059")
DEFAULT_THRESHOLDS = {"js": 0.1, "wasserstein": 0.1}


@dataclass
class DriftConfig:
    """Thresholds and rules of a drift test (validated on construction).

    :param alpha: significance level applied to corrected p-values.
    :param correction: ``bh`` (Benjamini-Hochberg), ``bonferroni`` or ``none``.
    :param drift_share: dataset drifts when drifted / tested features >= this share (0 < x <= 1).
    :param critical_features: any drifted one of these means dataset drift.
    :param methods: per-column test override (``ks``, ``chi2``, ``psi``, ``js``, ``wasserstein``, ``auto``).
    :param thresholds: distance thresholds for ``js`` / ``wasserstein`` (defaults 0.1).
    :param null_rate_tolerance: absolute change of the null rate that counts as drift (when significant).
    :param columns: restrict the test to these columns (default: every profiled column).
    """

    alpha: float = 0.05
    correction: str = "bh"
    drift_share: float = 0.5
    critical_features: tuple[str, ...] = ()
    methods: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    null_rate_tolerance: float = 0.05
    columns: list[str] | None = None

    def __post_init__(self) -> None:
        if not (0 < float(self.alpha) < 1):
            raise AisecInputError(f"alpha must be in (0, 1), not {self.alpha!r}")
        if self.correction not in CORRECTIONS:
            raise AisecInputError(f"correction must be one of {CORRECTIONS}, not {self.correction!r}")
        if not (0 < float(self.drift_share) <= 1):
            raise AisecInputError(f"drift_share must be in (0, 1], not {self.drift_share!r}")
        if not (0 <= float(self.null_rate_tolerance) <= 1):
            raise AisecInputError(f"null_rate_tolerance must be in [0, 1], not {self.null_rate_tolerance!r}")
        bad = {c: m for c, m in self.methods.items() if m not in METHODS}
        if bad:
            raise AisecInputError(f"methods {bad} not in {METHODS}")
        unknown = set(self.thresholds) - set(DEFAULT_THRESHOLDS)
        if unknown:
            raise AisecInputError(f"thresholds only apply to {sorted(DEFAULT_THRESHOLDS)}, not {sorted(unknown)}")
        for option in ("critical_features", "columns"):
            value = getattr(self, option)
            if isinstance(value, (str, bytes)):  # "income" would otherwise become ("i", "n", ...)
                raise AisecInputError(f"{option} takes a list of column names, not the string {value!r}")
            if value is not None and not all(isinstance(c, str) and c for c in value):
                raise AisecInputError(f"{option} must be a list of non-empty column names, not {value!r}")
            if value is not None and len(set(value)) != len(list(value)):  # a repeated column would weigh twice
                raise AisecInputError(f"{option} lists a column more than once: {list(value)!r}")
        self.critical_features = tuple(self.critical_features)
        for key, value in self.thresholds.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < float(value) < math.inf:
                raise AisecInputError(f"threshold {key!r} must be a positive finite number, not {value!r}")
        self.thresholds = {**DEFAULT_THRESHOLDS, **{k: float(v) for k, v in self.thresholds.items()}}

    def check_names(self, tested: list[str], available: list[str], where: str) -> None:
        """Every column an option names must exist: an unknown name is an error, never a silent no-op.

        ``tested``: the columns this run tests; ``available``: every column of the reference.
        """
        known = set(available)
        if self.columns is not None:
            unknown = [c for c in self.columns if c not in known]
            if unknown:
                raise AisecInputError(f"columns {unknown} are not in the {where}")
            if not self.columns:
                raise AisecInputError("columns is an empty list: nothing would be tested")
        selected = set(tested)
        for option, names in (("critical_features", self.critical_features), ("methods", list(self.methods))):
            unknown = [c for c in names if c not in known]
            if unknown:
                raise AisecInputError(f"{option} name(s) {unknown} are not columns of the {where}")
            unselected = [c for c in names if c not in selected]
            if unselected:
                raise AisecInputError(f"{option} name(s) {unselected} are not among the tested columns {self.columns}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "correction": self.correction,
            "drift_share": self.drift_share,
            "critical_features": list(self.critical_features),
            "methods": dict(self.methods),
            "thresholds": dict(self.thresholds),
            "null_rate_tolerance": self.null_rate_tolerance,
        }


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# --------------------------------------------------------------------------------------------- one feature
def _null_signal(ref: ColumnProfile, n_missing_cur: int, n_cur_rows: int, tol: float, alpha: float) -> dict[str, Any]:
    ref_rows = int(ref.meta.get("n_rows", 0))
    ref_missing = int(ref.meta.get("n_null", 0)) + int(ref.meta.get("n_posinf", 0)) + int(ref.meta.get("n_neginf", 0))
    r_rate = ref_missing / ref_rows if ref_rows else 0.0
    c_rate = n_missing_cur / n_cur_rows if n_cur_rows else 0.0
    p = stats.two_proportion_pvalue(ref_missing, ref_rows, n_missing_cur, n_cur_rows)
    return {
        "null_rate_reference": r_rate,
        "null_rate": c_rate,
        "null_rate_change": c_rate - r_rate,
        "null_rate_p_value": p,
        "null_rate_drift": bool(abs(c_rate - r_rate) > tol and p < alpha),
    }


def _numeric_result(ref: ColumnProfile, values: np.ndarray, method: str, config: DriftConfig) -> dict[str, Any]:
    meta = ref.meta
    n_rows = int(values.size)
    finite, _, n_posinf, n_neginf = sorted_finite(values)
    positive_zeros(finite)
    inf_count = n_posinf + n_neginf
    n_nonfinite = n_rows - int(finite.size)
    res: dict[str, Any] = {"n": int(finite.size), "n_rows": n_rows, "n_reference": int(meta["n_values"])}
    res.update(_null_signal(ref, n_nonfinite, n_rows, config.null_rate_tolerance, config.alpha))
    res["inf_count"] = inf_count
    if finite.size == 0:
        res.update(status="skipped", reason="no finite values in current window", method=method, empty_window=True)
        return res
    n = int(meta["n_values"])
    # effect sizes: PSI + JS on reference deciles, normalised Wasserstein on quantiles
    edges = np.asarray(meta["bin_edges"], dtype=float)
    ref_bins = np.asarray(meta["bin_counts"], dtype=float)
    cur_bins = np.diff(np.concatenate(([0], np.searchsorted(finite, edges, "right"), [finite.size]))).astype(float)
    psi, psi_p = stats.psi_from_counts(ref_bins, cur_bins)
    effects: dict[str, Any] = {
        "psi": psi,
        "psi_p_value": psi_p,
        "js": stats.js_distance(ref_bins, cur_bins),
        "wasserstein_norm": stats.wasserstein_normalised(ref.arrays["quantiles"], finite, meta.get("std") or 0.0),
        "mean_reference": meta.get("mean"),
        "mean": float(finite.mean()),
    }
    res["effect_sizes"] = effects
    res["method"] = method
    res["histogram"] = {
        "edges": [float(e) for e in edges],
        "reference": (ref_bins / max(ref_bins.sum(), 1)).tolist(),
        "current": (cur_bins / max(cur_bins.sum(), 1)).tolist(),
    }
    if method == "ks":
        if meta.get("storage") == "grid":
            d_est, d_lo, d_hi = stats.ks_from_grid(ref.arrays["knots"], ref.arrays["lt"], ref.arrays["le"], n, finite)
            d, p, mode = stats.ks_pvalue(d_est, n, int(finite.size))
            p_hi = stats.ks_pvalue(d_lo, n, int(finite.size))[1]
            p_lo = stats.ks_pvalue(d_hi, n, int(finite.size))[1]
            res.update(statistic_bounds=[d_lo, d_hi], p_value_bounds=[p_lo, p_hi], ks_mode=f"{mode}+grid")
        else:
            d, p, mode = stats.ks_pvalue(stats.ks_statistic_sorted(ref.arrays["values"], finite), n, int(finite.size))
            res["ks_mode"] = mode
        res.update(statistic=d, p_value=p)
        effects["ks"] = d
    elif method == "chi2":
        counts = meta.get("value_counts")
        if counts is None:
            res.update(status="skipped", reason="chi2 needs a discrete reference (too many distinct values)")
            return res
        if meta.get("constant"):
            (key,) = counts
            value = float(key)
            same = int((finite == value).sum())
            cur_counts = {key: same, "other": int(finite.size) - same}
        else:
            uniq, cnt = np.unique(finite, return_counts=True)
            cur_counts = {repr(float(u)): int(c) for u, c in zip(uniq, cnt, strict=True)}
        chi2_result(res, counts, cur_counts)
    else:
        effect_result(res, method, psi, psi_p, effects)
    return res


def chi2_result(res: dict[str, Any], ref_counts: dict[str, int], cur_counts: dict[str, int]) -> None:
    """Put the chi-square test of ``cur_counts`` against ``ref_counts`` (and new categories) into ``res``."""
    out = stats.chi2_from_counts(ref_counts, cur_counts)
    res.update(statistic=out["statistic"], p_value=out["p_value"])
    if out["new"]:
        res["new_categories"] = out["new"][:20]
        res["n_new_categories"] = len(out["new"])


def effect_result(res: dict[str, Any], method: str, psi: float, psi_p: float, effects: dict[str, Any]) -> None:
    """The statistic of an effect-size method (``psi``, ``js``, ``wasserstein``) into ``res``."""
    if method == "psi":
        res.update(statistic=psi, p_value=psi_p)
    elif method == "js":
        res.update(statistic=effects["js"], p_value=None)
    elif method == "wasserstein":
        res.update(statistic=effects["wasserstein_norm"], p_value=None)


def _categorical_result(ref: ColumnProfile, column: Any, method: str, config: DriftConfig) -> dict[str, Any]:
    counts, n_null = category_counts(column)
    return categorical_from_counts(ref, counts, n_null, len(column), method, config)


def categorical_from_counts(
    ref: ColumnProfile, counts: dict[str, int], n_null: int, n_rows: int, method: str, config: DriftConfig
) -> dict[str, Any]:
    """A categorical feature's result from the window's category counts (additive over partitions)."""
    res: dict[str, Any] = {"n": n_rows - n_null, "n_rows": n_rows, "n_reference": int(ref.meta["n_values"])}
    res.update(_null_signal(ref, n_null, n_rows, config.null_rate_tolerance, config.alpha))
    res["method"] = method
    if not counts:
        res.update(status="skipped", reason="no non-null values in current window", empty_window=True)
        return res
    out = stats.chi2_from_counts(ref.meta["counts"], counts)
    ref_total = max(sum(ref.meta["counts"].values()), 1)
    cur_total = max(sum(counts.values()), 1)
    top = sorted(
        set(ref.meta["counts"]) | set(counts), key=lambda k: -(ref.meta["counts"].get(k, 0) + counts.get(k, 0))
    )
    res["histogram"] = {
        "categories": top[:15],
        "reference": [ref.meta["counts"].get(k, 0) / ref_total for k in top[:15]],
        "current": [counts.get(k, 0) / cur_total for k in top[:15]],
    }
    res["effect_sizes"] = {"psi": out["psi"], "psi_p_value": out["psi_p_value"], "js": out["js"]}
    if out["new"]:
        res["new_categories"] = out["new"][:20]
        res["n_new_categories"] = len(out["new"])
    if method == "chi2":
        res.update(statistic=out["statistic"], p_value=out["p_value"])
    elif method == "psi":
        res.update(statistic=out["psi"], p_value=out["psi_p_value"])
    elif method == "js":
        res.update(statistic=out["js"], p_value=None)
    return res


def feature_base(ref: ColumnProfile) -> dict[str, Any]:
    """The fields every feature result starts with."""
    return {
        "name": ref.name,
        "kind": ref.meta.get("kind"),
        "family": ref.meta.get("family"),
        "statistic": None,
        "p_value": None,
        "p_corrected": None,
        "threshold": None,
        "reason": ref.meta.get("reason", ""),
    }


def feature_method(
    ref: ColumnProfile, source: ColumnSource, config: DriftConfig
) -> tuple[dict[str, Any] | None, str, str]:
    """``(final result, "", "")`` when the feature cannot be tested (missing, skipped, retyped), else
    ``(None, method, current kind)``. Raises :class:`AisecInputError` for a method that does not apply."""
    name, base = ref.name, feature_base(ref)
    if name not in source.columns:
        return {**base, "status": "missing", "reason": "expected column missing from the current window"}, "", ""
    cur_kind, cur_family = classify(source.schema.field(name).type)
    if ref.kind == "skipped":
        return {**base, "status": "skipped", "method": None}, "", ""
    ref_family = ref.meta.get("family")
    # within "numeric", integer/float/decimal compare as numbers; a time (timestamp/date/time/duration)
    # is not a number of the same meaning (and cannot be cast to one): either side being one is a change
    time_changed = cur_kind == ref.kind == "numeric" and (cur_family == "datetime") != (ref_family == "datetime")
    if time_changed or (cur_kind != ref.kind and not (cur_kind == "skipped" and cur_family == "null")):
        changed = {
            **base,
            "status": "type_changed",
            "method": None,
            "reason": f"type changed: reference {ref.meta.get('family')}, current {cur_family}",
        }
        return changed, "", ""
    requested = config.methods.get(name, "auto")
    method = ref.meta["method"] if requested == "auto" else requested
    allowed = ("ks", "chi2", "psi", "js", "wasserstein") if ref.kind == "numeric" else ("chi2", "psi", "js")
    if method not in allowed:
        raise AisecInputError(f"method {method!r} does not apply to {ref.kind} column {name!r} (use {allowed})")
    return None, method, cur_kind


def finish_feature(
    ref: ColumnProfile, res: dict[str, Any], method: str, config: DriftConfig, coerced: str | None
) -> dict[str, Any]:
    """Complete a tested feature's result: status, derived reason, threshold."""
    out = {**feature_base(ref), **res}
    out.setdefault("status", ref.meta.get("status", "ok"))
    if coerced and out["status"] == "ok":
        out.update(status="derived", reason=coerced)
    if method in DEFAULT_THRESHOLDS:
        out["threshold"] = config.thresholds[method]
    elif out["status"] in ("ok", "derived"):
        out["threshold"] = config.alpha
    return out


def evaluate_feature(ref: ColumnProfile, source: ColumnSource, config: DriftConfig) -> dict[str, Any]:
    """Test one feature of ``source`` against its reference profile; never raises for bad data."""
    name = ref.name
    early, method, cur_kind = feature_method(ref, source, config)
    if early is not None:
        return early
    column = source.read_column(name)
    if ref.kind == "numeric":
        values = to_float64(column, ref.meta["family"]) if cur_kind != "skipped" else np.full(len(column), np.nan)
        del column
        res = _numeric_result(ref, values, method, config)
    else:
        res = _categorical_result(ref, column, method, config)
    return finish_feature(ref, res, method, config, source.coerced.get(name))


# --------------------------------------------------------------------------------------------- decision
def decide(features: list[dict[str, Any]], config: DriftConfig) -> dict[str, Any]:
    """Correct p-values, mark drifted features and take the dataset decision (mutates ``features``)."""
    tested = [f for f in features if f["status"] in ("ok", "derived") and f.get("statistic") is not None]
    with_p = [f for f in tested if f.get("p_value") is not None]
    for f, pc in zip(with_p, stats.adjust_pvalues([f["p_value"] for f in with_p], config.correction), strict=True):
        f["p_corrected"] = pc
    tested_ids = {id(f) for f in tested}
    for f in features:
        reasons = []
        if id(f) in tested_ids:
            if f.get("p_value") is not None:
                if f["p_corrected"] < config.alpha:
                    reasons.append(f"{f['method']} p_corrected={f['p_corrected']:.3g} < {config.alpha}")
            elif f["statistic"] is not None and f["statistic"] >= f["threshold"]:
                reasons.append(f"{f['method']}={f['statistic']:.3g} >= {f['threshold']}")
            if f.get("p_value_bounds") and f.get("p_value") is not None:
                lo, hi = f["p_value_bounds"]
                f["borderline"] = bool(lo < config.alpha <= hi) if config.correction == "none" else None
        if f.get("null_rate_drift"):
            reasons.append(f"null rate {f['null_rate_reference']:.3g} → {f['null_rate']:.3g}")
        if f["status"] in ("missing", "type_changed"):
            reasons.append(f["reason"])
        elif f.get("empty_window"):  # profiled in the reference, nothing left to test in the window
            reasons.append("no testable values in the current window")
        f["drifted"] = bool(reasons)
        f["drift_reasons"] = reasons
        if f["drifted"] and f["status"] in ("ok", "derived"):
            f["status"] = "drifted"
    counted = [f for f in features if f["status"] not in ("skipped",) or f.get("drifted")]
    drifted = [f["name"] for f in features if f["drifted"]]
    share = len(drifted) / len(counted) if counted else 0.0
    critical = [name for name in drifted if name in config.critical_features]
    # the window does not match the reference schema: a missing, retyped or empty expected column is
    # dataset drift by itself (fail closed), whatever the share
    unusable = [f["name"] for f in features if f["status"] in ("missing", "type_changed") or f.get("empty_window")]
    return {
        "drift": bool(counted) and (share >= config.drift_share or bool(critical) or bool(unusable)),
        "unusable_features": unusable,
        "drift_share": share,
        "drift_share_threshold": config.drift_share,
        "n_features": len(features),
        "n_tested": len(tested),
        "n_counted": len(counted),
        "n_drifted": len(drifted),
        "drifted_features": drifted,
        "critical_drifted": critical,
        "n_skipped": sum(1 for f in features if f["status"] == "skipped"),
        "n_missing": sum(1 for f in features if f["status"] == "missing"),
    }


def _map(fn: Any, items: list[str], workers: int | None) -> list[dict[str, Any]]:
    """``[fn(x) for x in items]``, on ``workers`` threads (order kept; first exception propagates)."""
    workers = workers or min(2, available_cpus())
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aisec-drift") as pool:
        return list(pool.map(fn, items))


def _round_floats(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _round_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round_floats(v) for v in obj]
    return obj


def run_drift(
    current: Any,
    *,
    profile: Profile | str | os.PathLike[str] | None = None,
    reference: Any = None,
    config: DriftConfig | None = None,
    expected_digest: str | None = None,
    build_options: BuildOptions | None = None,
    subject: str | None = None,
    workers: int | None = None,
) -> Report:
    """Test ``current`` against a stored ``profile`` (path or :class:`Profile`) or ``reference`` data.

    With ``reference`` the profile is built in memory one column at a time, interleaved with the
    tests ("cold" mode), so memory stays about one column per worker.

    :param workers: columns processed concurrently (threads; numpy and pyarrow release the GIL).
        Default: ``min(2, CPUs this process may use)`` (affinity, cgroup quota); memory is about one
        column per worker.

    :raises AisecInputError: bad configuration or unreadable input (names the input).
    :raises AisecUndecidableError: empty current window, tampered profile, nothing testable.
    """
    config = config or DriftConfig()
    if (profile is None) == (reference is None):
        raise AisecInputError("give exactly one of profile= or reference=")
    cur = current if isinstance(current, ColumnSource) else open_source(current)
    report = Report.start("drift", subject or cur.name, tags=TAGS)
    if cur.num_rows == 0:
        raise AisecUndecidableError(f"current window {cur.name} has no rows: cannot decide drift on empty data")
    features: list[dict[str, Any]] = []
    profile_info: dict[str, Any]
    progress = Progress("drift: testing columns", None, unit="columns", logger=log)
    if profile is not None:
        if isinstance(profile, Profile):
            prof, verify = profile, lambda: None
        else:
            prof, verify = open_profile(profile, expected_digest=expected_digest)
        if "partition" in prof.build:
            verify()
            raise AisecInputError(
                f"reference profile {prof.path} is one partition of a profile: merge the parts first "
                "(aisec profile merge)"
            )
        names = list(prof.columns) if config.columns is None else list(config.columns)
        try:
            config.check_names(names, list(prof.columns), f"reference profile {prof.path or ''}".strip())
        except AisecInputError:
            verify()  # a tampered profile is reported as such first
            raise
        progress.total = len(names)
        try:
            features = _map(
                lambda name: _counted(progress, evaluate_feature(prof.columns[name], cur, config)), names, workers
            )
        finally:
            verify()  # fail closed: a tampered payload raises before any result is used
        ref_names = list(prof.columns)
        profile_info = {
            "digest": prof.digest,
            "path": prof.path,
            "n_rows": prof.n_rows,
            "source": prof.build.get("source"),
        }
    else:
        ref = reference if isinstance(reference, ColumnSource) else open_source(reference)
        if ref.num_rows == 0:
            raise AisecInputError(f"reference data {ref.name} has no rows")
        options = build_options or BuildOptions()
        names = list(ref.columns) if config.columns is None else list(config.columns)
        config.check_names(names, list(ref.columns), f"reference data {ref.name}")
        # cold: profile one column, test it, drop it (``workers`` columns at a time)
        progress.total = len(names)
        features = _map(
            lambda name: _counted(progress, evaluate_feature(profile_column(ref, name, options), cur, config)),
            names,
            workers,
        )
        ref_names = ref.columns
        profile_info = {"digest": None, "path": None, "n_rows": ref.num_rows, "source": ref.name}
    progress.finish(min_elapsed=PROGRESS_SUMMARY_SECONDS)
    new_columns = [c for c in cur.columns if c not in ref_names]
    decision = decide(features, config)
    if decision["n_tested"] == 0 and decision["n_missing"] == 0:
        raise AisecUndecidableError(
            f"no column of {cur.name} could be tested against the reference: "
            + "; ".join(f"{f['name']}: {f['reason']}" for f in features[:10])
        )
    _fill_report(report, features, decision, config, profile_info, new_columns, cur)
    return report


#: A run at least this long logs a closing progress line (total and mean rate).
PROGRESS_SUMMARY_SECONDS = 5.0


def _counted(progress: Progress, result: dict[str, Any]) -> dict[str, Any]:
    progress.advance()
    return result


def _fill_report(
    report: Report,
    features: list[dict[str, Any]],
    decision: dict[str, Any],
    config: DriftConfig,
    profile_info: dict[str, Any],
    new_columns: list[str],
    cur: ColumnSource,
) -> None:
    for f in features:
        _add_feature_findings(report, f, config)
    for name in new_columns:
        report.add_finding("AISEC-DRIFT-NEW-COLUMN", "info", f"Column {name!r} is not in the reference", name)
    if decision["drift"]:
        why = _dataset_rule(decision, config)
        report.add_finding("AISEC-DRIFT-DATASET", "high", "Dataset drift: " + why, cur.name, {"rule": why})
    report.metrics.update(
        drift_share=decision["drift_share"],
        n_drifted=decision["n_drifted"],
        n_features=decision["n_features"],
        n_tested=decision["n_tested"],
        n_skipped=decision["n_skipped"],
        n_missing=decision["n_missing"],
        dataset_drift=int(decision["drift"]),
        n_rows_current=cur.num_rows,
    )
    report.details.update(
        features=_round_floats(features),
        dataset=decision,
        config=config.as_dict(),
        profile=profile_info,
        new_columns=new_columns,
    )
    report.finish(*_verdict(decision, config))


def _add_feature_findings(report: Report, f: dict[str, Any], config: DriftConfig) -> None:
    """The findings of one feature: missing, retyped, empty, drifted or skipped; new categories."""
    where = f["name"]
    if f["status"] == "missing":
        report.add_finding("AISEC-DRIFT-MISSING-COLUMN", "high", f"Expected column {where!r} is missing", where)
    elif f["status"] == "type_changed":
        report.add_finding("AISEC-DRIFT-TYPE-CHANGED", "high", f"Column {where!r}: {f['reason']}", where)
    elif f.get("empty_window"):
        report.add_finding(
            "AISEC-DRIFT-EMPTY-COLUMN", "high", f"Column {where!r} cannot be tested: {f['reason']}", where
        )
    elif f["drifted"]:
        severity = "high" if where in config.critical_features else "medium"
        stat = f.get("statistic")
        title = f"Feature {where!r} drifted ({f.get('method')}"
        title += f" statistic={stat:.4g}" if isinstance(stat, float) else ""
        title += f", p_corrected={f['p_corrected']:.3g})" if f.get("p_corrected") is not None else ")"
        report.add_finding(
            "AISEC-DRIFT-FEATURE",
            severity,
            title,
            where,
            {k: f.get(k) for k in ("method", "statistic", "p_value", "p_corrected", "drift_reasons")},
        )
    elif f["status"] == "skipped":
        report.add_finding("AISEC-DRIFT-SKIPPED", "info", f"Column {where!r} not tested: {f['reason']}", where)
    if f.get("n_new_categories"):
        report.add_finding(
            "AISEC-DRIFT-NEW-CATEGORY",
            "low" if not f["drifted"] else "medium",
            f"Column {where!r} has {f['n_new_categories']} categorie(s) unseen in the reference",
            where,
            {"new_categories": f.get("new_categories", [])},
        )


def _dataset_rule(decision: dict[str, Any], config: DriftConfig) -> str:
    """Why the dataset counts as drifted (unusable and critical features first)."""
    why = f"{decision['n_drifted']}/{decision['n_counted']} features drifted (share {decision['drift_share']:.2f} >= {config.drift_share})"
    if decision["critical_drifted"]:
        why = f"critical feature(s) drifted: {decision['critical_drifted']}; " + why
    if decision["unusable_features"]:
        why = (
            f"expected feature(s) missing, retyped or empty in the window: {decision['unusable_features'][:10]}; " + why
        )
    return why


def _verdict(decision: dict[str, Any], config: DriftConfig) -> tuple[str, str]:
    """``fail`` on dataset drift, ``warn`` when features drifted below the dataset rule, else ``pass``."""
    if decision["drift"]:
        drifted = ", ".join(decision["drifted_features"][:5]) + ("…" if decision["n_drifted"] > 5 else "")
        return "fail", f"dataset drift: {decision['n_drifted']}/{decision['n_counted']} features drifted ({drifted})"
    if decision["n_drifted"]:
        return "warn", (
            f"{decision['n_drifted']}/{decision['n_counted']} features drifted, below the dataset rule "
            f"(share {decision['drift_share']:.2f} < {config.drift_share})"
        )
    return "pass", f"no drift in {decision['n_tested']} tested feature(s)"


def profile_to_report(profile: Profile, subject: str) -> Report:
    """A ``drift`` report describing a freshly built profile (used by the profile operator and CLI)."""
    report = Report.start("drift", subject, tags=TAGS)
    cols = list(profile.columns.values())
    for col in cols:
        if col.meta.get("status") == "skipped":
            report.add_finding(
                "AISEC-DRIFT-SKIPPED", "info", f"Column {col.name!r} not profiled: {col.meta.get('reason')}", col.name
            )
    report.metrics.update(
        n_features=len(cols),
        n_rows_reference=profile.n_rows,
        n_skipped=sum(1 for c in cols if c.meta.get("status") == "skipped"),
        n_grid=sum(1 for c in cols if c.meta.get("storage") == "grid"),
    )
    report.details.update(
        profile={"digest": profile.digest, "path": profile.path, "build": profile.build},
        columns=[
            {
                "name": c.name,
                "kind": c.meta.get("kind"),
                "family": c.meta.get("family"),
                "status": c.meta.get("status"),
                "reason": c.meta.get("reason"),
                "method": c.meta.get("method"),
                "storage": c.meta.get("storage"),
                "ks_error_bound": c.meta.get("ks_error_bound"),
                "n_rows": c.meta.get("n_rows"),
                "n_null": c.meta.get("n_null"),
            }
            for c in cols
        ],
    )
    return report.finish(
        "pass", f"reference profile of {len(cols)} column(s), {profile.n_rows} rows; digest {profile.digest}"
    )


def build_and_save_profile(
    data: Any,
    output: Any,
    *,
    columns: list[str] | None = None,
    options: BuildOptions | None = None,
    created_at: str | None = None,
) -> Report:
    """Build a profile from ``data``, write it atomically to ``output`` and return a report with its digest.

    :param output: local path / ``file://`` URI, or object storage (an opened path object, or a URI).
    """
    from airflow_aisec.core.drift_profile import save_profile
    from airflow_aisec.utils.uri import is_remote, local_path

    if not is_remote(output):
        from airflow_aisec.utils.fs import check_output_path

        output = local_path(output)
        check_output_path(output)  # a directory, symlink or path under a file is refused before any work
    profile = build_profile(data, columns=columns, options=options, created_at=created_at)
    save_profile(profile, output)
    return profile_to_report(profile, str(output))


def parse_methods(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["col=ks", ...]`` or a mapping → ``{col: method}`` (CLI/operator helper)."""
    if not items:
        return {}
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    out = {}
    for item in items:
        col, sep, method = str(item).rpartition("=")
        if not sep or not col:
            raise AisecInputError(f"method override {item!r} must look like COLUMN=METHOD")
        if col in out:
            raise AisecInputError(f"method override for column {col!r} given twice")
        out[col] = method
    return out
