"""Reproducible train/test(/validation) splits with a recorded seed and per-split digests.

The split is a deterministic function of (input rows, seed, sizes, stratify column): scikit-learn's
``train_test_split`` with ``random_state=seed`` shuffles, optionally stratified. Each split is written
as Parquet (atomically) with a deterministic writer configuration, so the same input and the same
seed give byte-identical files — and identical SHA-256 digests, which the report records together
with row counts and class balance. A different seed gives different files and digests.

No Airflow import; pandas / scikit-learn / pyarrow are imported inside functions.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report

if TYPE_CHECKING:
    import pandas as pd

SPLIT_NAMES = ("train", "test", "validation")


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """Serialise ``df`` to Parquet deterministically (no index, fixed compression, no timestamps)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    # dictionary-encode only non-float columns: on continuous features it costs ~3x and saves nothing
    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", use_dictionary=dictionary, write_statistics=True)
    return buf.getvalue()


def class_balance(df: pd.DataFrame, column: str | None) -> dict[str, Any] | None:
    """``{"counts": {label: n}, "shares": {label: share}}`` of ``column`` (``None`` without a column)."""
    if column is None:
        return None
    counts = df[column].value_counts(dropna=False).sort_index()
    total = int(counts.sum()) or 1
    return {
        "counts": {str(k): int(v) for k, v in counts.items()},
        "shares": {str(k): round(int(v) / total, 6) for k, v in counts.items()},
    }


def split_frame(
    df: pd.DataFrame,
    *,
    seed: int,
    test_size: float,
    validation_size: float = 0.0,
    stratify_column: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Split ``df`` into ``train``/``test`` (and ``validation`` when ``validation_size > 0``).

    Sizes are fractions of the whole dataset. Deterministic for a given ``seed``.
    """
    from sklearn.model_selection import train_test_split

    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise AisecInputError(f"seed must be an integer in [0, 2**32), not {seed!r}")
    if not 0.0 < test_size < 1.0:
        raise AisecInputError(f"test_size must be a fraction in (0, 1), not {test_size!r}")
    if not 0.0 <= validation_size < 1.0 or test_size + validation_size >= 1.0:
        raise AisecInputError(
            f"validation_size must be in [0, 1) with test_size + validation_size < 1, not {validation_size!r}"
        )
    if stratify_column is not None and stratify_column not in df.columns:
        raise AisecInputError(f"stratify column {stratify_column!r} is not in the dataset")
    if len(df) < 3:
        raise AisecUndecidableError(f"cannot split a dataset of {len(df)} row(s)")
    strat = df[stratify_column] if stratify_column else None
    try:
        rest, test = train_test_split(df, test_size=test_size, random_state=seed, shuffle=True, stratify=strat)
        splits = {"train": rest, "test": test}
        if validation_size > 0:
            rel = validation_size / (1.0 - test_size)
            strat_rest = rest[stratify_column] if stratify_column else None
            train, val = train_test_split(rest, test_size=rel, random_state=seed, shuffle=True, stratify=strat_rest)
            splits = {"train": train, "test": test, "validation": val}
    except ValueError as exc:  # e.g. a class with a single member under stratification
        raise AisecUndecidableError(f"cannot split the dataset: {exc}") from exc
    return {name: part.reset_index(drop=True) for name, part in splits.items()}


def split_dataset(
    df: pd.DataFrame,
    *,
    output_dir: str | os.PathLike[str],
    seed: int,
    test_size: float = 0.2,
    validation_size: float = 0.0,
    stratify_column: str | None = None,
    subject: str = "",
    prefix: str = "",
) -> Report:
    """Split ``df`` reproducibly, write ``<output_dir>/<prefix><split>.parquet`` atomically, report digests.

    The report's ``details.splits`` maps each split to ``{path, rows, sha256, class_balance}`` and
    ``details.parameters`` records the seed and sizes.
    """
    import hashlib

    from airflow_aisec.utils.fs import write_bytes_atomic

    parts = split_frame(
        df, seed=seed, test_size=test_size, validation_size=validation_size, stratify_column=stratify_column
    )
    report = Report.start("split", subject or str(output_dir), tags=["AML.M0025"])
    out = Path(output_dir)
    splits: dict[str, Any] = {}
    for name, part in parts.items():
        path = out / f"{prefix}{name}.parquet"
        data = parquet_bytes(part)
        write_bytes_atomic(path, data)
        digest = hashlib.sha256(data).hexdigest()  # of the bytes written, not of whatever is there now
        splits[name] = {
            "path": str(path),
            "rows": len(part),
            "sha256": digest,
            "class_balance": class_balance(part, stratify_column),
        }
        report.metrics[f"rows_{name}"] = len(part)
    report.details["splits"] = splits
    report.details["parameters"] = {
        "seed": seed,
        "test_size": test_size,
        "validation_size": validation_size,
        "stratify_column": stratify_column,
        "input_rows": len(df),
    }
    report.metrics["seed"] = seed
    summary = ", ".join(f"{n} {s['rows']} rows sha256:{s['sha256'][:12]}" for n, s in splits.items())
    return report.finish("pass", f"seed {seed}: {summary}")


def split_digests(report: Mapping[str, Any]) -> dict[str, str]:
    """``{split: sha256}`` from a split report dict (e.g. the operator's XCom)."""
    return {name: s["sha256"] for name, s in report.get("details", {}).get("splits", {}).items()}
