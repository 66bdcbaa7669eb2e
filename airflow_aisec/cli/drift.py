"""``aisec profile build`` and ``aisec drift``: the drift engine from the command line.

.. code-block:: console

    aisec profile build train.parquet -o ref.prof
    aisec drift --profile ref.prof live.parquet --format json     # exit 0 no drift / 1 drift / 2 error
    aisec drift --reference train.parquet live.csv --correction bonferroni --drift-share 0.3
"""

from __future__ import annotations

import argparse
from typing import Any

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: Any) -> None:
    profile = subparsers.add_parser(
        "profile",
        help="reference profiles for drift tests",
        description="Reference profiles for aisec drift. Exit codes are those of the action.",
    )
    profile_sub = profile.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    build = profile_sub.add_parser(
        "build",
        help="build a reference profile from data (Parquet/CSV)",
        description="Profile reference data once (exact values or a quantile grid per numeric column, category "
        "counts) and write it atomically with its digest. Exit 0 written, 2 unreadable data or bad options.",
    )
    build.add_argument("data", help="reference data: Parquet file/directory or CSV, path or URI")
    build.add_argument("-o", "--output", required=True, help="profile file to write (atomically)")
    build.add_argument("--columns", nargs="+", help="profile only these columns")
    build.add_argument(
        "--exact-max", type=int, default=2_000_000, help="above this, numeric columns use a quantile grid"
    )
    build.add_argument("--grid-size", type=int, default=16_384, help="quantile grid knots (KS error bound ~1/size)")
    build.add_argument("--max-categories", type=int, default=200, help="skip categorical columns with more categories")
    add_format_argument(build)
    build.set_defaults(func=_cmd_profile_build)

    drift = subparsers.add_parser(
        "drift",
        help="test current data for drift against a profile or reference data",
        description="Test every column of the current window against the reference (KS, chi-square …, with "
        "multiple-testing correction). Exit 0 no drift, 1 drift, 2 error (unreadable data, digest mismatch).",
    )
    source = drift.add_mutually_exclusive_group(required=True)
    source.add_argument("--profile", help="stored reference profile (aisec profile build)")
    source.add_argument("--reference", help="reference data (profiled in memory)")
    drift.add_argument("current", help="current window: Parquet file/directory or CSV, path or URI")
    drift.add_argument("--expected-digest", help="refuse a profile whose digest differs")
    drift.add_argument(
        "--correction",
        choices=("bh", "bonferroni", "none"),
        default="bh",
        help="multiple-testing correction (default bh: Benjamini-Hochberg)",
    )
    drift.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    drift.add_argument("--drift-share", type=float, default=0.5, help="dataset drift share threshold (default 0.5)")
    drift.add_argument("--critical", nargs="+", default=[], metavar="COLUMN", help="any of these drifting = drift")
    drift.add_argument("--columns", nargs="+", help="test only these columns")
    drift.add_argument("--method", action="append", default=[], metavar="COLUMN=METHOD", help="override a test")
    drift.add_argument(
        "--null-rate-tolerance",
        type=float,
        default=0.05,
        help="absolute null-rate change that is drift when significant (default 0.05)",
    )
    drift.add_argument("--html", metavar="PATH", help="also write a static HTML report")
    add_format_argument(drift)
    drift.set_defaults(func=_cmd_drift)


def _cmd_profile_build(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.drift import build_and_save_profile
        from airflow_aisec.core.drift_profile import BuildOptions

        options = BuildOptions(exact_max=args.exact_max, grid_size=args.grid_size, max_categories=args.max_categories)
        return build_and_save_profile(args.data, args.output, columns=args.columns, options=options)

    return run_report(args, "drift", args.output, build)


def _cmd_drift(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.drift import DriftConfig, parse_methods, run_drift

        if args.html:  # refuse a bad destination before any work (directory, symlink, under a file)
            from airflow_aisec.utils.fs import check_output_path

            check_output_path(args.html)
        config = DriftConfig(
            alpha=args.alpha,
            correction=args.correction,
            drift_share=args.drift_share,
            critical_features=tuple(args.critical),
            methods=parse_methods(args.method),
            null_rate_tolerance=args.null_rate_tolerance,
            columns=args.columns,
        )
        report = run_drift(
            args.current,
            profile=args.profile,
            reference=args.reference,
            config=config,
            expected_digest=args.expected_digest,
        )
        if args.html:
            from airflow_aisec.core.drift_html import write_html_report

            write_html_report(report.to_dict(), args.html)
        return report

    return run_report(args, "drift", args.current, build)
