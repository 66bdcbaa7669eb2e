"""Adversarial-robustness gate: black-box evasion attacks on a verified scikit-learn classifier.

The model is loaded only through :func:`airflow_aisec.core.model_loading.load_verified_model` (its
SHA-256 is checked and the same bytes are scanned before they are deserialised). A seeded sample of
held-out rows is attacked with a decision-based attack of the Adversarial Robustness Toolbox
(HopSkipJump or the boundary attack), which only queries the model's predictions, as an attacker
behind an inference API would.

An attack *succeeds* on a row when the model classified the row correctly and the attack found an
input the model classifies differently whose perturbation, measured as the L2 norm of the change in
units of each feature's standard deviation on the sample, is at most ``epsilon``. Decision-based
attacks always find *some* misclassified input given an unbounded perturbation, so the bound is what
gives "robust" a meaning.

Reported: clean accuracy, adversarial (robust) accuracy, their drop, the attack success rate over the
correctly classified rows, the mean perturbation norm of the misclassifying inputs the attack found
(within the bound or not: how far the decision boundary is) and the number of
model queries. The gate fails on robust accuracy below ``min_robust_accuracy`` or a drop above
``max_accuracy_drop`` (at least one is required: a gate without a threshold would pass anything).

Time-bounded: the wall-clock budget is checked on every model query; when it runs out the attack
stops. The result is then an ``error`` unless ``accept_partial`` is set, in which case the rows
attacked so far are reported (``partial``), and at least one row must have been attacked.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_aisec.exceptions import AisecCheckFailed, AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report

#: OWASP ML01 input manipulation; MITRE ATLAS AML.T0043 craft adversarial data.
TAGS = ("OWASP-ML01", "AML.T0043")
ATTACKS = ("hopskipjump", "boundary")
F_LOW = "AISEC-ROBUST-LOW"
F_DROP = "AISEC-ROBUST-DROP"
F_PARTIAL = "AISEC-ROBUST-PARTIAL"
#: rows attacked per call to the attack (the budget is also checked on every query)
_BATCH = 5


@dataclass(frozen=True)
class RobustnessConfig:
    """Attack and gate settings.

    :param attack: ``hopskipjump`` (default) or ``boundary``.
    :param sample_size: held-out rows attacked (seeded sample; all rows when fewer).
    :param epsilon: largest perturbation that counts, L2 norm in per-feature standard deviations.
    :param max_iter: attack iterations per row.
    :param max_eval: HopSkipJump gradient-estimation queries per iteration.
    :param seed: seeds the sample and the attack (same inputs and seed → same report metrics).
    :param time_budget_seconds: wall-clock budget of the attack.
    :param accept_partial: when the budget runs out, report the rows attacked so far instead of an error.
    :param min_robust_accuracy: robust accuracy below this → ``fail``.
    :param max_accuracy_drop: clean minus robust accuracy above this → ``fail``.
    """

    attack: str = "hopskipjump"
    sample_size: int = 50
    epsilon: float = 0.5
    max_iter: int = 5
    max_eval: int = 100
    seed: int = 0
    time_budget_seconds: float = 120.0
    accept_partial: bool = False
    min_robust_accuracy: float | None = None
    max_accuracy_drop: float | None = None

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise AisecInputError(f"attack must be one of {ATTACKS}, not {self.attack!r}")
        for name in ("sample_size", "max_iter", "max_eval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AisecInputError(f"{name} must be a positive integer, not {value!r}")
        for name in ("epsilon", "time_budget_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
                raise AisecInputError(f"{name} must be a positive finite number, not {value!r}")
        for name in ("min_robust_accuracy", "max_accuracy_drop"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0
            ):
                raise AisecInputError(f"{name} must be a number in [0, 1], not {value!r}")
        if self.min_robust_accuracy is None and self.max_accuracy_drop is None:
            raise AisecInputError(
                "give min_robust_accuracy and/or max_accuracy_drop: a robustness gate without a threshold passes anything"
            )


class _BudgetExceeded(Exception):
    pass


def _read(data: Any, label_column: str) -> tuple[Any, str]:
    """Every column of ``data`` as a DataFrame (the label column must be there)."""
    import pandas as pd

    from airflow_aisec.core.tabular import open_source

    source = open_source(data)
    if label_column not in source.columns:
        raise AisecInputError(f"data {source.name} has no label column {label_column!r}")
    frame = pd.DataFrame({c: source.read_column(c).to_pandas() for c in source.columns})
    if len(frame) == 0:
        raise AisecUndecidableError(f"data {source.name} has no rows")
    return frame, source.name


def _feature_names(
    frame: Any, model: Any, label_column: str, feature_columns: Sequence[str] | None, name: str
) -> list[str]:
    """The model's inputs: ``feature_columns``, else the names the model was fitted with, else all but the label."""
    fitted = [str(c) for c in getattr(model, "feature_names_in_", [])]
    names = list(feature_columns) if feature_columns else (fitted or [c for c in frame.columns if c != label_column])
    if fitted and names != fitted:
        raise AisecInputError(f"feature columns {names[:10]} are not the ones the model was fitted with {fitted[:10]}")
    missing = [c for c in names if c not in frame.columns]
    if missing or not names:
        raise AisecInputError(f"data {name} has no feature column(s) {missing or '(none)'}")
    if label_column in names:
        raise AisecInputError(f"the label column {label_column!r} is also a feature column")
    return names


