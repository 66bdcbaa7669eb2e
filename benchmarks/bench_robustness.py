"""Robustness gate and label-free estimator figures on demo-sized models.

    .venv/bin/python benchmarks/bench_robustness.py               # default: 50 rows, HopSkipJump
    .venv/bin/python benchmarks/bench_robustness.py --sample-size 20 --attack boundary

Part 1 trains the secured-training DAG's model (StandardScaler + LogisticRegression on scikit-learn's
bundled breast-cancer data, 80/20 split, seed 42) and a RandomForest, and prints the robustness gate's
wall-clock time (verify-before-load, sampling, attack) with its metrics. Part 2 scores windows of
synthetic data with and without covariate shift and prints the label-free estimate next to the
realised accuracy. Wall-clock on a shared machine is noisy: compare figures from the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def robustness(tmp: Path, args: argparse.Namespace) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_aisec.core.robustness import RobustnessConfig, evaluate_robustness

    frame = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["target"])
    test.to_parquet(tmp / "test.parquet")
    models = {
        "scaler+logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=42)),
        "random-forest-100": RandomForestClassifier(n_estimators=100, random_state=42),
    }
    print(f"robustness gate: {args.attack}, {args.sample_size} rows, epsilon {args.epsilon}, breast-cancer 30 features")
    for name, model in models.items():
        model.fit(train.drop(columns=["target"]), train["target"])
        path = tmp / f"{name}.pkl"
        path.write_bytes(pickle.dumps(model, protocol=5))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        config = RobustnessConfig(
            attack=args.attack, sample_size=args.sample_size, epsilon=args.epsilon, min_robust_accuracy=0.0, seed=0
        )
        t0 = time.perf_counter()
        report = evaluate_robustness(
            tmp / "test.parquet", model_path=str(path), model_digest=digest, label_column="target", config=config
        ).to_dict()
        elapsed = time.perf_counter() - t0
        m = report["metrics"]
        print(
            f"  {name:<18} {elapsed:6.2f} s  clean {m['clean_accuracy']:.3f}  adversarial {m['adversarial_accuracy']:.3f}"
            f"  success {m['attack_success_rate']:.3f}  mean L2 {m['mean_perturbation_l2']}  queries {m['n_queries']}"
        )


def estimator() -> None:
    from sklearn.linear_model import LogisticRegression

    from airflow_aisec.core.performance_estimate import estimate_performance

    rng = np.random.default_rng(0)

    def world(n: int, scale: float = 1.0, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        x = np.column_stack([rng.normal(0, scale, n), rng.normal(shift, 1, n), rng.normal(0, 1, n)])
        logit = 2.0 * x[:, 0] + x[:, 1] - 0.5 * x[:, 2]
        return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)

    model = LogisticRegression().fit(*world(5000))
    x_ref, y_ref = world(5000)
    reference = pd.DataFrame({"p": model.predict_proba(x_ref)[:, 1], "y": y_ref})
    print("label-free estimate vs realised accuracy (5000-row windows)")
    errors = []
    for label, scale, shift in [
        ("no shift", 1.0, 0.0),
        ("x0 scale 0.5", 0.5, 0.0),
        ("x0 scale 0.25", 0.25, 0.0),
        ("x1 shift +1", 1.0, 1.0),
        ("x1 shift -2", 1.0, -2.0),
    ]:
        x, y = world(5000, scale, shift)
        current = pd.DataFrame({"p": model.predict_proba(x)[:, 1]})
        t0 = time.perf_counter()
        report = estimate_performance(reference, current, proba_columns=["p"], label_column="y", max_degradation=1.0)
        elapsed = time.perf_counter() - t0
        m = report.metrics
        realised = float((model.predict(x) == y).mean())
        errors.append(abs(m["estimated_accuracy"] - realised))
        print(
            f"  {label:<14} realised {realised:.4f}  estimated {m['estimated_accuracy']:.4f} "
            f"[{m['estimated_accuracy_lower']:.4f}, {m['estimated_accuracy_upper']:.4f}]  "
            f"error {errors[-1]:.4f}  ({elapsed * 1000:.0f} ms)"
        )
    print(f"  mean absolute error {np.mean(errors):.4f}, max {np.max(errors):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample-size", type=int, default=50)
    parser.add_argument("--attack", choices=("hopskipjump", "boundary"), default="hopskipjump")
    parser.add_argument("--epsilon", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        robustness(Path(tmp), args)
    estimator()


if __name__ == "__main__":
    main()
