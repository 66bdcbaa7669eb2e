"""Training-data validation: a Great Expectations 1.x suite plus data-poisoning heuristics.

Two halves, one report (check ``data_validation``):

* **Expectations** — a GX 1.x expectation suite (GX expectation objects, ``{"type", "kwargs"}`` dicts,
  or a suite JSON file as written by ``ExpectationSuite.to_json_dict()``) runs on a pandas DataFrame
  in an *ephemeral* GX context (nothing written to disk). Each failed expectation becomes a finding
  carrying GX's observed value / unexpected counts.
* **Poisoning heuristics** (OWASP ML02, MITRE ATLAS AML.T0020) against a *reference* — a known-good
  DataFrame or a profile from :func:`build_reference_profile` — each with a threshold:

  - ``label_shift``: chi-square goodness-of-fit of the label counts against the reference's label
    shares, plus the largest absolute share change. Flagged when ``p < label_shift_p_value`` **and**
    the largest share change exceeds ``label_shift_max_share_change`` (large datasets make tiny,
    harmless shifts significant; the share change keeps the check meaningful).
  - ``duplicates``: share of exact duplicate rows above ``max_duplicate_share`` (a cheap way to
    up-weight poisoned samples).
  - ``outliers``: share of rows with any numeric value outside the reference's robust range
    ``[Q1 - k·IQR, Q3 + k·IQR]`` (``k = iqr_k``), in excess of the reference's own share, above
    ``max_outlier_share_increase`` (outlier / trigger injection).
  - ``new_categories``: values of categorical columns (and the label) never seen in the reference,
    their row share above ``max_new_category_share`` (default 0: any new label/category fails).
  - ``nulls``: per column, the share of missing values (NaN/None/NaT) above the reference's own share
    by more than ``max_null_share_increase`` (values an attacker blanks out escape every range test).

Nothing is dropped silently: a reference column missing from the data (``AISEC-DV-MISSING-COLUMN``),
a column the reference never saw (``AISEC-DV-UNPROFILED-COLUMN``) and a column whose type changed
(``AISEC-DV-TYPE-CHANGED``) are blocking findings; reference columns the profile could not summarise
(too many categories, no values) are counted (``columns_unchecked``) and listed as ``info``. An empty
dataset, a GX expectation that raised instead of evaluating, and a suite whose expectations were not
all evaluated are errors (the check cannot decide), whatever the expectation's severity.

GX and pandas are imported lazily (this module is imported by operators at DAG parse time only
through functions).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report, gate_status
from airflow_aisec.utils.stats import robust_range

if TYPE_CHECKING:
    import pandas as pd

PROFILE_SCHEMA = "aisec.reference-profile/v1"
POISONING_TAGS = ("OWASP-ML02", "AML.T0020")
#: GX 1.x expectation severity → report finding severity.
GX_SEVERITY = {"critical": "high", "warning": "low", "info": "info"}
BLOCKING = ("critical", "high", "medium")


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


# ----------------------------------------------------------------------------- loading
def read_table(source: str | os.PathLike[str] | Any, fmt: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet table from a path or binary file object.

    :param source: local path, or an open binary file (e.g. ``ObjectStoragePath.open("rb")``).
    :param fmt: ``csv`` or ``parquet``; default from the file name's suffix.
    :raises AisecInputError: unknown format.
    :raises AisecUndecidableError: missing or unreadable data (fail closed).
    """
    import pandas as pd

    name = str(getattr(source, "name", source))
    fmt = (fmt or Path(name).suffix.lstrip(".")).lower()
    if fmt in ("pq", "parq"):
        fmt = "parquet"
    if fmt not in ("csv", "parquet"):
        raise AisecInputError(f"cannot tell the table format of {name!r}: pass fmt='csv' or 'parquet'")
    try:
        return pd.read_csv(source) if fmt == "csv" else pd.read_parquet(source)
    except FileNotFoundError as exc:
        raise AisecUndecidableError(f"dataset {name!r} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise AisecUndecidableError(f"dataset {name!r} is unreadable as {fmt}: {exc}") from exc


# ----------------------------------------------------------------------------- GX expectations
def load_expectations(spec: Any) -> list[dict[str, Any]]:
    """Normalise an expectation suite spec into ``[{"type", "kwargs", "meta", "severity"}]``.

    Accepts a suite JSON file path, a suite dict (``{"expectations": [...]}``), a GX
    ``ExpectationSuite``, or a list of GX expectation objects / ``{"type", "kwargs"}`` dicts.
    """
    if spec is None:
        return []
    if isinstance(spec, (str, os.PathLike)):
        from airflow_aisec.utils import strictjson

        path = Path(spec)
        if not path.exists():
            raise AisecInputError(f"expectation suite file {str(path)!r} does not exist")
        spec = strictjson.load_path(path, source=f"expectation suite file {str(path)!r}")
    if hasattr(spec, "to_json_dict"):
        spec = spec.to_json_dict()
    if isinstance(spec, Mapping):
        if "expectations" not in spec:
            raise AisecInputError("expectation suite JSON must have an 'expectations' list")
        spec = spec["expectations"]
    if not isinstance(spec, Iterable):
        raise AisecInputError(f"expectations must be a suite or a list, not {type(spec).__name__}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(spec):
        if hasattr(item, "configuration"):  # a GX Expectation object
            cfg = item.configuration.to_json_dict()
            item = {
                "type": cfg.get("type") or cfg.get("expectation_type"),
                "kwargs": cfg.get("kwargs", {}),
                "meta": cfg.get("meta") or {},
                "severity": str(getattr(item, "severity", "critical")),
            }
        if not isinstance(item, Mapping) or not (item.get("type") or item.get("expectation_type")):
            raise AisecInputError(f"expectation {i} must be a GX expectation or a dict with 'type' and 'kwargs'")
        kwargs = {k: v for k, v in dict(item.get("kwargs") or {}).items() if k != "batch_id"}
        severity = str(item.get("severity") or "critical").split(".")[-1].lower()
        out.append(
            {
                "type": item.get("type") or item.get("expectation_type"),
                "kwargs": kwargs,
                "meta": dict(item.get("meta") or {}),
                "severity": severity if severity in GX_SEVERITY else "critical",
            }
        )
    return out


def _build_expectation(cfg: Mapping[str, Any]) -> Any:
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        impl = get_expectation_impl(cfg["type"])
    except Exception as exc:  # GX raises its own ExpectationNotFoundError
        raise AisecInputError(f"unknown GX expectation type {cfg['type']!r}") from exc
    try:
        return impl(**cfg["kwargs"], meta=cfg["meta"] or None, severity=cfg["severity"])
    except Exception as exc:  # pydantic validation errors
        raise AisecInputError(f"invalid arguments for GX expectation {cfg['type']!r}: {exc}") from exc


def run_expectations(df: pd.DataFrame, expectations: Sequence[Mapping[str, Any]], *, suite_name: str = "aisec") -> dict:
    """Run ``expectations`` on ``df`` in an ephemeral GX context; return GX's result as JSON data."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    datasource = context.data_sources.add_pandas("aisec")
    asset = datasource.add_dataframe_asset("dataset")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=suite_name)
    for cfg in expectations:
        suite.add_expectation(_build_expectation(cfg))
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}-validation", data=batch_definition, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": df})
    return result.to_json_dict()


def _gx_findings(report: Report, gx_result: Mapping[str, Any]) -> None:
    for res in gx_result.get("results", []):
        cfg = res.get("expectation_config") or {}
        kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
        exc_info = res.get("exception_info") or {}
        if not exc_info.get("raised_exception"):  # GX 1.x also nests it per metric: {metric_id: {...}}
            nested = [v for v in exc_info.values() if isinstance(v, Mapping) and v.get("raised_exception")]
            exc_info = nested[0] if nested else exc_info
        raised = bool(exc_info.get("raised_exception"))
        if res.get("success") and not raised:
            continue
        result = res.get("result") or {}
        details = {
            "expectation_type": cfg.get("type"),
            "kwargs": kwargs,
            "observed_value": result.get("observed_value"),
            "unexpected_count": result.get("unexpected_count"),
            "unexpected_percent": result.get("unexpected_percent"),
            "partial_unexpected_list": (result.get("partial_unexpected_list") or [])[:20],
            "element_count": result.get("element_count"),
        }
        if raised:
            details["exception_message"] = exc_info.get("exception_message")
            details["raised"] = True
        severity = GX_SEVERITY.get(str(cfg.get("severity") or "critical").split(".")[-1].lower(), "high")
        where = kwargs.get("column") or ",".join(kwargs.get("column_list", []) or []) or "table"
        observed = details["observed_value"]
        title = f"{cfg.get('type')} failed"
        if raised:
            title = f"{cfg.get('type')} raised: {exc_info.get('exception_message')}"
        elif observed is not None:
            title += f" (observed {observed!r})"
        elif details["unexpected_count"] is not None:
            title += f" ({details['unexpected_count']} unexpected value(s))"
        report.add_finding("AISEC-DV-EXPECTATION", severity, title, location=str(where), details=details)


# ----------------------------------------------------------------------------- reference profile
def _label_key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _key_counts(series: Any) -> dict[str, int]:
    """Counts per normalised key, computed on distinct values (vectorised; no per-row Python)."""
    out: dict[str, int] = {}
    for value, count in series.dropna().value_counts().items():
        key = _label_key(value)
        out[key] = out.get(key, 0) + int(count)
    return out


def _duplicate_share(df: pd.DataFrame) -> float:
    """Share of rows that exactly duplicate an earlier row (64-bit row hashes; vectorised)."""
    import pandas as pd

    if len(df) == 0:
        return 0.0
    return float(pd.util.hash_pandas_object(df, index=False).duplicated().mean())


def _categorical_columns(df: pd.DataFrame, label_column: str | None) -> list[str]:
    import pandas as pd

    cols = []
    for col in df.columns:
        if col == label_column:
            continue
        dtype = df[col].dtype
        if (
            isinstance(dtype, pd.CategoricalDtype)
            or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
        ):
            cols.append(str(col))
    return cols


def _numeric_columns(df: pd.DataFrame, label_column: str | None) -> list[str]:
    import pandas as pd

    return [
        str(c)
        for c in df.columns
        if c != label_column and pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c])
    ]


def _outside_mask(df: pd.DataFrame, numeric: Mapping[str, Mapping[str, float]]) -> Any:
    import numpy as np

    mask = np.zeros(len(df), dtype=bool)
    for col, rng in numeric.items():
        if col not in df.columns:
            continue
        values = df[col].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            mask |= (values < rng["low"]) | (values > rng["high"])
    return mask


def _refuse_duplicate_columns(df: pd.DataFrame, what: str) -> None:
    """Which ``x`` would an expectation or a heuristic check? Names equal as text (``1`` and ``"1"``) too."""
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise AisecInputError(f"{what} has duplicate column name(s) {dupes[:10]}: cannot tell them apart")


def build_reference_profile(
    df: pd.DataFrame, *, label_column: str | None = None, iqr_k: float = 3.0, max_categories: int = 1000
) -> dict[str, Any]:
    """Summarise a known-good dataset for the poisoning heuristics (JSON-serialisable).

    Numeric columns keep quartiles and the robust range ``[Q1 - k·IQR, Q3 + k·IQR]``; categorical
    columns keep their set of values (at most ``max_categories``; larger ones are skipped); the label
    keeps its counts.
    """
    _refuse_duplicate_columns(df, "the reference dataset")
    if label_column is not None and label_column not in df.columns:
        raise AisecInputError(f"label column {label_column!r} is not in the reference dataset")
    if len(df) == 0:
        raise AisecUndecidableError("the reference dataset is empty")
    numeric: dict[str, dict[str, float]] = {}
    for col in _numeric_columns(df, label_column):
        series = df[col].dropna().astype(float)
        if series.empty:
            continue
        q1, median, q3 = (float(q) for q in series.quantile([0.25, 0.5, 0.75]).to_numpy())
        low, high = robust_range(q1, q3, iqr_k)  # no fallback: a constant column's range is that constant
        numeric[col] = {"q1": q1, "median": median, "q3": q3, "low": low, "high": high}
    categorical: dict[str, list[str]] = {}
    for col in _categorical_columns(df, label_column):
        values = sorted({_label_key(v) for v in df[col].dropna().unique()})
        if values and len(values) <= max_categories:
            categorical[col] = values
    profiled = set(numeric) | set(categorical) | ({label_column} if label_column is not None else set())
    profile: dict[str, Any] = {
        "schema": PROFILE_SCHEMA,
        "rows": len(df),
        "columns": [str(c) for c in df.columns],
        "label_column": label_column,
        "iqr_k": iqr_k,
        "numeric": numeric,
        "categorical": categorical,
        "duplicate_share": _duplicate_share(df),
        "outside_share": float(_outside_mask(df, numeric).mean()),
        "null_share": {str(c): float(df[c].isna().mean()) for c in df.columns},
        "unprofiled": [str(c) for c in df.columns if str(c) not in profiled],
    }
    if label_column is not None:
        profile["label_counts"] = dict(sorted(_key_counts(df[label_column]).items()))
    return profile


def load_reference(reference: Any, *, label_column: str | None, iqr_k: float) -> dict[str, Any] | None:
    """A reference profile from a profile dict/JSON file, a DataFrame, or a CSV/Parquet path."""
    if reference is None:
        return None
    if isinstance(reference, Mapping):
        profile = dict(reference)
    elif isinstance(reference, (str, os.PathLike)) and str(reference).endswith(".json"):
        from airflow_aisec.utils import strictjson

        if not Path(reference).exists():
            raise AisecUndecidableError(f"reference profile {str(reference)!r} does not exist")
        profile = strictjson.load_path(reference, source=f"reference profile {str(reference)!r}")
    elif isinstance(reference, (str, os.PathLike)):
        return build_reference_profile(read_table(reference), label_column=label_column, iqr_k=iqr_k)
    elif hasattr(reference, "columns"):
        return build_reference_profile(reference, label_column=label_column, iqr_k=iqr_k)
    else:
        raise AisecInputError(f"reference must be a profile, a DataFrame or a path, not {type(reference).__name__}")
    return check_reference_profile(profile)


def check_reference_profile(profile: Any, where: str = "reference profile") -> dict[str, Any]:
    """Check the shape of an untrusted reference profile; any wrong type or absurd value is an error."""
    import math

    from airflow_aisec.utils.strictjson import expect, get, get_dict, get_int, get_list

    expect(profile, dict, where)
    if profile.get("schema") != PROFILE_SCHEMA:
        raise AisecInputError(f"{where}: schema must be {PROFILE_SCHEMA!r}, not {profile.get('schema')!r}")

    def share(value: Any, at: str) -> float:
        expect(value, (int, float), at)
        if not 0.0 <= float(value) <= 1.0:
            raise AisecInputError(f"{at}: {value!r} is not a share in [0, 1]")
        return float(value)

    get_int(profile, "rows", where, lo=1)
    columns = get_list(profile, "columns", where)
    for i, col in enumerate(columns):
        expect(col, str, f"{where}.columns[{i}]")
    if len(set(columns)) != len(columns):
        raise AisecInputError(f"{where}.columns: duplicate column names")
    label = get(profile, "label_column", (str, type(None)), where, None)
    for col, rng in get_dict(profile, "numeric", where, {}).items():
        at = f"{where}.numeric[{col!r}]"
        values = {k: expect(get(rng, k, (int, float), at), (int, float), f"{at}.{k}") for k in ("low", "high")}
        if not all(math.isfinite(v) for v in values.values()) or values["low"] > values["high"]:
            raise AisecInputError(f"{at}: range {values['low']!r}..{values['high']!r} is not a finite interval")
    for col, values in get_dict(profile, "categorical", where, {}).items():
        for i, v in enumerate(expect(values, list, f"{where}.categorical[{col!r}]")):
            expect(v, str, f"{where}.categorical[{col!r}][{i}]")
    counts = get_dict(profile, "label_counts", where, {})
    for key, n in counts.items():
        expect(n, int, f"{where}.label_counts[{key!r}]")
        if n < 0:
            raise AisecInputError(f"{where}.label_counts[{key!r}]: negative count {n}")
    if label is not None and not counts:
        raise AisecInputError(f"{where}: label column {label!r} but no label_counts")
    for key in ("duplicate_share", "outside_share"):
        if key in profile:
            share(profile[key], f"{where}.{key}")
    for col, value in get_dict(profile, "null_share", where, {}).items():
        share(value, f"{where}.null_share[{col!r}]")
    for i, col in enumerate(get_list(profile, "unprofiled", where, [])):
        expect(col, str, f"{where}.unprofiled[{i}]")
    known = set(columns)
    stray = (set(get_dict(profile, "numeric", where, {})) | set(get_dict(profile, "categorical", where, {}))) - known
    if stray:
        raise AisecInputError(f"{where}: profiled column(s) {sorted(stray)[:5]} are not in its 'columns'")
    return profile


def schema_findings(df: pd.DataFrame, profile: Mapping[str, Any], *, label_column: str | None, report: Report) -> None:
    """Compare the data's columns with the reference's: missing, unprofiled and re-typed columns are findings."""
    import pandas as pd

    current = [str(c) for c in df.columns]
    reference = list(profile.get("columns") or [])
    missing = [c for c in reference if c not in current]
    extra = [c for c in current if c not in reference]
    for col in missing:
        report.add_finding(
            "AISEC-DV-MISSING-COLUMN", "high", f"column {col!r} of the reference is missing from the data", location=col
        )
    for col in extra:
        report.add_finding(
            "AISEC-DV-UNPROFILED-COLUMN",
            "medium",
            f"column {col!r} is not in the reference: no poisoning heuristic can check it",
            location=col,
        )
    retyped = []
    for col in profile.get("numeric") or {}:
        if col in current:
            series = df[col]
            if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
                retyped.append(col)
                report.add_finding(
                    "AISEC-DV-TYPE-CHANGED",
                    "high",
                    f"column {col!r} is numeric in the reference but {series.dtype} in the data",
                    location=col,
                )
    unchecked = [c for c in profile.get("unprofiled") or [] if c in current]
    for col in unchecked:
        report.add_finding(
            "AISEC-DV-UNCHECKED-COLUMN",
            "info",
            f"column {col!r} could not be profiled in the reference (too many categories or no values)",
            location=col,
        )
    report.metrics["columns_missing"] = len(missing)
    report.metrics["columns_unprofiled"] = len(extra)
    report.metrics["columns_retyped"] = len(retyped)
    report.metrics["columns_unchecked"] = len(unchecked)


# ----------------------------------------------------------------------------- heuristics
def poisoning_checks(
    df: pd.DataFrame,
    profile: Mapping[str, Any],
    *,
    label_column: str | None,
    thresholds: PoisoningThresholds,
    report: Report,
) -> dict[str, Any]:
    """Run the poisoning heuristics, add findings to ``report``; return per-heuristic results."""
    from scipy import stats as sstats

    results: dict[str, Any] = {}
    n = len(df)
    location = "dataset"

    # label-distribution shift
    if label_column is not None and thresholds.label_shift_p_value is not None:
        ref_counts: dict[str, int] = dict(profile.get("label_counts") or {})
        if not ref_counts:
            raise AisecUndecidableError(f"the reference profile has no label counts for {label_column!r}")
        cur_counts = _key_counts(df[label_column])
        known = sorted(ref_counts)
        observed = [cur_counts.get(k, 0) for k in known]
        n_known = sum(observed)
        ref_total = sum(ref_counts.values())
        ref_share = {k: ref_counts[k] / ref_total for k in known}
        cur_total = sum(cur_counts.values()) or 1
        share_change = {
            k: cur_counts.get(k, 0) / cur_total - ref_share.get(k, 0.0) for k in set(known) | set(cur_counts)
        }
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
            p_value < thresholds.label_shift_p_value and max_change > thresholds.label_shift_max_share_change
        ) or unseen_share > thresholds.label_shift_max_share_change
        results["label_shift"] = {
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
        report.metrics["label_shift_p_value"] = p_value
        report.metrics["label_max_share_change"] = round(max_change, 6)
        if flagged:
            report.add_finding(
                "AISEC-DV-LABEL-SHIFT",
                "high",
                f"label distribution shifted: share of {max_key!r} changed by {share_change[str(max_key)]:+.3f} "
                f"(chi-square p={p_value:.3g})",
                location=label_column,
                details=results["label_shift"],
            )

    # exact duplicates
    if thresholds.max_duplicate_share is not None:
        dup_share = _duplicate_share(df)
        flagged = dup_share > thresholds.max_duplicate_share
        results["duplicates"] = {
            "duplicate_rows": int(round(dup_share * n)),
            "share": dup_share,
            "reference_share": profile.get("duplicate_share"),
            "threshold": thresholds.max_duplicate_share,
            "flagged": flagged,
        }
        report.metrics["duplicate_row_share"] = round(dup_share, 6)
        if flagged:
            report.add_finding(
                "AISEC-DV-DUPLICATES",
                "high",
                f"{dup_share:.1%} of rows are exact duplicates (threshold {thresholds.max_duplicate_share:.1%})",
                location=location,
                details=results["duplicates"],
            )

    # outlier injection (columns re-typed since the reference are findings of their own)
    import pandas as pd

    numeric = {
        c: r
        for c, r in (profile.get("numeric") or {}).items()
        if c in df.columns and pd.api.types.is_numeric_dtype(df[c].dtype) and not pd.api.types.is_bool_dtype(df[c])
    }
    if thresholds.max_outlier_share_increase is not None and numeric:
        mask = _outside_mask(df, numeric)
        share = float(mask.mean()) if n else 0.0
        baseline = float(profile.get("outside_share") or 0.0)
        excess = share - baseline
        per_column = {}
        for col, rng in numeric.items():
            if col in df.columns:
                values = df[col].astype(float)
                count = int(((values < rng["low"]) | (values > rng["high"])).sum())
                if count:
                    per_column[col] = count
        flagged = excess > thresholds.max_outlier_share_increase
        results["outliers"] = {
            "rows_outside": int(mask.sum()),
            "share": share,
            "reference_share": baseline,
            "excess": excess,
            "threshold": thresholds.max_outlier_share_increase,
            "columns": dict(sorted(per_column.items(), key=lambda kv: -kv[1])[:20]),
            "flagged": flagged,
        }
        report.metrics["outlier_row_share"] = round(share, 6)
        if flagged:
            report.add_finding(
                "AISEC-DV-OUTLIERS",
                "high",
                f"{share:.1%} of rows fall outside the reference's robust range "
                f"(reference {baseline:.1%}, allowed increase {thresholds.max_outlier_share_increase:.1%})",
                location=location,
                details=results["outliers"],
            )

    # new categories (categorical columns and the label)
    if thresholds.max_new_category_share is not None:
        known_sets: dict[str, set[str]] = {c: set(v) for c, v in (profile.get("categorical") or {}).items()}
        if label_column is not None and profile.get("label_counts"):
            known_sets[label_column] = set(profile["label_counts"])
        new: dict[str, Any] = {}
        for col, known_values in known_sets.items():
            if col not in df.columns:
                continue
            present = df[col].dropna()
            unseen_raw = [v for v in present.unique() if _label_key(v) not in known_values]
            if not unseen_raw:
                continue
            rows_unseen = int(present.isin(unseen_raw).sum())
            share = rows_unseen / n if n else 0.0
            values = sorted({_label_key(v) for v in unseen_raw})[:20]
            entry = {"values": values, "rows": rows_unseen, "share": share}
            new[col] = entry
            if share > thresholds.max_new_category_share:
                report.add_finding(
                    "AISEC-DV-NEW-CATEGORY",
                    "high",
                    f"{rows_unseen} row(s) of {col!r} carry value(s) never seen in the reference: "
                    f"{', '.join(map(repr, values[:5]))}",
                    location=col,
                    details=entry,
                )
        results["new_categories"] = new
        report.metrics["new_category_columns"] = len(new)

    # blanked-out values escape every range and category test: compare missing-value shares
    ref_nulls = profile.get("null_share")
    if thresholds.max_null_share_increase is not None and isinstance(ref_nulls, Mapping):
        increases: dict[str, Any] = {}
        for col, ref_share_null in ref_nulls.items():
            if col not in df.columns or n == 0:
                continue
            share = float(df[col].isna().mean())
            if share - float(ref_share_null) > thresholds.max_null_share_increase:
                increases[col] = {"share": share, "reference_share": float(ref_share_null)}
                report.add_finding(
                    "AISEC-DV-NULLS",
                    "high",
                    f"{share:.1%} of {col!r} is missing (reference {float(ref_share_null):.1%}, allowed increase "
                    f"{thresholds.max_null_share_increase:.1%})",
                    location=col,
                    details=increases[col],
                )
        results["nulls"] = increases
        report.metrics["null_increase_columns"] = len(increases)
    elif thresholds.max_null_share_increase is not None:
        results["nulls"] = {"skipped": "the reference profile records no missing-value shares (rebuild it)"}
        report.add_finding(
            "AISEC-DV-UNCHECKED-NULLS",
            "info",
            "missing-value shares not compared: the reference profile predates them",
            location=location,
        )

    if any(f.id.startswith("AISEC-DV-") and f.id != "AISEC-DV-EXPECTATION" for f in report.findings):
        report.add_tags(*POISONING_TAGS)
    return results


# ----------------------------------------------------------------------------- the check
def validate_dataframe(
    df: pd.DataFrame,
    *,
    subject: str,
    expectations: Any = None,
    reference: Any = None,
    label_column: str | None = None,
    thresholds: Mapping[str, Any] | PoisoningThresholds | None = None,
    suite_name: str = "aisec",
) -> Report:
    """Validate ``df``: GX expectations, then poisoning heuristics against ``reference``.

    Status: ``fail`` when a finding is high/medium (failed critical expectation, poisoning
    heuristic), ``warn`` when only GX ``warning`` expectations failed, else ``pass``.

    :raises AisecInputError: bad suite/thresholds/label column. :raises AisecUndecidableError: no
        expectation and no reference (nothing to decide on), or unusable reference.
    """
    limits = PoisoningThresholds.from_mapping(thresholds)
    specs = load_expectations(expectations)
    if not specs and reference is None:
        raise AisecUndecidableError("nothing to validate: give an expectation suite and/or a reference dataset/profile")
    if len(df) == 0:
        raise AisecUndecidableError(f"dataset {subject!r} has no rows: expectations would pass vacuously")
    _refuse_duplicate_columns(df, f"dataset {subject!r}")
    if label_column is not None and label_column not in df.columns:
        raise AisecInputError(f"label column {label_column!r} is not in the dataset (columns: {list(df.columns)[:20]})")
    report = Report.start("data_validation", subject, tags=["AML.T0059"])
    report.metrics["rows"] = len(df)
    report.metrics["columns"] = len(df.columns)
    if specs:
        gx_result = run_expectations(df, specs, suite_name=suite_name)
        stats = gx_result.get("statistics", {})
        report.metrics["expectations_evaluated"] = stats.get("evaluated_expectations")
        report.metrics["expectations_failed"] = stats.get("unsuccessful_expectations")
        _gx_findings(report, gx_result)
        evaluated = len(gx_result.get("results") or [])
        if evaluated != len(specs):
            raise AisecUndecidableError(f"GX evaluated {evaluated} of {len(specs)} expectation(s): cannot decide")
        raised = [f for f in report.findings if f.details.get("raised")]
        if raised:
            names = ", ".join(sorted({str(f.details.get("expectation_type")) for f in raised}))
            raise AisecUndecidableError(f"GX expectation(s) raised instead of evaluating: {names}")
        report.details["gx"] = {
            "success": gx_result.get("success"),
            "statistics": stats,
            "suite_name": gx_result.get("suite_name"),
            "great_expectations_version": (gx_result.get("meta") or {}).get("great_expectations_version"),
        }
    profile = load_reference(reference, label_column=label_column, iqr_k=limits.iqr_k)
    if profile is not None:
        if label_column is not None and profile.get("label_column") not in (None, label_column):
            raise AisecInputError(
                f"label column {label_column!r} differs from the reference profile's {profile.get('label_column')!r}"
            )
        schema_findings(df, profile, label_column=label_column, report=report)
        report.details["poisoning"] = poisoning_checks(
            df, profile, label_column=label_column, thresholds=limits, report=report
        )
        report.details["thresholds"] = asdict(limits)
    blocking = [f for f in report.findings if f.severity in BLOCKING]
    status = gate_status([f.severity for f in report.findings], BLOCKING[-1])
    if blocking:
        kinds = sorted({f.id for f in blocking})
        summary = f"{len(blocking)} blocking finding(s) on {len(df)} rows: {', '.join(kinds)}"
    else:
        summary = f"{len(df)} rows valid: {len(specs)} expectation(s) met" + (
            ", no poisoning signal" if profile is not None else ""
        )
        if status == "warn":
            summary += f" ({len(report.findings)} warning(s))"
    return report.finish(status, summary)
