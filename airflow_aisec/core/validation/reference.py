"""Reference profile of a known-good dataset: reading tables, building, loading and checking profiles.

Also the schema comparison of a dataset against a profile (missing, unprofiled, re-typed columns).
pandas is imported only inside the functions that use it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report
from airflow_aisec.utils.stats import robust_range

if TYPE_CHECKING:
    import pandas as pd

PROFILE_SCHEMA = "aisec.reference-profile/v1"


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
