"""The adversarial-robustness gate with the real Adversarial Robustness Toolbox and scikit-learn."""

from __future__ import annotations

import pytest

from airflow_aisec.core.robustness import RobustnessConfig, evaluate_robustness
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from tests.robustness_helpers import FAST, write_case


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return write_case(tmp_path_factory.mktemp("robust"))


def _run(case, **config):
    settings = {**FAST, **config}
    return evaluate_robustness(
        case["data"],
        model_path=case["model"],
        model_digest=case["digest"],
        label_column="y",
        config=RobustnessConfig(**settings),
    ).to_dict()


def test_reports_clean_and_adversarial_accuracy_and_is_deterministic(case):
    first = _run(case, epsilon=3.0, min_robust_accuracy=0.0, seed=3)
    again = _run(case, epsilon=3.0, min_robust_accuracy=0.0, seed=3)
    m = first["metrics"]
    assert first["check"] == "robustness" and first["status"] == "pass"
    assert m["n_rows"] == 6 and m["n_queries"] > 0 and m["partial"] == 0
    assert m["clean_accuracy"] >= m["adversarial_accuracy"]
    assert m["accuracy_drop"] == pytest.approx(m["clean_accuracy"] - m["adversarial_accuracy"], abs=1e-6)
    assert m["attack_success_rate"] > 0 and m["mean_perturbation_l2"] > 0  # a linear model is attackable
    timing = {"duration_seconds", "attack_seconds"}
    assert {k: v for k, v in m.items() if k not in timing} == {
        k: v for k, v in again["metrics"].items() if k not in timing
    }
    assert first["details"]["rows"] == again["details"]["rows"]


def test_gate_fails_when_a_large_perturbation_flips_predictions(case):
    loose = _run(case, epsilon=3.0, min_robust_accuracy=0.99)
    assert loose["status"] == "fail"
    assert {f["id"] for f in loose["findings"]} == {"AISEC-ROBUST-LOW"}
    drop = _run(case, epsilon=3.0, max_accuracy_drop=0.0)
    assert drop["status"] == "fail" and {f["id"] for f in drop["findings"]} == {"AISEC-ROBUST-DROP"}


def test_gate_passes_when_no_attack_fits_the_bound(case):
    tight = _run(case, epsilon=1e-6, min_robust_accuracy=0.9, max_accuracy_drop=0.0)
    assert tight["status"] == "pass", tight["summary"]
    assert tight["metrics"]["attack_success_rate"] == 0.0
    assert tight["metrics"]["adversarial_accuracy"] == tight["metrics"]["clean_accuracy"]


def test_boundary_attack_runs(case):
    report = _run(case, attack="boundary", epsilon=3.0, min_robust_accuracy=0.0)
    assert report["details"]["attack"] == "boundary" and report["metrics"]["n_queries"] > 0


def test_exhausted_budget_is_an_error_unless_partial_is_accepted(case):
    with pytest.raises(AisecUndecidableError, match="did not finish within"):
        _run(case, time_budget_seconds=1e-9, min_robust_accuracy=0.5)


def test_partial_result_reports_only_attacked_rows(case, monkeypatch):
    from art.attacks.evasion import HopSkipJump

    import airflow_aisec.core.robustness as rb

    monkeypatch.setattr(rb, "_BATCH", 2)
    real_generate, real_clock = HopSkipJump.generate, rb.time.monotonic
    late = {"by": 0.0}

    def generate(self, *args, **kwargs):  # the clock jumps past the budget once the first batch is done
        result = real_generate(self, *args, **kwargs)
        late["by"] = 1e6
        return result

    monkeypatch.setattr(HopSkipJump, "generate", generate)
    monkeypatch.setattr(rb.time, "monotonic", lambda: real_clock() + late["by"])
    report = _run(case, time_budget_seconds=100, min_robust_accuracy=0.0, accept_partial=True)
    assert report["metrics"]["partial"] == 1
    assert report["metrics"]["n_rows"] == 2 and report["metrics"]["n_sampled"] == 6
    assert "AISEC-ROBUST-PARTIAL" in {f["id"] for f in report["findings"]}
    late["by"] = 0.0
    with pytest.raises(AisecUndecidableError, match="2 of 6 rows attacked"):
        _run(case, time_budget_seconds=100, min_robust_accuracy=0.0)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({}, "without a threshold"),
        ({"min_robust_accuracy": 1.5}, "min_robust_accuracy must be a number in"),
        ({"min_robust_accuracy": 0.5, "attack": "fgsm"}, "attack must be one of"),
        ({"min_robust_accuracy": 0.5, "epsilon": float("nan")}, "epsilon must be a positive finite"),
        ({"min_robust_accuracy": 0.5, "sample_size": 0}, "sample_size must be a positive integer"),
        ({"max_accuracy_drop": float("inf")}, "max_accuracy_drop must be a number in"),
    ],
)
def test_config_refuses_gates_that_would_pass_anything(config, match):
    with pytest.raises(AisecInputError, match=match):
        RobustnessConfig(**config)


def test_missing_toolbox_is_an_input_error_naming_the_extra(case, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "art.attacks.evasion", None)  # as if not installed
    with pytest.raises(AisecInputError, match=r"airflow-aisec\[robustness\]"):
        _run(case, min_robust_accuracy=0.5)
