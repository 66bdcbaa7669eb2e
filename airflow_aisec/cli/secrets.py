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
            "also every object reachable from any ref (blobs, names, commit and tag messages). Only type, location "
            "and a fingerprint are printed. Exit 0 clean, 1 secrets found, 2 error (--history outside a git "
            "repository, incomplete history, anything that could not be scanned)."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="file or directory to scan")
    parser.add_argument("--history", action="store_true", help="also scan every commit of the git history")
    parser.add_argument("--baseline", metavar="FILE", help="detect-secrets baseline of known findings")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="FINGERPRINT=REASON",
        help="suppress a known false positive by its fingerprint; repeatable",
    )
    parser.add_argument(
        "--max-file-bytes", type=int, help="files and history blobs larger than this are not scanned (listed)"
    )
    parser.add_argument(
        "--unscanned",
        choices=("error", "warn"),
        default="error",
        help="anything not scanned (large, compressed, special, unreadable files, submodules): "
        "error (default, exit 2) or warn",
    )
    parser.add_argument(
        "--partial-history",
        action="store_true",
        help="accept a shallow, grafted, replaced or partial-clone history (reported) instead of exit 2",
    )
    parser.add_argument(
        "--fail-on",
        choices=("high", "medium"),
        default="medium",
        help="medium (default): any finding fails; high: entropy/keyword heuristics only warn",
    )
    add_format_argument(parser, ("text", "json"))
    parser.set_defaults(func=_secrets)


def _secrets(args: argparse.Namespace) -> int:
    from airflow_aisec.core.secrets import DEFAULT_MAX_FILE_BYTES, redact_text, scan_secrets
    from airflow_aisec.exceptions import AisecInputError

    def build():
        allow = {}
        for i, item in enumerate(args.allow, start=1):
            fp, sep, reason = item.partition("=")
            if not sep or not fp.strip() or not reason.strip():  # never echo the item: it may be a value
                raise AisecInputError(f"--allow #{i} must be FINGERPRINT=REASON")
            allow[fp.strip()] = reason.strip()
        return scan_secrets(
            args.path,
            history=args.history,
            baseline=args.baseline,
            allow=allow,
            max_file_bytes=DEFAULT_MAX_FILE_BYTES if args.max_file_bytes is None else args.max_file_bytes,
            fail_on=args.fail_on,
            unscanned=args.unscanned,
            partial_history=args.partial_history,
        )

    try:
        subject = redact_text(args.path)  # error reports name the path: never a value in it
    except Exception:
        subject = "<secrets scan path withheld>"
    return run_report(args, "secrets", subject, build)
