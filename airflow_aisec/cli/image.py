"""``aisec scan-image IMAGE``: a container image read as files (no Docker engine): packages, secrets, models, config."""

from __future__ import annotations

import argparse

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan-image",
        help="scan a docker save tarball or OCI image layout for vulnerable packages, secrets, unsafe models",
        description=(
            "Read IMAGE (a `docker save` tarball, an OCI image layout directory or archive) without a Docker "
            "engine: every digest is checked, the layers are applied in order with their whiteouts, nothing is "
            "extracted and no link is followed. Reports Python packages with advisories from the offline OSV "
            "database, secrets in any layer and in ENV/labels/history (values never printed), unsafe model "
            "files, and configuration risks. Exit 0 pass/warn, 1 findings at or above --fail-on, 2 error "
            "(malformed image, digest mismatch, no vulnerability database, unscanned files or unaudited OS "
            "packages unless accepted)."
        ),
    )
    parser.add_argument("image", metavar="IMAGE", help="docker save tarball, OCI layout directory or OCI archive")
    parser.add_argument("--ref", help="image to scan when the archive holds several (tag or OCI ref name)")
    parser.add_argument("--platform", help="os/arch[/variant] to select from a multi-platform index")
    parser.add_argument(
        "--osv-db", metavar="PATH", help="offline OSV database (zip or directory); default $AISEC_OSV_DB"
    )
    parser.add_argument(
        "--fail-on",
        choices=("critical", "high", "medium", "low"),
        default="medium",
        help="lowest finding severity that fails (default: medium); lower ones warn",
    )
    parser.add_argument(
        "--unscanned",
        choices=("error", "warn"),
        default="error",
        help="files too large to scan: error (default, exit 2) or warn",
    )
    parser.add_argument(
        "--os-packages",
        choices=("error", "warn"),
        default="error",
        help="OS packages cannot be audited offline: error (default, exit 2) or warn (listed in the report)",
    )
    parser.add_argument(
        "--allow-format",
        action="append",
        default=[],
        choices=("gguf", "hdf5", "keras", "unknown"),
        help="accept model files of this uninspected format (info, not a finding); repeatable",
    )
    parser.add_argument("--max-file-bytes", type=int, help="files above this are not scanned (listed as unscanned)")
    add_format_argument(parser, ("text", "json", "markdown"))
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from airflow_aisec.core.image import DEFAULT_MAX_FILE_BYTES, scan_image

    return run_report(
        args,
        "image_scan",
        args.image,
        lambda: scan_image(
            args.image,
            osv_db=args.osv_db,
            ref=args.ref,
            platform=args.platform,
            fail_on=args.fail_on,
            unscanned=args.unscanned,
            os_packages=args.os_packages,
            allow_formats=args.allow_format,
            max_file_bytes=DEFAULT_MAX_FILE_BYTES if args.max_file_bytes is None else args.max_file_bytes,
        ),
    )
