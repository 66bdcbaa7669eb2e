"""``aisec secrets PATH [--history]``: secrets in a working tree and its git history (values never printed)."""

from __future__ import annotations

import argparse

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "secrets",
        help="scan a directory (and its git history) for credentials",
        description=(
            "Scan PATH with detect-secrets' plugins plus Hugging Face and OpenAI key detectors. With --history, "
            "also every line added in every commit. Only type, location and a fingerprint are printed. "
            "Exit 0 clean, 1 secrets found, 2 error (e.g. --history outside a git repository)."
        ),
    )
    parser.add_argument("path", metavar="PATH")
    parser.add_argument("--history", action="store_true", help="also scan every commit of the git history")
    parser.add_argument("--baseline", metavar="FILE", help="detect-secrets baseline of known findings")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="FINGERPRINT=REASON",
        help="suppress a known false positive by its fingerprint; repeatable",
    )
    parser.add_argument("--max-file-bytes", type=int, help="skip (and count) files larger than this")
    parser.add_argument(
        "--fail-on",
        choices=("high", "medium"),
        default="medium",
        help="medium (default): any finding fails; high: entropy/keyword heuristics only warn",
    )
    add_format_argument(parser, ("text", "json"))
    parser.set_defaults(func=_secrets)


def _secrets(args: argparse.Namespace) -> int:
    from airflow_aisec.core.secrets import DEFAULT_MAX_FILE_BYTES, scan_secrets
    from airflow_aisec.exceptions import AisecInputError

    def build():
        allow = {}
        for item in args.allow:
            fp, sep, reason = item.partition("=")
            if not sep or not fp.strip() or not reason.strip():
                raise AisecInputError(f"--allow {item!r} must be FINGERPRINT=REASON")
            allow[fp.strip()] = reason.strip()
        return scan_secrets(
            args.path,
            history=args.history,
            baseline=args.baseline,
            allow=allow,
            max_file_bytes=args.max_file_bytes or DEFAULT_MAX_FILE_BYTES,
            fail_on=args.fail_on,
        )

    return run_report(args, "secrets", args.path, build)
