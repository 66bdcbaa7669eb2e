"""Reference ranges for the out-of-distribution check: per-feature robust ranges and their loading.

Built from reference data (:func:`build_reference_ranges`) or from a drift profile's numeric
columns (:func:`reference_from_profile_columns`), saved as JSON (``aisec.inference-reference/v1``)
and validated field by field when loaded (:func:`load_reference`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_aisec.core.inference_audit.records import _is_number
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils.stats import robust_range

REFERENCE_SCHEMA = "aisec.inference-reference/v1"


def build_reference_ranges(
    data: Any, *, feature_names: Sequence[str] | None = None, k: float = 3.0, source: str = ""
) -> dict[str, Any]:
    """Per-feature robust ranges ``[Q1 - k·IQR, Q3 + k·IQR]`` from reference data (rows × features).

    ``data``: a 2-D array-like or a pandas DataFrame (numeric columns). The result is JSON
    (``aisec.inference-reference/v1``) to save next to the model and pass to the audit.
    """
    import numpy as np

    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        feature_names = list(map(str, data.columns)) if feature_names is None else feature_names
        data = data.to_numpy(dtype=float)
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise AisecInputError("reference data must be a 2-D table with at least 2 rows and 1 feature")
    names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise AisecInputError(f"reference data has {arr.shape[1]} features but {len(names)} names")
    features = []
    for i, name in enumerate(names):
        col = arr[:, i][np.isfinite(arr[:, i])]
        if col.size < 2:
            raise AisecInputError(f"reference feature {name!r} has fewer than 2 finite values")
        q1, med, q3 = (float(v) for v in np.percentile(col, [25, 50, 75]))
        # a constant-ish feature falls back on the observed range
        low, high = robust_range(q1, q3, k, observed=(float(col.min()), float(col.max())), median=med)
        features.append({"name": name, "low": low, "high": high, "median": float(med)})
    return {"schema": REFERENCE_SCHEMA, "k": k, "rows": int(arr.shape[0]), "source": source, "features": features}


DRIFT_PROFILE_MAGIC = b"AISEC-DRIFT-PROFILE"


def reference_from_profile_columns(
    columns: Mapping[str, Any], *, features: Sequence[str] | None = None, k: float = 3.0, source: str = ""
) -> dict[str, Any]:
    """Per-feature ranges from a drift profile's columns (``Profile.columns`` of :mod:`airflow_aisec.core.profile`).

    Uses each numeric column's 1,000-quantile grid (``arrays["quantiles"]``) for Q1/Q3, falling back on
    ``meta`` min/max for constant columns. ``features`` selects and orders the columns (the model's
    input order, as logged); default: every numeric column in profile order.
    """
    import numpy as np

    names = (
        list(features) if features is not None else [n for n, c in columns.items() if c.meta.get("kind") == "numeric"]
    )
    out = []
    for name in names:
        col = columns.get(name)
        if col is None:
            raise AisecInputError(f"drift profile has no column {name!r}")
        if col.meta.get("kind") != "numeric" or "quantiles" not in col.arrays:
            raise AisecInputError(f"drift profile column {name!r} is not a usable numeric column")
        q = np.asarray(col.arrays["quantiles"], dtype=float)
        q1, med, q3 = (float(np.quantile(q, p)) for p in (0.25, 0.5, 0.75))
        observed = (float(col.meta.get("min", q[0])), float(col.meta.get("max", q[-1])))
        low, high = robust_range(q1, q3, k, observed=observed, median=med)
        out.append({"name": name, "low": low, "high": high, "median": med})
    if not out:
        raise AisecInputError("drift profile has no numeric column to build OOD ranges from")
    return {"schema": REFERENCE_SCHEMA, "k": k, "rows": None, "source": source or "drift profile", "features": out}


def reference_from_drift_profile(
    path: str | os.PathLike[str], *, features: Sequence[str] | None = None, k: float = 3.0
) -> dict[str, Any]:
    """OOD ranges from a verified drift profile file (written by ``aisec profile build``, read by the drift check)."""
    try:
        from airflow_aisec.core.drift_profile import load_profile
    except ImportError:
        raise AisecInputError(
            f"{os.fspath(path)!r} is a drift profile but the drift engine (airflow_aisec.core.profile) is not installed"
        ) from None
    profile = load_profile(path)  # verifies header and payload hashes; fails closed
    return reference_from_profile_columns(profile.columns, features=features, k=k, source=os.fspath(path))


#: most features a reference may list.
MAX_REFERENCE_FEATURES = 100_000


def validate_reference(ref: Any, source: str) -> dict[str, Any]:
    """Check a reference (``{"features": [{"name", "low", "high"}, ...]}``) field by field.

    Refused with :class:`AisecInputError` naming the source (exit 2): not an object, a ``schema``
    other than ``aisec.inference-reference/v1``, no features, a feature without a unique non-empty
    name, ``low``/``high`` that are not finite numbers with ``low <= high``.
    """
    from airflow_aisec.utils.strictjson import expect

    expect(ref, dict, source)
    schema = ref.get("schema", REFERENCE_SCHEMA)
    if schema != REFERENCE_SCHEMA:
        raise AisecInputError(f"{source}: schema {str(schema)[:60]!r} is not {REFERENCE_SCHEMA}")
    feats = ref.get("features")
    if not isinstance(feats, list) or not feats:
        raise AisecInputError(f"{source}: reference profile must have a non-empty 'features' list")
    if len(feats) > MAX_REFERENCE_FEATURES:
        raise AisecInputError(f"{source}: more than {MAX_REFERENCE_FEATURES} features")
    names: set[str] = set()
    for i, f in enumerate(feats):
        where = f"{source}: features[{i}]"
        expect(f, dict, where)
        name = f.get("name", f"f{i}")
        if not isinstance(name, str) or not name or name in names:
            raise AisecInputError(f"{where}: name must be a unique non-empty string")
        names.add(name)
        low, high = f.get("low"), f.get("high")
        if not (_is_number(low) and _is_number(high) and math.isfinite(low) and math.isfinite(high) and low <= high):
            raise AisecInputError(f"reference feature {name[:60]!r} ({where}) needs finite numeric low <= high")
    return dict(ref)


def load_reference(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A reference dict from a path or mapping, validated (see :func:`validate_reference`).

    A path may be the JSON of :func:`build_reference_ranges` (read with strict JSON: duplicate keys,
    NaN, huge numbers, deep nesting are errors) or a drift profile file (``aisec profile build``).
    """
    from airflow_aisec.utils.strictjson import load_path

    if isinstance(source, Mapping):
        return validate_reference(dict(source), "reference profile")
    name = f"reference profile {os.fspath(source)!r}"
    if _is_drift_profile(source):
        return validate_reference(reference_from_drift_profile(source), name)
    if not os.path.exists(os.fspath(source)):
        raise AisecInputError(f"{name} does not exist")
    return validate_reference(load_path(source, source=name, max_bytes=64 * 1024 * 1024), name)


def _is_drift_profile(path: str | os.PathLike[str]) -> bool:
    try:
        with open(os.fspath(path), "rb") as fh:
            return fh.read(len(DRIFT_PROFILE_MAGIC)) == DRIFT_PROFILE_MAGIC
    except OSError:
        return False


def _is_ood(features: list[float], ranges: list[tuple[float, float]]) -> bool:
    if len(features) != len(ranges):
        return True
    return any(not (math.isfinite(v) and lo <= v <= hi) for v, (lo, hi) in zip(features, ranges, strict=True))
