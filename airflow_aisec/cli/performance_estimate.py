"""``aisec performance-estimate``: a classifier's accuracy and F1 estimated without labels.

.. code-block:: console

    aisec performance-estimate --reference test_scored.parquet --current live_scored.parquet \\
        --proba-columns p_no p_yes --classes no yes --label churned      # exit 0 pass / 1 degraded / 2 error
"""

from __future__ import annotations

import argparse
from typing import Any

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "performance-estimate",
        help="estimate accuracy/F1 from calibrated probabilities (no labels needed)",
        description="Calibrate the model's probabilities on a labelled reference and estimate accuracy and F1 of "
        "unlabelled current rows, with an interval, against a baseline. Exit 0 pass, 1 degraded, 2 error.",
    )
    p.add_argument("--reference", required=True, help="labelled reference rows with the model's probabilities")
    p.add_argument("--current", required=True, help="current rows with the model's probabilities (labels not needed)")
    p.add_argument("--proba-columns", nargs="+", required=True, metavar="COLUMN", help="one per class, or one (binary)")
    p.add_argument("--label", required=True, help="label column of the reference")
    p.add_argument("--classes", nargs="+", help="class labels of the probability columns (default: their names)")
    p.add_argument("--threshold", type=float, default=0.5, help="decision threshold of a one-column binary model")
    p.add_argument("--baseline-accuracy", type=float, help="compare with this (default: realised on the reference)")
    p.add_argument("--baseline-f1", type=float, help="compare with this (default: realised on the reference)")
    p.add_argument("--max-degradation", type=float, default=0.05, help="allowed drop below the baseline")
    p.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="seed of the interval's Monte Carlo draws (default 0)")
    p.add_argument("--min-rows", type=int, default=30, help="fewest rows on either side (default 30)")
    add_format_argument(p)
    p.set_defaults(func=_cmd_estimate)


def _cmd_estimate(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.performance_estimate import estimate_performance

        baseline = {k: v for k, v in (("accuracy", args.baseline_accuracy), ("f1", args.baseline_f1)) if v is not None}
        return estimate_performance(
            args.reference,
            args.current,
            proba_columns=args.proba_columns,
            label_column=args.label,
            classes=args.classes,
            threshold=args.threshold,
            baseline=baseline or None,
            max_degradation=args.max_degradation,
            confidence=args.confidence,
            seed=args.seed,
            min_rows=args.min_rows,
        )

    return run_report(args, "performance_estimate", args.current, build)
