"""Figures for the training-data checks: provenance (hash + statement), GX validation, poisoning heuristics, split.

Usage: python benchmarks/bench_training_data.py [ROWS]   (default 500_000 rows × 20 features + label)
Prints seconds and rows/s per step; never pass/fail. Figures on a shared, loaded machine are noisy.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats  # noqa: F401  (import time excluded from the figures)
import sklearn.model_selection  # noqa: F401

from airflow_aisec.core.provenance import verify_dataset
from airflow_aisec.core.split import split_dataset
from airflow_aisec.core.validation import build_reference_profile, validate_dataframe


def timed(label: str, rows: int, fn):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"{label:<44} {dt:8.3f} s   {rows / dt:>12,.0f} rows/s")
    return out


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"f{i}" for i in range(20)])
    df["label"] = rng.integers(0, 3, size=rows)
    print(f"{rows:,} rows × {df.shape[1]} columns")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "data.parquet")
        df.to_parquet(path, index=False)
        size = path.stat().st_size
        import hashlib

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        timed(
            f"provenance verify ({size / 2**20:.0f} MiB parquet)",
            rows,
            lambda: verify_dataset(
                str(path), allow_sources=[tmp], expected_digest=digest, statement_path=Path(tmp, "s.json")
            ),
        )
        profile = timed("reference profile", rows, lambda: build_reference_profile(df, label_column="label"))
        timed(
            "poisoning heuristics (4 checks)",
            rows,
            lambda: validate_dataframe(df, subject="bench", reference=profile, label_column="label"),
        )
        suite = [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"}},
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "label", "value_set": [0, 1, 2]}},
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "f0", "min_value": -10, "max_value": 10},
            },
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "f1", "min_value": -1, "max_value": 1}},
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        ]
        import great_expectations  # noqa: F401  (import time excluded)

        timed(
            "GX suite, 5 expectations (ephemeral context)",
            rows,
            lambda: validate_dataframe(df, subject="b", expectations=suite),
        )
        timed(
            "stratified split + parquet + sha256",
            rows,
            lambda: split_dataset(
                df, output_dir=Path(tmp, "splits"), seed=1, stratify_column="label", validation_size=0.1
            ),
        )


if __name__ == "__main__":
    main()
