"""Simulated live windows for monitoring drills and the example monitoring DAG (demo code, not in the wheel).

A *live window* is a batch of production inputs a monitoring run checks: here drawn from a reference
dataset, optionally with an injected mean shift (drift drill) or tampered after it was sealed
(poisoning drill). Deterministic for a given seed. pandas/numpy are imported inside functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import AisecInputError

#: file names inside a window directory
FEATURES_FILE = "features.csv"
LABELLED_FILE = "labelled.csv"


def bundled_reference(name: str = "breast_cancer") -> Any:
    """A scikit-learn bundled dataset as a DataFrame with a ``target`` column (no download)."""
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}", None)
    if loader is None or name.startswith(("svmlight", "files", "sample")):
        raise AisecInputError(f"reference dataset {name!r} is not a scikit-learn bundled dataset")
    return loader(as_frame=True).frame


def read_table(path: str | os.PathLike[str]) -> Any:
    """Read a CSV or Parquet file into a DataFrame, naming the file when it cannot be read."""
    import pandas as pd

    path = str(path)
    if not os.path.isfile(path):
        raise AisecInputError(f"data file {path!r} does not exist")
    try:
        return pd.read_parquet(path) if path.endswith((".parquet", ".pq")) else pd.read_csv(path)
    except Exception as exc:  # pandas/pyarrow raise many types for bad files
        raise AisecInputError(f"cannot read data file {path!r}: {exc}") from exc


def shifted_features(frame: Any, label_column: str | None, count: int | None) -> list[str]:
    """The numeric feature columns a drill shifts: the first ``count`` (default: a third, at least 1)."""
    import pandas as pd

    numeric = [
        c for c in frame.columns if c != label_column and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].std() > 0
    ]
    if not numeric:
        raise AisecInputError("the reference has no non-constant numeric feature to shift")
    n = max(1, len(numeric) // 3) if count is None else count
    if not 0 <= n <= len(numeric):
        raise AisecInputError(f"shift_features must be between 0 and {len(numeric)}, not {n}")
    return numeric[:n]


def simulate_window(
    reference: Any,
    *,
    rows: int = 200,
    shift: float = 0.0,
    shift_features: int | Sequence[str] | None = None,
    label_column: str | None = "target",
    labelled_fraction: float = 0.5,
    seed: int = 0,
) -> tuple[Any, Any, dict[str, Any]]:
    """Draw a live window from ``reference`` and shift some numeric features by ``shift`` × their std.

    :returns: ``(features, labelled, info)``: the window without the label; a labelled subset (the
        first ``labelled_fraction`` of the window, label included); what was done.
    """
    import numpy as np

    if rows < 1:
        raise AisecInputError(f"rows must be >= 1, not {rows}")
    if not 0 < labelled_fraction <= 1:
        raise AisecInputError(f"labelled_fraction must be in (0, 1], not {labelled_fraction}")
    if label_column is not None and label_column not in reference.columns:
        raise AisecInputError(f"label column {label_column!r} is not in the reference")
    rng = np.random.default_rng(seed)
    index = rng.choice(len(reference), size=rows, replace=rows > len(reference))
    window = reference.iloc[index].reset_index(drop=True).copy()
    if isinstance(shift_features, (list, tuple)):
        missing = [c for c in shift_features if c not in reference.columns]
        if missing:
            raise AisecInputError(f"shift_features {missing} are not columns of the reference")
        columns = list(shift_features)
    else:
        columns = shifted_features(reference, label_column, shift_features if isinstance(shift_features, int) else None)
    if shift:
        for column in columns:
            window[column] = window[column].astype("float64") + shift * float(reference[column].std())
    labelled = window.iloc[: max(1, int(round(rows * labelled_fraction)))].reset_index(drop=True)
    features = window.drop(columns=[label_column]) if label_column else window
    info = {"rows": rows, "shift": shift, "shifted_features": columns if shift else [], "seed": seed}
    return features, labelled, info


def write_window(directory: str | os.PathLike[str], features: Any, labelled: Any) -> dict[str, str]:
    """Write the window files atomically into ``directory``; return their paths."""
    from airflow_aisec.utils.fs import write_text_atomic

    Path(directory).mkdir(parents=True, exist_ok=True)
    paths = {"features": os.path.join(directory, FEATURES_FILE), "labelled": os.path.join(directory, LABELLED_FILE)}
    write_text_atomic(paths["features"], features.to_csv(index=False))
    write_text_atomic(paths["labelled"], labelled.to_csv(index=False))
    return paths


def tamper_window(directory: str | os.PathLike[str], *, rows: int = 20, scale: float = 8.0, seed: int = 1) -> int:
    """Poisoning drill: append ``rows`` crafted rows (far outside the data) to the sealed window.

    Rewrites ``features.csv`` in place (atomically) — what an attacker with write access to the landing
    zone would do after the window was sealed. Returns the number of rows added.
    """
    import numpy as np
    import pandas as pd

    from airflow_aisec.utils.fs import write_text_atomic

    path = os.path.join(directory, FEATURES_FILE)
    frame = read_table(path)
    rng = np.random.default_rng(seed)
    crafted = frame.sample(n=min(rows, len(frame)), random_state=seed, replace=rows > len(frame)).copy()
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    for column in numeric:
        crafted[column] = crafted[column].astype("float64") + scale * float(frame[column].std() or 1.0) * rng.random()
    write_text_atomic(path, pd.concat([frame, crafted], ignore_index=True).to_csv(index=False))
    return len(crafted)
