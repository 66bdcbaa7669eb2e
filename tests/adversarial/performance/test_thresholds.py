"""Thresholds that would silently switch the performance comparison off are refused."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.performance import evaluate_performance
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError


@pytest.fixture(scope="module")
def window(tmp_path_factory):
    path = tmp_path_factory.mktemp("perf") / "live.csv"
    labels = [0, 1] * 50
    pd.DataFrame({"label": labels, "pred": [1 - v for v in labels]}).to_csv(path, index=False)  # all wrong
    return str(path)


def run(path, **kwargs):
    return evaluate_performance(path, label_column="label", prediction_column="pred", **kwargs)


def test_no_baseline_is_not_a_pass(window) -> None:
    with pytest.raises(AisecInputError, match="no baseline"):
        run(window)


BAD_NUMBERS = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.floats(max_value=-1e-9),
    st.floats(min_value=1.0001),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)


@settings(max_examples=80)
@given(value=BAD_NUMBERS, where=st.sampled_from(["baseline", "global", "per-metric"]))
def test_nan_and_out_of_range_thresholds_are_refused(window, value, where) -> None:
    if isinstance(value, float) and not math.isnan(value) and 0.0 <= value <= 1.0:
        return
    kwargs = {"baseline": {"accuracy": 0.9}, "max_degradation": 0.05}
    if where == "baseline":
        kwargs["baseline"] = {"accuracy": value}
    elif where == "global":
        kwargs["max_degradation"] = value
    else:
        kwargs["max_degradation"] = {"accuracy": value}
    with pytest.raises(AisecInputError, match="must be a number in"):
        run(window, **kwargs)


def test_an_allowance_for_a_metric_without_baseline_is_refused(window) -> None:
    with pytest.raises(AisecInputError, match="have no baseline"):
        run(window, baseline={"accuracy": 0.9}, max_degradation={"acuracy": 0.01})


def test_a_model_that_gets_everything_wrong_fails(window) -> None:
    assert run(window, baseline={"accuracy": 0.9}).status == "fail"


def test_unlabelled_rows_are_counted_and_bounded_by_policy(tmp_path) -> None:
    path = tmp_path / "mostly_unlabelled.csv"
    pd.DataFrame({"label": [1, 0] + [None] * 98, "pred": [1, 0] + [0] * 98}).to_csv(path, index=False)
    report = run(str(path), baseline={"accuracy": 0.9})
    assert report.status == "pass" and report.metrics["n_unlabelled"] == 98
    with pytest.raises(AisecUndecidableError, match="98.0% of rows are unlabelled"):
        run(str(path), baseline={"accuracy": 0.9}, max_unlabelled_share=0.5)
