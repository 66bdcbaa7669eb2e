"""Data validation under hostile data: every tampering class ends in ``fail`` or ``error``, never ``pass``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.validation import build_reference_profile, load_reference, validate_dataframe
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

LABEL = "label"


def reference_frame(seed: int = 0, rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, rows),
            "y": rng.normal(10, 2, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            LABEL: rng.choice([0, 1], rows, p=[0.6, 0.4]),
        }
    )


REFERENCE = reference_frame()
PROFILE = build_reference_profile(REFERENCE, label_column=LABEL)


def check(df: pd.DataFrame, **thresholds: float | None) -> str:
    try:
        report = validate_dataframe(
            df, subject="train.csv", reference=PROFILE, label_column=LABEL, thresholds=thresholds or None
        )
    except (AisecInputError, AisecUndecidableError):
        return "error"
    return report.status


def test_clean_data_from_the_same_distribution_passes() -> None:
    assert check(reference_frame(seed=1)) == "pass"


def _drop(df, col, rng):
    return df.drop(columns=[col])


def _rename(df, col, rng):
    return df.rename(columns={col: col + "_"})


def _add(df, col, rng):
    return df.assign(trigger=rng.normal(0, 1, len(df)))


def _stringify(df, col, rng):
    out = df.copy()
    if col in ("x", "y"):
        out[col] = out[col].map(lambda v: f"{v:.3f}")
        return out
    return _blank(df, col, rng)


def _blank(df, col, rng):
    out = df.copy()
    rows = rng.choice(len(out), size=len(out) // 10, replace=False)
    out[col] = out[col].astype(object)
    out.loc[rows, col] = None
    return out


def _relabel(df, col, rng):
    out = df.copy()
    out[LABEL] = 7
    return out


TAMPERING = {"drop": _drop, "rename": _rename, "add": _add, "stringify": _stringify, "blank": _blank}


@settings(max_examples=60)
@given(
    how=st.sampled_from(sorted(TAMPERING)),
    col=st.sampled_from(["x", "y", "colour", LABEL]),
    seed=st.integers(0, 2**16),
)
def test_schema_and_value_tampering_never_passes(how: str, col: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    tampered = TAMPERING[how](reference_frame(seed=seed % 7 + 1), col, rng)
    assert check(tampered) in ("fail", "error"), (how, col)


@pytest.mark.parametrize("disabled", [{}, {"max_new_category_share": None}])
def test_every_label_replaced_by_an_unseen_one_is_a_shift_even_without_the_category_rule(disabled) -> None:
    df = _relabel(reference_frame(seed=3), LABEL, None)
    assert check(df, **disabled) == "fail"


def test_an_empty_dataset_cannot_pass_vacuously() -> None:
    with pytest.raises(AisecUndecidableError, match="has no rows"):
        validate_dataframe(
            REFERENCE.iloc[0:0],
            subject="empty.csv",
            expectations=[{"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0}}],
        )


def test_an_expectation_that_raises_is_an_error_not_a_warning() -> None:
    suite = [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "no_such_column"}, "severity": "warning"}
    ]
    with pytest.raises(AisecUndecidableError, match="raised instead of evaluating"):
        validate_dataframe(REFERENCE, subject="train.csv", expectations=suite)


HOSTILE_PROFILES = {
    "duplicate key": '{"schema": "aisec.reference-profile/v1", "rows": 5, "rows": 6, "columns": []}',
    "numeric range not finite": json.dumps(
        {**PROFILE, "numeric": {**PROFILE["numeric"], "x": {"low": -1e308, "high": None}}}
    ),
    "inverted range": json.dumps({**PROFILE, "numeric": {**PROFILE["numeric"], "x": {"low": 5, "high": -5}}}),
    "negative count": json.dumps({**PROFILE, "label_counts": {"0": -10, "1": 5}}),
    "bool count": json.dumps({**PROFILE, "label_counts": {"0": True, "1": 5}}),
    "share out of range": json.dumps({**PROFILE, "outside_share": 7}),
    "category not a string": json.dumps({**PROFILE, "categorical": {"colour": [1, 2]}}),
    "profiled column not listed": json.dumps(
        {**PROFILE, "numeric": {**PROFILE["numeric"], "ghost": {"low": 0, "high": 1}}}
    ),
    "huge number": json.dumps({**PROFILE, "rows": 1}).replace('"rows": 1', '"rows": ' + "9" * 400),
    "deep nesting": '{"schema": "aisec.reference-profile/v1", "x": ' + "[" * 500 + "]" * 500 + "}",
    "wrong schema": json.dumps({**PROFILE, "schema": "aisec.reference-profile/v0"}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PROFILES))
def test_hostile_reference_profiles_are_errors(tmp_path, name: str) -> None:
    path = tmp_path / "ref.json"
    path.write_text(HOSTILE_PROFILES[name])
    with pytest.raises(AisecInputError, match="reference profile"):
        load_reference(str(path), label_column=LABEL, iqr_k=3.0)


@pytest.mark.parametrize("with_reference", [False, True])
@pytest.mark.parametrize("second", ["x", 1, "colour"])
def test_duplicate_column_names_are_refused_not_guessed(with_reference: bool, second: object) -> None:
    # two columns named "x" (or 1 and "1"): one in range, one poisoned — neither may be picked silently
    df = REFERENCE.copy()
    if second == 1:
        df = df.rename(columns={"x": "1"})
    poisoned = pd.DataFrame({second: np.full(len(df), 1e9)})
    df = pd.concat([df, poisoned], axis=1)
    column = "1" if second == 1 else str(second)
    suite = [{"type": "expect_column_values_to_be_between", "kwargs": {"column": column, "min_value": -10}}]
    with pytest.raises(AisecInputError, match="duplicate column name"):
        validate_dataframe(
            df,
            subject="train.csv",
            expectations=suite,
            reference=PROFILE if with_reference else None,
            label_column=LABEL if with_reference else None,
        )
    with pytest.raises(AisecInputError, match="duplicate column name"):
        build_reference_profile(df, label_column=LABEL)