def _features(frame: Any, names: list[str], label_column: str, name: str) -> tuple[Any, Any]:
    """The numeric feature matrix and the labels; refuses non-finite or non-numeric data."""
    import numpy as np
    import pandas as pd

    non_numeric = [c for c in names if not pd.api.types.is_numeric_dtype(frame[c]) or frame[c].dtype == bool]
    if non_numeric:
        raise AisecInputError(f"data {name}: feature column(s) {non_numeric} are not numeric")
    x = frame[names].to_numpy(dtype=float)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise AisecInputError(
            f"data {name}: {int(bad.sum())} row(s) have NaN or infinite features: "
            "robustness cannot be measured on them (clean the held-out set first)"
        )
    if frame[label_column].isna().any():
        raise AisecInputError(f"data {name}: label column {label_column!r} has missing values")
    return x, frame[label_column].to_numpy()


def _classifier(model: Any, what: str) -> Any:
    from sklearn.base import is_classifier

    if not (is_classifier(model) and hasattr(model, "classes_") and callable(getattr(model, "predict", None))):
        raise AisecInputError(f"{what} is not a fitted scikit-learn classifier ({type(model).__name__})")
    return model


def _label_indices(model: Any, y: Any, label_column: str) -> Any:
    import numpy as np

    classes = list(model.classes_)
    lookup = {str(c): i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in y} - set(lookup))
    if unknown:
        raise AisecInputError(
            f"label column {label_column!r} has value(s) {unknown[:5]} the model does not predict "
            f"(classes {[str(c) for c in classes][:10]}): wrong label column?"
        )
    return np.array([lookup[str(v)] for v in y], dtype=int)


