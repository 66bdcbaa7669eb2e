from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from airflow_aisec.core.validation import (
    PoisoningThresholds,
    build_reference_profile,
    load_expectations,
    read_table,
    validate_dataframe,
)
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import validate

LABEL = "target"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def profile(frame):
    return build_reference_profile(frame, label_column=LABEL)


def ids(report):
    return sorted(f.id for f in report.findings)


def test_clean_data_passes_expectations_and_heuristics(frame, profile):
    report = validate_dataframe(
        frame,
        subject="bc.csv",
        expectations=[
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": LABEL}},
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": LABEL, "value_set": [0, 1]}},
        ],
        reference=profile,
        label_column=LABEL,
    )
    assert report.status == "pass", report.summary
    assert report.metrics["expectations_evaluated"] == 2
    assert report.metrics["duplicate_row_share"] == 0.0
    validate(report.to_dict())
    json.dumps(report.to_dict())


def test_failed_expectation_carries_gx_observed_value(frame):
    import great_expectations as gx

    report = validate_dataframe(
        frame,
        subject="bc.csv",
        expectations=[gx.expectations.ExpectColumnMaxToBeBetween(column="mean radius", max_value=10)],
    )
    assert report.status == "fail"
    (finding,) = report.findings
    assert finding.id == "AISEC-DV-EXPECTATION"
    assert finding.location == "mean radius"
    assert finding.details["observed_value"] == pytest.approx(frame["mean radius"].max())
    assert "expect_column_max_to_be_between" in report.summary or "AISEC-DV-EXPECTATION" in report.summary


def test_warning_severity_expectation_only_warns(frame, tmp_path):
    suite = {
        "name": "s",
        "expectations": [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10_000}, "severity": "warning"}
        ],
    }
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    report = validate_dataframe(frame, subject="bc.csv", expectations=str(path))
    assert report.status == "warn"
    assert report.findings[0].severity == "low"
    assert report.findings[0].details["observed_value"] == len(frame)


def test_label_flipping_is_flagged_as_poisoning(frame, profile):
    poisoned = frame.copy()
    malignant = poisoned.index[poisoned[LABEL] == 0][:100]
    poisoned.loc[malignant, LABEL] = 1
    report = validate_dataframe(poisoned, subject="bc.csv", reference=profile, label_column=LABEL)
    assert ids(report) == ["AISEC-DV-LABEL-SHIFT"]
    shift = report.details["poisoning"]["label_shift"]
    assert shift["p_value"] < 0.01
    assert shift["max_share_change"] == pytest.approx(100 / len(frame), abs=1e-6)
    assert {"OWASP-ML02", "AML.T0020"} <= set(report.tags)


def test_small_label_noise_is_not_flagged(frame, profile):
    noisy = frame.copy()
    noisy.loc[noisy.index[noisy[LABEL] == 0][:3], LABEL] = 1
    report = validate_dataframe(noisy, subject="bc.csv", reference=profile, label_column=LABEL)
    assert report.status == "pass", report.summary


def test_duplicate_injection_is_flagged(frame, profile):
    dup = pd.concat([frame, frame.iloc[:20]], ignore_index=True)
    report = validate_dataframe(dup, subject="bc.csv", reference=profile, label_column=LABEL)
    assert "AISEC-DV-DUPLICATES" in ids(report)
    assert report.details["poisoning"]["duplicates"]["duplicate_rows"] == 20


def test_outlier_injection_is_flagged(frame, profile):
    rng = np.random.default_rng(0)
    injected = frame.sample(40, random_state=1).copy()
    injected["worst area"] = rng.uniform(50_000, 60_000, size=len(injected))
    data = pd.concat([frame, injected], ignore_index=True).drop_duplicates()
    report = validate_dataframe(data, subject="bc.csv", reference=profile, label_column=LABEL)
    assert "AISEC-DV-OUTLIERS" in ids(report)
    out = report.details["poisoning"]["outliers"]
    assert out["columns"]["worst area"] >= 40
    assert out["excess"] > 0.02


def test_new_categories_are_flagged():
    ref = pd.DataFrame({"color": ["red", "blue"] * 50, "x": np.arange(100.0), "y": ["a", "b"] * 50})
    cur = ref.copy()
    cur.loc[0, "color"] = "ultraviolet"
    cur.loc[1, "y"] = "c"
    report = validate_dataframe(cur, subject="t", reference=ref, label_column="y")
    assert "AISEC-DV-NEW-CATEGORY" in ids(report)
    locations = {f.location for f in report.findings if f.id == "AISEC-DV-NEW-CATEGORY"}
    assert locations == {"color", "y"}


def test_thresholds_can_disable_and_tighten_heuristics(frame, profile):
    dup = pd.concat([frame, frame.iloc[:20]], ignore_index=True)
    off = validate_dataframe(dup, subject="t", reference=profile, thresholds={"max_duplicate_share": None})
    assert off.status == "pass"
    with pytest.raises(AisecInputError, match="unknown poisoning threshold"):
        PoisoningThresholds.from_mapping({"nope": 1})
    with pytest.raises(AisecInputError, match="within \\[0, 1\\]"):
        PoisoningThresholds(max_duplicate_share=2)


def test_nothing_to_validate_fails_closed(frame):
    with pytest.raises(AisecUndecidableError, match="nothing to validate"):
        validate_dataframe(frame, subject="t")


def test_bad_suite_specs_name_the_input(frame, tmp_path):
    with pytest.raises(AisecInputError, match="unknown GX expectation type"):
        validate_dataframe(frame, subject="t", expectations=[{"type": "expect_the_moon", "kwargs": {}}])
    with pytest.raises(AisecInputError, match="does not exist"):
        load_expectations(str(tmp_path / "missing.json"))
    with pytest.raises(AisecInputError, match="label column 'nope'"):
        validate_dataframe(frame, subject="t", reference=frame, label_column="nope")


def test_read_table_fails_closed_on_missing_or_unknown(tmp_path):
    with pytest.raises(AisecUndecidableError, match="does not exist"):
        read_table(tmp_path / "gone.csv")
    with pytest.raises(AisecInputError, match="cannot tell the table format"):
        read_table(tmp_path / "data.xlsx")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(AisecUndecidableError, match="unreadable as parquet"):
        read_table(bad)


def test_poisoning_heuristics_are_registered_checks_in_report_order():
    from airflow_aisec.core.validation import POISONING

    assert POISONING.names() == ["label_shift", "duplicates", "outliers", "new_categories", "nulls"]
    assert all(check.doc and check.finds for check in POISONING)
