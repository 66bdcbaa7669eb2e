"""Hostile inputs to the robustness gate: exact exit codes, and no model code or attack runs on refusal."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import pytest

from airflow_aisec.cli import main
from tests.robustness_helpers import FAST, write_case


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return write_case(tmp_path_factory.mktemp("robust-adv"))


@pytest.fixture
def attacks(monkeypatch):
    """Record every attack run (the real attack still runs)."""
    from art.attacks.evasion import BoundaryAttack, HopSkipJump

    ran: list[str] = []
    for cls in (HopSkipJump, BoundaryAttack):
        real = cls.generate

        def generate(self, *args, _real=real, **kwargs):
            ran.append(type(self).__name__)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "generate", generate)
    return ran


def _cli(capsys, model, data, *extra, label="y"):
    argv = ["robustness", str(model), str(data), "--label", label, "--format", "json"]
    argv += [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
    rc = main([*argv, *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, (json.loads(out) if out.strip() else None), err


def _digest(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_baseline_passes_and_fails_with_exit_codes(case, capsys, attacks):
    rc, report, _ = _cli(capsys, case["model"], case["data"], "--digest", case["digest"], "--min-robust-accuracy", "0")
    assert rc == 0 and report["status"] == "pass" and attacks
    rc, report, _ = _cli(
        capsys, case["model"], case["data"], "--digest", case["digest"], "--epsilon", "3", "--min-robust-accuracy", "1"
    )
    assert rc == 1 and report["status"] == "fail"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_rows_are_an_error(case, tmp_path, capsys, attacks, bad):
    frame = case["frame"].copy()
    frame.loc[3, "f1"] = bad
    data = tmp_path / "holdout.csv"
    frame.to_csv(data, index=False)
    rc, report, err = _cli(capsys, case["model"], data, "--digest", case["digest"], "--min-robust-accuracy", "0.5")
    assert rc == 2 and report["status"] == "error"
    assert "NaN or infinite" in report["summary"] and not attacks


@pytest.mark.parametrize(
    ("label", "match"),
    [
        ("nope", "no label column 'nope'"),
        ("f0", "is also a feature column"),
        ("other", "the model does not predict"),
    ],
    ids=["missing", "a-feature-as-label", "a-numeric-column-as-label"],
)
def test_wrong_label_column_is_an_error(case, tmp_path, capsys, attacks, label, match):
    data = tmp_path / "holdout.csv"
    case["frame"].assign(other=range(len(case["frame"]))).to_csv(data, index=False)
    rc, report, _ = _cli(
        capsys, case["model"], data, "--digest", case["digest"], "--min-robust-accuracy", "0.5", label=label
    )
    assert rc == 2 and report["status"] == "error" and match in report["summary"] and not attacks


def test_features_other_than_the_fitted_ones_are_an_error(case, capsys, attacks):
    rc, report, _ = _cli(
        capsys,
        case["model"],
        case["data"],
        "--features",
        "f1",
        "f0",
        "f2",
        "--digest",
        case["digest"],
        "--min-robust-accuracy",
        "0.5",
    )
    assert rc == 2 and "not the ones the model was fitted with" in report["summary"] and not attacks


def test_non_numeric_feature_is_an_error(case, tmp_path, capsys, attacks):
    frame = case["frame"].copy()
    frame["f2"] = "x"
    data = tmp_path / "holdout.csv"
    frame.to_csv(data, index=False)
    rc, report, _ = _cli(capsys, case["model"], data, "--digest", case["digest"], "--min-robust-accuracy", "0.5")
    assert rc == 2 and "not numeric" in report["summary"] and not attacks


def test_a_regressor_is_not_attacked(case, tmp_path, capsys, attacks):
    import joblib
    from sklearn.linear_model import LinearRegression

    frame = case["frame"]
    path = tmp_path / "regressor.joblib"
    joblib.dump(LinearRegression().fit(frame[["f0", "f1", "f2"]], frame["f0"]), path)
    rc, report, _ = _cli(capsys, path, case["data"], "--digest", _digest(path), "--min-robust-accuracy", "0.5")
    assert rc == 2 and "not a fitted scikit-learn classifier" in report["summary"] and not attacks


class _Trojan:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


@pytest.mark.parametrize("digest", ["matching", "other"])
def test_malicious_model_never_runs(case, tmp_path, capsys, attacks, digest):
    sentinel = tmp_path / "PWNED"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Trojan(sentinel)))
    given = _digest(path) if digest == "matching" else case["digest"]
    rc, report, _ = _cli(capsys, path, case["data"], "--digest", given, "--min-robust-accuracy", "0.5")
    assert rc == 2 and report["status"] == "error"
    assert not sentinel.exists() and not attacks


def test_a_changed_model_is_refused_before_loading(case, tmp_path, capsys, attacks):
    path = tmp_path / "model.joblib"
    path.write_bytes(open(case["model"], "rb").read() + b"\0")
    rc, report, _ = _cli(capsys, path, case["data"], "--digest", case["digest"], "--min-robust-accuracy", "0.5")
    assert rc == 2 and "digest mismatch" in report["summary"] and not attacks


@pytest.mark.parametrize(
    "extra",
    [
        [],  # no digest or manifest: argparse refuses
        ["--digest", "abc"],
        ["--digest", "0" * 64],  # a threshold is missing
        ["--digest", "0" * 64, "--min-robust-accuracy", "nan"],
        ["--digest", "0" * 64, "--min-robust-accuracy", "0.5", "--time-budget", "-1"],
        ["--digest", "0" * 64, "--min-robust-accuracy", "0.5", "--epsilon", "inf"],
    ],
    ids=["no-digest", "bad-digest", "no-threshold", "nan-threshold", "negative-budget", "inf-epsilon"],
)
def test_bad_arguments_are_exit_2(case, capsys, attacks, extra):
    rc, _, _ = _cli(capsys, case["model"], case["data"], *extra)
    assert rc == 2 and not attacks