def evaluate_robustness(
    data: Any,
    *,
    model_path: str,
    model_digest: str | None = None,
    manifest_path: str | None = None,
    model_allow: Sequence[str] = (),
    label_column: str,
    feature_columns: Sequence[str] | None = None,
    config: RobustnessConfig,
    subject: str | None = None,
) -> Report:
    """Attack a sample of ``data`` (held-out rows) and gate on robust accuracy (module docstring).

    :raises AisecInputError: bad inputs (columns, NaN/inf rows, unknown labels, not a classifier, no digest).
    :raises AisecUndecidableError: the model cannot be verified or loaded, or the budget ran out.
    """
    import numpy as np

    from airflow_aisec.core import model_loading

    frame, name = _read(data, label_column)
    if not model_digest and not manifest_path:
        raise AisecInputError(f"model {model_path}: a model digest (or manifest) is required to load it (fail closed)")
    try:
        verified = model_loading.load_verified_model(
            model_path, expected_digest=model_digest, manifest_path=manifest_path, allow=model_allow
        )
    except AisecCheckFailed as exc:
        raise AisecUndecidableError(f"{exc}; robustness cannot be evaluated (refusing to load it)") from None
    model = _classifier(verified.model, f"model {model_path}")
    names = _feature_names(frame, model, label_column, feature_columns, name)
    x, y_raw = _features(frame, names, label_column, name)
    y = _label_indices(model, y_raw, label_column)
    rng = np.random.default_rng(config.seed)
    take = np.sort(rng.choice(len(x), size=min(config.sample_size, len(x)), replace=False))
    xs, ys = x[take], y[take]
    report = Report.start("robustness", subject or f"{model_path} on {name}", tags=TAGS)
    outcome = _attack(model, names, xs, ys, config)
    n = len(xs)
    if outcome["timed_out"] and not config.accept_partial:
        raise AisecUndecidableError(
            f"the {config.attack} attack did not finish within {config.time_budget_seconds:g}s "
            f"({outcome['attacked']} of {n} rows attacked); raise the budget or accept a partial result"
        )
    n_eval = outcome["evaluated"]
    if n_eval == 0:
        raise AisecUndecidableError(f"no row could be attacked within {config.time_budget_seconds:g}s")
    correct = outcome["clean_correct"][:n_eval]
    success = outcome["success"][:n_eval]
    clean_acc = float(correct.mean())
    robust_acc = float((correct & ~success).mean())
    norms = outcome["norms"][:n_eval][outcome["flipped"][:n_eval]]  # every misclassifying input found, any size
    metrics = {
        "clean_accuracy": round(clean_acc, 6),
        "adversarial_accuracy": round(robust_acc, 6),
        "accuracy_drop": round(clean_acc - robust_acc, 6),
        "attack_success_rate": round(float(success.sum() / correct.sum()), 6) if correct.any() else 0.0,
        "mean_perturbation_l2": round(float(norms.mean()), 6) if len(norms) else None,
        "epsilon": config.epsilon,
        "n_rows": n_eval,
        "n_sampled": n,
        "n_queries": outcome["queries"],
        "partial": int(bool(outcome["timed_out"])),
        "attack_seconds": round(outcome["seconds"], 3),
    }
    report.metrics.update(metrics)
    report.details.update(
        attack=config.attack,
        config={k: getattr(config, k) for k in RobustnessConfig.__dataclass_fields__},
        features=names,
        classes=[str(c) for c in model.classes_],
        model={"path": model_path, "sha256": verified.sha256, "evidence": verified.evidence},
        rows=[int(i) for i in take[:n_eval]],
    )
    return _gate(report, metrics, config, n, n_eval)


def _gate(report: Report, metrics: dict[str, Any], config: RobustnessConfig, n: int, n_eval: int) -> Report:
    robust, drop = metrics["adversarial_accuracy"], metrics["accuracy_drop"]
    if config.min_robust_accuracy is not None and robust < config.min_robust_accuracy:
        report.add_finding(
            F_LOW,
            "high",
            f"adversarial accuracy {robust:.4f} below the minimum {config.min_robust_accuracy:.4f} "
            f"({config.attack}, epsilon {config.epsilon:g})",
            "adversarial_accuracy",
            {"value": robust, "min": config.min_robust_accuracy},
        )
    if config.max_accuracy_drop is not None and drop > config.max_accuracy_drop:
        report.add_finding(
            F_DROP,
            "high",
            f"accuracy drops by {drop:.4f} under attack (allowed {config.max_accuracy_drop:.4f})",
            "accuracy_drop",
            {"value": drop, "max": config.max_accuracy_drop},
        )
    if n_eval < n:
        report.add_finding(
            F_PARTIAL,
            "info",
            f"time budget ran out: {n_eval} of {n} sampled rows attacked (partial result accepted)",
            "time_budget_seconds",
            {"attacked": n_eval, "sampled": n},
        )
    failed = any(f.severity != "info" for f in report.findings)
    shown = (
        f"clean {metrics['clean_accuracy']:.3f}, adversarial {robust:.3f}, "
        f"success rate {metrics['attack_success_rate']:.3f} on {n_eval} rows ({config.attack}, eps {config.epsilon:g})"
    )
    return report.finish("fail" if failed else "pass", ("not robust: " if failed else "") + shown)


