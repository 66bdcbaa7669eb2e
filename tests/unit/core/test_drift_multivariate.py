"""The domain-classifier test catches a correlation change every univariate test misses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_aisec.core.drift import DriftConfig, run_drift
from airflow_aisec.core.drift_multivariate import (
    MultivariateConfig,
    domain_classifier_test,
    multivariate_drift_report,
)
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError


def _correlated(rng, n, rho):
    cov = [[1.0, rho], [rho, 1.0]]
    x = rng.multivariate_normal([0.0, 0.0], cov, size=n)
    return pd.DataFrame({"tenure": x[:, 0], "spend": x[:, 1], "plan": rng.choice(["a", "b"], n)})


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(42)
    return _correlated(rng, 2000, 0.8), _correlated(rng, 2000, 0.8), _correlated(rng, 2000, -0.8)


FAST = MultivariateConfig(permutations=200, max_rows=2000)


def test_correlation_flip_is_invisible_to_univariate_tests_but_caught_multivariately(frames):
    reference, _, flipped = frames
    univariate = run_drift(flipped, reference=reference, config=DriftConfig(correction="none")).to_dict()
    assert univariate["status"] == "pass"  # every marginal is unchanged: KS and chi-squared see nothing
    assert not any(f["severity"] == "high" for f in univariate["findings"])
    result = domain_classifier_test(reference, flipped, config=FAST)
    assert result["drift"] and result["auc"] > 0.8 and result["p_value"] < 0.01
    report = multivariate_drift_report(reference, flipped, config=FAST).to_dict()
    assert report["check"] == "drift" and report["status"] == "fail"
    assert {f["id"] for f in report["findings"]} == {"AISEC-DRIFT-MULTIVARIATE"}


def test_same_distribution_is_not_drift_and_is_deterministic(frames):
    reference, same, _ = frames
    first = domain_classifier_test(reference, same, config=FAST)
    assert not first["drift"] and first["auc"] < 0.55
    assert first == domain_classifier_test(reference, same, config=FAST)
    assert multivariate_drift_report(reference, same, config=FAST).to_dict()["status"] == "pass"


def test_p_value_is_a_valid_permutation_p_value(frames):
    reference, same, _ = frames
    result = domain_classifier_test(reference, same, config=FAST)
    assert 1 / 201 <= result["p_value"] <= 1.0


def test_refusals(frames):
    reference, same, _ = frames
    with pytest.raises(AisecUndecidableError, match="needs 50"):
        domain_classifier_test(reference.iloc[:10], same, config=FAST)
    with pytest.raises(AisecInputError, match="no column"):
        domain_classifier_test(reference, same.drop(columns=["spend"]), config=FAST)
    with pytest.raises(AisecInputError, match="infinite"):
        domain_classifier_test(reference, same.assign(spend=np.inf), config=FAST)
    with pytest.raises(AisecInputError, match="min_auc must be"):
        MultivariateConfig(min_auc=0.4)
    with pytest.raises(AisecInputError, match="alpha must be"):
        MultivariateConfig(alpha=float("nan"))


def test_cli_multivariate_flag(frames, tmp_path, capsys):
    import json

    from airflow_aisec.cli import main

    reference, _, flipped = frames
    reference.to_csv(tmp_path / "ref.csv", index=False)
    flipped.to_csv(tmp_path / "cur.csv", index=False)
    argv = ["drift", str(tmp_path / "cur.csv"), "--reference", str(tmp_path / "ref.csv"), "--format", "json"]
    assert main(argv) == 0  # univariate only: the flip is invisible
    capsys.readouterr()
    assert main([*argv, "--multivariate"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["multivariate_drift"] == 1
    assert "AISEC-DRIFT-MULTIVARIATE" in {f["id"] for f in report["findings"]}
    profile_argv = ["drift", str(tmp_path / "cur.csv"), "--profile", str(tmp_path / "x.prof"), "--multivariate"]
    assert main(profile_argv) == 2
