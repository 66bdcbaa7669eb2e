"""``aisec profile build`` and ``aisec drift``: the drift engine from the command line.

.. code-block:: console

    aisec profile build train.parquet -o ref.prof
    aisec drift --profile ref.prof live.parquet --format json     # exit 0 no drift / 1 drift / 2 error
    aisec drift --reference train.parquet live.csv --correction bonferroni --drift-share 0.3
    aisec drift --reference train.parquet live.csv --multivariate   # + domain-classifier test

Partitioned (one task per partition; the merged results are the single-pass ones):

    aisec profile build train.parquet --partition 2/4 -o part-2.prof       # for K = 1..4
    aisec profile merge part-*.prof -o ref.prof
    aisec drift --profile ref.prof live.parquet --partial --partition 2/4 -o part-2.json
    aisec drift merge part-*.json --format json                             # exit 0 / 1 / 2 as above
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
    build.add_argument(
        "--partition", metavar="K/N", help="build the part profile of rows K of N (merge them with 'profile merge')"
    )
    build.add_argument("--created-at", help="build time to record (ISO 8601; default now; part of the digest)")
    add_format_argument(build)
    build.set_defaults(func=_cmd_profile_build)
    _register_profile_merge(profile_sub)

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
    drift.add_argument("--multivariate", action="store_true", help="add the domain-classifier test (needs --reference)")
    drift.add_argument("--multivariate-min-auc", type=float, default=0.55, help="effect-size floor (default 0.55)")
    drift.add_argument(
        "--partial",
        action="store_true",
        help="with --partition K/N and -o: write this partition's statistics (merge with 'aisec drift merge')",
    )
    drift.add_argument("--partition", metavar="K/N", help="the rows K of N of the window (with --partial)")
    drift.add_argument("-o", "--output", help="where --partial writes its statistics (JSON)")
    add_format_argument(drift)
    drift.set_defaults(func=_cmd_drift)
    _register_drift_merge(subparsers)


def _register_profile_merge(profile_sub: Any) -> None:
    merge = profile_sub.add_parser(
        "merge",
        help="merge the part profiles of all partitions into one profile",
        description="Merge the part profiles of 'aisec profile build --partition K/N' (every K of N) into the profile "
        "a single-pass build writes (same bytes, same digest). Missing, repeated or foreign parts are refused. "
        "Exit 0 written, 2 error.",
    )
    merge.add_argument("parts", nargs="+", help="part profiles (aisec profile build --partition K/N)")
    merge.add_argument("-o", "--output", required=True, help="profile file to write (atomically)")
    merge.add_argument("--created-at", help="build time to record (default: the latest part's)")
    add_format_argument(merge)
    merge.set_defaults(func=_cmd_profile_merge)


def _register_drift_merge(subparsers: Any) -> None:
    # reached as ``aisec drift merge PART...`` (the entry point routes it here; ``drift`` takes a path)
    merge = subparsers.add_parser(
        "drift-merge",
        help="merge partial drift statistics (aisec drift merge PART...)",
        description="Merge the partials of 'aisec drift --partial --partition K/N' (every K of N) into the whole-"
        "window drift test: the same statistics and p-values as testing the window at once. Missing, repeated, "
        "tampered or foreign partials are refused. Exit 0 no drift, 1 drift, 2 error.",
    )
    merge.add_argument("parts", nargs="+", help="partials written by aisec drift --partial")
    merge.add_argument("--profile", help="the reference profile (default: the path the partials record)")
    merge.add_argument("--expected-digest", help="refuse partials computed against another profile")
    merge.add_argument("--html", metavar="PATH", help="also write a static HTML report")
    add_format_argument(merge)
    merge.set_defaults(func=_cmd_drift_merge)


def _cmd_profile_build(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.drift import build_and_save_profile
        from airflow_aisec.core.drift_profile import BuildOptions

        options = BuildOptions(exact_max=args.exact_max, grid_size=args.grid_size, max_categories=args.max_categories)
        if args.partition:
            from airflow_aisec.core.drift_profile.partition import build_part_profile

            return _save_profile(
                lambda: build_part_profile(
                    args.data, args.partition, columns=args.columns, options=options, created_at=args.created_at
                ),
                args.output,
            )
        return build_and_save_profile(
            args.data, args.output, columns=args.columns, options=options, created_at=args.created_at
        )

    return run_report(args, "drift", args.output, build)


def _save_profile(make: Any, output: str) -> Any:
    from airflow_aisec.core.drift import profile_to_report
    from airflow_aisec.core.drift_profile import save_profile
    from airflow_aisec.utils.fs import check_output_path

    check_output_path(output)
    profile = make()
    save_profile(profile, output)
    return profile_to_report(profile, output)


def _cmd_profile_merge(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.drift_profile.partition import merge_part_profiles

        return _save_profile(lambda: merge_part_profiles(args.parts, created_at=args.created_at), args.output)

    return run_report(args, "drift", args.output, build)


def _cmd_drift_merge(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.drift_partition import merge_partials

        if args.html:
            from airflow_aisec.utils.fs import check_output_path

            check_output_path(args.html)
        report = merge_partials(args.parts, profile=args.profile, expected_digest=args.expected_digest)
        if args.html:
            from airflow_aisec.core.drift_html import write_html_report

            write_html_report(report.to_dict(), args.html)
        return report

    return run_report(args, "drift", " ".join(args.parts)[:200], build)


def _cmd_partial(args: argparse.Namespace, config: Any) -> Any:
    """``aisec drift --partial``: write one partition's statistics; the report says what was written."""
    from airflow_aisec.core.drift_partition import write_partial
    from airflow_aisec.exceptions import AisecInputError

    if not (args.partition and args.output and args.profile) or args.html:
        raise AisecInputError("--partial needs --profile, --partition K/N and -o PATH (and no --html)")
    return write_partial(
        args.current,
        profile=args.profile,
        partition=args.partition,
        output=args.output,
        config=config,
        expected_digest=args.expected_digest,
    )


def _cmd_drift(args: argparse.Namespace) -> int:
    def build() -> Any:
        from airflow_aisec.core.drift import DriftConfig, parse_methods, run_drift

        if args.html:  # refuse a bad destination before any work (directory, symlink, under a file)
            from airflow_aisec.utils.fs import check_output_path

            check_output_path(args.html)
        if args.multivariate and not args.reference:
            from airflow_aisec.exceptions import AisecInputError

            raise AisecInputError("--multivariate needs --reference data (a profile holds no rows)")
        config = DriftConfig(
            alpha=args.alpha,
            correction=args.correction,
            drift_share=args.drift_share,
            critical_features=tuple(args.critical),
            methods=parse_methods(args.method),
            null_rate_tolerance=args.null_rate_tolerance,
            columns=args.columns,
        )
        if args.partial or args.partition or args.output:
            return _cmd_partial(args, config)
        report = run_drift(
            args.current,
            profile=args.profile,
            reference=args.reference,
            config=config,
            expected_digest=args.expected_digest,
        )
        if args.multivariate:
            from airflow_aisec.core import drift_multivariate as mv

            mv_config = mv.MultivariateConfig(alpha=args.alpha, min_auc=args.multivariate_min_auc)
            result = mv.domain_classifier_test(args.reference, args.current, columns=args.columns, config=mv_config)
            report = mv.add_to_report(report, result)
        if args.html:
            from airflow_aisec.core.drift_html import write_html_report

            write_html_report(report.to_dict(), args.html)
        return report

    return run_report(args, "drift", args.current, build)