def _attack(model: Any, names: list[str], xs: Any, ys: Any, config: RobustnessConfig) -> dict[str, Any]:
    """Run the attack batch by batch under the wall-clock budget; per-row correctness, success and norm."""
    import warnings

    import numpy as np
    import pandas as pd

    with warnings.catch_warnings():  # ART warns about optional deep-learning back-ends at import
        warnings.simplefilter("ignore")
        try:
            from art.attacks.evasion import BoundaryAttack, HopSkipJump
            from art.estimators.classification import BlackBoxClassifier
        except ImportError:
            raise AisecInputError(
                "the robustness gate needs the Adversarial Robustness Toolbox: pip install 'airflow-aisec[robustness]'"
            ) from None

    n_classes = len(model.classes_)
    deadline = time.monotonic() + config.time_budget_seconds
    queries = [0]

    def predict(batch: Any) -> Any:  # the attack's only access to the model: counted and under the budget
        if time.monotonic() > deadline:
            raise _BudgetExceeded
        queries[0] += len(batch)
        return probabilities(batch)

    def probabilities(batch: Any) -> Any:
        frame = pd.DataFrame(np.asarray(batch, dtype=float).reshape(len(batch), -1), columns=names)
        if hasattr(model, "predict_proba"):
            return np.asarray(model.predict_proba(frame), dtype=float)
        return np.eye(n_classes)[np.searchsorted(model.classes_, model.predict(frame))]

    scale = xs.std(axis=0)
    scale[~(scale > 0)] = 1.0
    span = xs.max(axis=0) - xs.min(axis=0) + scale
    clip = (xs.min(axis=0) - span, xs.max(axis=0) + span)
    estimator = BlackBoxClassifier(predict, input_shape=(xs.shape[1],), nb_classes=n_classes, clip_values=clip)
    attack = _make_attack(HopSkipJump, BoundaryAttack, estimator, config)
    t0 = time.monotonic()
    frame = pd.DataFrame(xs, columns=names)
    correct = np.asarray(model.predict(frame)) == np.asarray(model.classes_)[ys]
    success = np.zeros(len(xs), dtype=bool)
    flipped = np.zeros(len(xs), dtype=bool)
    norms = np.zeros(len(xs))
    evaluated, timed_out = 0, False
    try:
        with _seeded_numpy(config.seed):
            for start in range(0, len(xs), _BATCH):
                rows = np.arange(start, min(start + _BATCH, len(xs)))
                todo = rows[correct[rows]]
                if len(todo):
                    x_adv = attack.generate(x=xs[todo].astype(np.float32), y=np.eye(n_classes)[ys[todo]])
                    adv_pred = probabilities(x_adv).argmax(axis=1)  # the verdict, outside the budget
                    dist = np.linalg.norm((x_adv - xs[todo]) / scale, axis=1)
                    norms[todo] = dist
                    flipped[todo] = adv_pred != ys[todo]
                    success[todo] = flipped[todo] & (dist <= config.epsilon)
                evaluated = rows[-1] + 1
    except _BudgetExceeded:
        timed_out = True
    return {
        "clean_correct": correct,
        "success": success,
        "flipped": flipped,
        "norms": norms,
        "evaluated": int(evaluated),
        "attacked": int(evaluated),
        "timed_out": timed_out,
        "queries": queries[0],
        "seconds": time.monotonic() - t0,
    }


def _make_attack(hop_skip_jump: Any, boundary: Any, estimator: Any, config: RobustnessConfig) -> Any:
    """The configured ART attack, bounded by ``max_iter`` / ``max_eval``, untargeted, L2."""
    if config.attack == "hopskipjump":
        return hop_skip_jump(
            estimator,
            targeted=False,
            norm=2,
            max_iter=config.max_iter,
            max_eval=config.max_eval,
            init_eval=min(20, config.max_eval),
            init_size=20,
            batch_size=64,
            verbose=False,
        )
    return boundary(
        estimator,
        targeted=False,
        max_iter=config.max_iter,
        num_trial=10,
        sample_size=10,
        init_size=20,
        batch_size=64,
        verbose=False,
    )


@contextlib.contextmanager
def _seeded_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (ART draws from it) and ART's unseeded ``RandomState()``; restore both."""
    import numpy as np

    state = np.random.get_state()
    np.random.seed(seed)
    unseeded = np.random.RandomState
    seeds = np.random.default_rng(seed)

    class _Seeded(unseeded):  # type: ignore[misc,valid-type]
        # ART's initial-sample search makes ``np.random.RandomState()`` without a seed: derive one
        def __init__(self, seed: Any = None) -> None:
            super().__init__(int(seeds.integers(2**32)) if seed is None else seed)

    np.random.RandomState = _Seeded  # type: ignore[misc]
    try:
        yield
    finally:
        np.random.RandomState = unseeded  # type: ignore[misc]
        np.random.set_state(state)
