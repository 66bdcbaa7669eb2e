"""Data-poisoning heuristics (OWASP ML02, MITRE ATLAS AML.T0020) against a reference profile.

Each heuristic is one check registered in :data:`POISONING`, run in registration order by
:func:`poisoning_checks`; each has a threshold in :class:`PoisoningThresholds` (``None`` disables it)
and returns its findings, its metrics and its result (``report.details["poisoning"][<name>]``).
scipy and pandas are imported only inside the checks that use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_aisec.core.checks import CheckRegistry, Outcome
from airflow_aisec.core.validation.reference import _duplicate_share, _key_counts, _label_key, _outside_mask
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report

if TYPE_CHECKING:
    import pandas as pd

POISONING_TAGS = ("OWASP-ML02", "AML.T0020")


@dataclass(frozen=True)
class PoisoningThresholds:
    """Thresholds of the poisoning heuristics (module docstring). ``None`` disables a heuristic."""

    label_shift_p_value: float | None = 0.01
    label_shift_max_share_change: float = 0.05
    max_duplicate_share: float | None = 0.01
    max_outlier_share_increase: float | None = 0.02
    iqr_k: float = 3.0
    max_new_category_share: float | None = 0.0
    max_null_share_increase: float | None = 0.02

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | PoisoningThresholds | None) -> PoisoningThresholds:
        if data is None:
            return cls()
        if isinstance(data, PoisoningThresholds):
            return data
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise AisecInputError(
                f"unknown poisoning threshold(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**dict(data))

    def __post_init__(self) -> None:
        for name in ("label_shift_p_value", "label_shift_max_share_change", "max_duplicate_share",
                     "max_outlier_share_increase", "max_new_category_share", "max_null_share_increase"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and not (0.0 <= float(value) <= 1.0):
                raise AisecInputError(f"poisoning threshold {name} must be within [0, 1], not {value!r}")
        if not self.iqr_k > 0:
            raise AisecInputError(f"poisoning threshold iqr_k must be > 0, not {self.iqr_k!r}")


@dataclass(frozen=True)
class PoisoningInput:
    """What every poisoning check looks at: the data, the reference profile and the thresholds."""

    df: pd.DataFrame
    profile: Mapping[str, Any]
    label_column: str | None
    thresholds: PoisoningThresholds
    location: str = "dataset"

    @property
    def n(self) -> int:
        return len(self.df)


#: The poisoning heuristics, in report order.
POISONING = CheckRegistry[PoisoningInput]("poisoning")


@POISONING.register("label_shift", finds=("AISEC-DV-LABEL-SHIFT",))
def label_shift(ctx: PoisoningInput) -> Outcome:
    """Finds a shifted label distribution (high): chi-square goodness-of-fit of the label counts
    against the reference's shares with ``p < label_shift_p_value`` **and** a largest share change
    above ``label_shift_max_share_change``; or labels the reference never saw holding more than that
    share. Needs a label column; a reference without label counts cannot decide."""
    out = Outcome()
    t, label_column = ctx.thresholds, ctx.label_column
    if label_column is None or t.label_shift_p_value is None:
        return out
    from scipy import stats as sstats

    ref_counts: dict[str, int] = dict(ctx.profile.get("label_counts") or {})
    if not ref_counts:
        raise AisecUndecidableError(f"the reference profile has no label counts for {label_column!r}")
    cur_counts = _key_counts(ctx.df[label_column])
    known = sorted(ref_counts)
    observed = [cur_counts.get(k, 0) for k in known]
    n_known = sum(observed)
    ref_total = sum(ref_counts.values())
    ref_share = {k: ref_counts[k] / ref_total for k in known}
    cur_total = sum(cur_counts.values()) or 1
    share_change = {k: cur_counts.get(k, 0) / cur_total - ref_share.get(k, 0.0) for k in set(known) | set(cur_counts)}
    max_key = max(share_change, key=lambda k: abs(share_change[k])) if share_change else None
    max_change = abs(share_change[max_key]) if max_key is not None else 0.0
    if n_known > 0 and len(known) > 1:
        expected = [ref_share[k] * n_known for k in known]
        chi2, p_value = sstats.chisquare(observed, expected)
        chi2, p_value = float(chi2), float(p_value)
    else:
        chi2, p_value = 0.0, 1.0
    # labels the reference never saw are outside the chi-square: their mass alone is a shift
    unseen_share = (cur_total - n_known) / cur_total
    flagged = (
        p_value < t.label_shift_p_value and max_change > t.label_shift_max_share_change
    ) or unseen_share > t.label_shift_max_share_change
    out.result = {
        "chi2": chi2,
        "p_value": p_value,
        "max_share_change": max_change,
        "max_share_change_label": max_key,
        "share_change": share_change,
        "current_counts": cur_counts,
        "reference_counts": ref_counts,
        "unseen_label_share": unseen_share,
        "flagged": flagged,
    }
    out.metrics["label_shift_p_value"] = p_value
    out.metrics["label_max_share_change"] = round(max_change, 6)
    if flagged:
        out.add(
            "AISEC-DV-LABEL-SHIFT",
            "high",
            f"label distribution shifted: share of {max_key!r} changed by {share_change[str(max_key)]:+.3f} "
            f"(chi-square p={p_value:.3g})",
            location=label_column,
            details=out.result,
        )
    return out


@POISONING.register("duplicates", finds=("AISEC-DV-DUPLICATES",))
def duplicates(ctx: PoisoningInput) -> Outcome:
    """Finds a share of exact duplicate rows above ``max_duplicate_share`` (high): a cheap way to
    up-weight poisoned samples."""
    out = Outcome()
    limit = ctx.thresholds.max_duplicate_share
    if limit is None:
        return out
    dup_share = _duplicate_share(ctx.df)
    flagged = dup_share > limit
    out.result = {
        "duplicate_rows": int(round(dup_share * ctx.n)),
        "share": dup_share,
        "reference_share": ctx.profile.get("duplicate_share"),
        "threshold": limit,
        "flagged": flagged,
    }
    out.metrics["duplicate_row_share"] = round(dup_share, 6)
    if flagged:
        out.add(
            "AISEC-DV-DUPLICATES",
            "high",
            f"{dup_share:.1%} of rows are exact duplicates (threshold {limit:.1%})",
            location=ctx.location,
            details=out.result,
        )
    return out


@POISONING.register("outliers", finds=("AISEC-DV-OUTLIERS",))
def outliers(ctx: PoisoningInput) -> Outcome:
    """Finds outlier / trigger injection (high): the share of rows with any numeric value outside the
    reference's robust range ``[Q1 - k·IQR, Q3 + k·IQR]``, in excess of the reference's own share, above
    ``max_outlier_share_increase``. Columns re-typed since the reference are left to the schema
    findings."""
    import pandas as pd

    out = Outcome()
    df, limit = ctx.df, ctx.thresholds.max_outlier_share_increase
    numeric = {
        c: r
        for c, r in (ctx.profile.get("numeric") or {}).items()
        if c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c])
    }
    if limit is None or not numeric:
        return out
    mask = _outside_mask(df, numeric)
    share = float(mask.mean()) if ctx.n else 0.0
    baseline = float(ctx.profile.get("outside_share") or 0.0)
    excess = share - baseline
    per_column = {}
    for col, rng in numeric.items():
        if col in df.columns:
            values = df[col].astype(float)
            count = int(((values < rng["low"]) | (values > rng["high"])).sum())
            if count:
                per_column[col] = count
    flagged = excess > limit
    out.result = {
        "rows_outside": int(mask.sum()),
        "share": share,
        "reference_share": baseline,
        "excess": excess,
        "threshold": limit,
        "columns": dict(sorted(per_column.items(), key=lambda kv: -kv[1])[:20]),
        "flagged": flagged,
    }
    out.metrics["outlier_row_share"] = round(share, 6)
    if flagged:
        out.add(
            "AISEC-DV-OUTLIERS",
            "high",
            f"{share:.1%} of rows fall outside the reference's robust range "
            f"(reference {baseline:.1%}, allowed increase {limit:.1%})",
            location=ctx.location,
            details=out.result,
        )
    return out


@POISONING.register("new_categories", finds=("AISEC-DV-NEW-CATEGORY",))
def new_categories(ctx: PoisoningInput) -> Outcome:
    """Finds values of categorical columns (and of the label) never seen in the reference whose row
    share is above ``max_new_category_share`` (high; default 0: any new label or category)."""
    out = Outcome()
    df, limit = ctx.df, ctx.thresholds.max_new_category_share
    if limit is None:
        return out
    known_sets: dict[str, set[str]] = {c: set(v) for c, v in (ctx.profile.get("categorical") or {}).items()}
    if ctx.label_column is not None and ctx.profile.get("label_counts"):
        known_sets[ctx.label_column] = set(ctx.profile["label_counts"])
    new: dict[str, Any] = {}
    for col, known_values in known_sets.items():
        if col not in df.columns:
            continue
        present = df[col].dropna()
        unseen_raw = [v for v in present.unique() if _label_key(v) not in known_values]
        if not unseen_raw:
            continue
        rows_unseen = int(present.isin(unseen_raw).sum())
        share = rows_unseen / ctx.n if ctx.n else 0.0
        values = sorted({_label_key(v) for v in unseen_raw})[:20]
        entry = {"values": values, "rows": rows_unseen, "share": share}
        new[col] = entry
        if share > limit:
            out.add(
                "AISEC-DV-NEW-CATEGORY",
                "high",
                f"{rows_unseen} row(s) of {col!r} carry value(s) never seen in the reference: "
                f"{', '.join(map(repr, values[:5]))}",
                location=col,
                details=entry,
            )
    out.result = new
    out.metrics["new_category_columns"] = len(new)
    return out


@POISONING.register("nulls", finds=("AISEC-DV-NULLS", "AISEC-DV-UNCHECKED-NULLS"))
def nulls(ctx: PoisoningInput) -> Outcome:
    """Finds columns whose share of missing values (NaN/None/NaT) exceeds the reference's own share by
    more than ``max_null_share_increase`` (high): blanked-out values escape every range and category
    test. A reference profile without missing-value shares is reported as info (not compared)."""
    out = Outcome()
    df, limit = ctx.df, ctx.thresholds.max_null_share_increase
    if limit is None:
        return out
    ref_nulls = ctx.profile.get("null_share")
    if not isinstance(ref_nulls, Mapping):
        out.result = {"skipped": "the reference profile records no missing-value shares (rebuild it)"}
        out.add(
            "AISEC-DV-UNCHECKED-NULLS",
            "info",
            "missing-value shares not compared: the reference profile predates them",
            location=ctx.location,
        )
        return out
    increases: dict[str, Any] = {}
    for col, ref_share_null in ref_nulls.items():
        if col not in df.columns or ctx.n == 0:
            continue
        share = float(df[col].isna().mean())
        if share - float(ref_share_null) > limit:
            increases[col] = {"share": share, "reference_share": float(ref_share_null)}
            out.add(
                "AISEC-DV-NULLS",
                "high",
                f"{share:.1%} of {col!r} is missing (reference {float(ref_share_null):.1%}, allowed increase "
                f"{limit:.1%})",
                location=col,
                details=increases[col],
            )
    out.result = increases
    out.metrics["null_increase_columns"] = len(increases)
    return out


def poisoning_checks(
    df: pd.DataFrame,
    profile: Mapping[str, Any],
    *,
    label_column: str | None,
    thresholds: PoisoningThresholds,
    report: Report,
) -> dict[str, Any]:
    """Run the poisoning heuristics (:data:`POISONING`), add findings to ``report``; return per-heuristic results.

    The report is tagged OWASP-ML02 / AML.T0020 when any data-validation finding other than a failed
    expectation was raised.
    """
    results = POISONING.run(PoisoningInput(df, profile, label_column, thresholds), report)
    if any(f.id.startswith("AISEC-DV-") and f.id != "AISEC-DV-EXPECTATION" for f in report.findings):
        report.add_tags(*POISONING_TAGS)
    return results
