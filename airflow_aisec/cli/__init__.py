"""The ``aisec`` command line: the same core checks as the operators, for CI and pre-commit.

Every subcommand lives in its own module of this package and exposes ``register(subparsers)``;
modules are discovered at start-up, so a new capability adds a module and touches nothing else.

Exit codes, for every subcommand: **0** pass (or warn), **1** finding (mismatch, vulnerability,
drift …), **2** error (bad input, cannot decide).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from airflow_aisec import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aisec",
        description="AI/ML security checks (airflow-aisec). Exit codes: 0 pass, 1 finding, 2 error.",
    )
    parser.add_argument("--version", action="version", version=f"airflow-aisec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{module.name}")
        register = getattr(mod, "register", None)
        if register is not None:
            register(subparsers)
    return parser


#: The report ``check`` of each subcommand, for the error report of an unexpected failure.
COMMAND_CHECKS = {
    "audit": "dependency_audit",
    "osv-sync": "dependency_audit",
    "secrets": "secrets",
    "scan-model": "model_scan",
    "hash": "integrity",
    "verify": "integrity",
    "keygen": "integrity",
    "manifest": "integrity",
    "provenance": "provenance",
    "profile": "drift",
    "drift": "drift",
    "drift-merge": "drift",
    "inference-audit": "inference_audit",
    "inference-reference": "inference_audit",
    "load-test": "load_test",
    "s3-posture": "s3_posture",
    "iam-lint": "iam_policy",
    "cloudwatch-alarms": "cloudwatch",
    "scan-image": "image_scan",
    "robustness": "robustness",
    "performance-estimate": "performance_estimate",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aisec`` console script; returns the process exit code.

    No traceback ever reaches the user: an unexpected exception anywhere in a subcommand becomes an
    ``error`` report (exit 2) whose one-line summary names the exception and the command.
    """
    from airflow_aisec.cli._common import configure_console, unexpected_error

    configure_console()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["drift", "merge"]:  # `drift` takes a window path: its merge action is its own parser
        argv = ["drift-merge", *argv[2:]]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help/--version, 2 for usage errors
        return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else 2
    from airflow_aisec.utils.progress import install_tty_bar

    install_tty_bar(getattr(args, "format", "text"))  # a progress bar on a terminal; silent for json/sarif
    try:
        return int(args.func(args))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the one wrapper: a bug is reported, never a traceback
        return unexpected_error(args, COMMAND_CHECKS.get(args.command, "integrity"), exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
