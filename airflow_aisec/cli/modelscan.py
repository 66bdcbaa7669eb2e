"""``aisec scan-model``: scan model files for embedded code (never loads them)."""

from __future__ import annotations

import argparse

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan-model",
        help="scan model files (pickle, joblib, PyTorch, npy/npz, zip, safetensors) for embedded code",
        description="Default-deny scan of model artifacts: pickle globals outside the allowlist are findings, "
        "known-dangerous ones critical; nothing is loaded or unpickled. "
        "Exit 0 safe, 1 unsafe file, 2 malformed/unreadable input.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="model file or directory (recursive)")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="MODULE.NAME",
        help="also allow this global (exact or glob, e.g. mypkg.models.*) or Keras custom class (exact); repeatable",
    )
    parser.add_argument(
        "--allow-format",
        action="append",
        default=[],
        choices=("gguf", "hdf5", "keras", "unknown"),
        help="accept files of this uninspected format (reported as info, not a finding); repeatable",
    )
    parser.add_argument(
        "--allow-unknown-format",
        action="store_true",
        help="report every file of a format the scan does not inspect as info instead of a finding",
    )
    add_format_argument(parser, ("text", "json", "markdown"))
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from airflow_aisec.core.modelscan import scan_paths

    return run_report(
        args,
        "model_scan",
        ", ".join(args.paths),
        lambda: scan_paths(
            args.paths,
            allow=args.allow,
            fail_on_unknown_format=not args.allow_unknown_format,
            allow_formats=args.allow_format,
        ),
    )
