"""The ``aisec`` command line: the same core checks as the operators, for CI and pre-commit.

Every subcommand lives in its own module of this package and exposes ``register(subparsers)``;
modules are discovered at start-up, so a new capability adds a module (and its line in
:data:`COMMANDS`, which a test checks). A run of one subcommand builds only that module's parser:
building all of them costs ~60 ms of every ``aisec`` process.

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

#: Each subcommand: the module of this package that registers it (a run builds only that module's
#: parser; a test checks the table against the registrations) and the report ``check`` of its error
#: report when it fails unexpectedly.
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("audit", "dependency_audit"),
    "osv-sync": ("audit", "dependency_audit"),
    "s3-posture": ("cloud", "s3_posture"),
    "iam-lint": ("cloud", "iam_policy"),
    "cloudwatch-alarms": ("cloudwatch", "cloudwatch"),
    "profile": ("drift", "drift"),
    "drift": ("drift", "drift"),
    "drift-merge": ("drift", "drift"),
    "scan-image": ("image", "image_scan"),
    "inference-audit": ("inference", "inference_audit"),
    "load-test": ("inference", "load_test"),
    "inference-reference": ("inference", "inference_audit"),
    "hash": ("integrity", "integrity"),
    "verify": ("integrity", "integrity"),
    "keygen": ("integrity", "integrity"),
    "manifest": ("manifest", "integrity"),
    "scan-model": ("modelscan", "model_scan"),
    "performance-estimate": ("performance_estimate", "performance_estimate"),
    "provenance": ("provenance", "provenance"),
    "robustness": ("robustness", "robustness"),
    "secrets": ("secrets", "secrets"),
}
COMMAND_MODULES = {command: module for command, (module, _) in COMMANDS.items()}
COMMAND_CHECKS = {command: check for command, (_, check) in COMMANDS.items()}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``aisec`` parser: every subcommand, or only those of ``command``'s module when it is known."""
    parser = argparse.ArgumentParser(
        prog="aisec",
        description="AI/ML security checks (airflow-aisec). Exit codes: 0 pass, 1 finding, 2 error.",
    )
    parser.add_argument("--version", action="version", version=f"airflow-aisec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    if command in COMMAND_MODULES:
        names = [COMMAND_MODULES[command]]
    for name in names:
        mod = importlib.import_module(f"{__name__}.{name}")
        register = getattr(mod, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aisec`` console script; returns the process exit code.

    No traceback ever reaches the user: an unexpected exception anywhere in a subcommand becomes an
    ``error`` report (exit 2) whose one-line summary names the exception and the command.
    """
    from airflow_aisec.cli._common import configure_console, unexpected_error

    configure_console()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["drift", "merge"]:  # `drift` takes a window path: its merge action is its own parser
        argv = ["drift-merge", *argv[2:]]
    parser = build_parser(argv[0] if argv else None)
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
