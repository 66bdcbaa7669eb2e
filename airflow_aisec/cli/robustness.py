"""``aisec robustness``: the adversarial-robustness gate from the command line.

.. code-block:: console

    aisec robustness model.joblib holdout.parquet --label churned --digest sha256:… \\
        --min-robust-accuracy 0.7 --attack hopskipjump --epsilon 0.5      # exit 0 pass / 1 fail / 2 error
"""

from __future__ import annotations

import argparse
from typing import Any

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "robustness",
        help="black-box evasion attacks on a verified classifier, gated",
        description="Attack a seeded sample of held-out rows of a scikit-learn classifier (verified by digest or "
        "manifest before it is loaded) with ART's HopSkipJump or boundary attack, within a perturbation bound and "
        "a time budget; gate on minimum robust accuracy or maximum drop. Exit 0 pass, 1 below the gate, 2 error.",
    )
    p.add_argument("model", help="joblib/pickle scikit-learn classifier (verified before it is loaded)")
    p.add_argument("data", help="held-out labelled rows: Parquet or CSV, path or URI")
    p.add_argument("--label", required=True, help="label column")
    evidence = p.add_mutually_exclusive_group(required=True)
    evidence.add_argument("--digest", help="expected SHA-256 of the model file (sha256:<hex> or <hex>)")
    evidence.add_argument("--manifest", help="manifest recording the model's SHA-256")
    p.add_argument("--features", nargs="+", help="feature columns (default: every column but the label)")
    p.add_argument("--allow", action="append", default=[], metavar="GLOBAL", help="extra allowlisted model global")
    p.add_argument(
        "--attack", choices=("hopskipjump", "boundary"), default="hopskipjump", help="black-box evasion attack"
    )
    p.add_argument("--min-robust-accuracy", type=float, help="fail below this adversarial accuracy")
    p.add_argument("--max-drop", type=float, help="fail when clean minus adversarial accuracy exceeds this")
    p.add_argument("--epsilon", type=float, default=0.5, help="perturbation bound (L2, in feature std units)")
    p.add_argument("--sample-size", type=int, default=50, help="rows attacked (seeded sample)")
    p.add_argument("--max-iter", type=int, default=5, help="attack iterations per row")
    p.add_argument("--max-eval", type=int, default=100, help="HopSkipJump queries per gradient estimate")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and of the attack (default 0)")
    p.add_argument("--time-budget", type=float, default=120.0, help="wall-clock seconds (exceeded → error)")
    p.add_argument("--accept-partial", action="store_true", help="report the rows attacked when the budget runs out")
    add_format_argument(p)
    p.set_defaults(func=_cmd_robustness)


def _cmd_robustness(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.robustness import RobustnessConfig, evaluate_robustness

        config = RobustnessConfig(
            attack=args.attack,
            sample_size=args.sample_size,
            epsilon=args.epsilon,
            max_iter=args.max_iter,
            max_eval=args.max_eval,
            seed=args.seed,
            time_budget_seconds=args.time_budget,
            accept_partial=args.accept_partial,
            min_robust_accuracy=args.min_robust_accuracy,
            max_accuracy_drop=args.max_drop,
        )
        return evaluate_robustness(
            args.data,
            model_path=args.model,
            model_digest=args.digest,
            manifest_path=args.manifest,
            model_allow=args.allow,
            label_column=args.label,
            feature_columns=args.features,
            config=config,
        )

    return run_report(args, "robustness", args.model, build)
