"""``aisec audit`` and ``aisec osv-sync``: dependency audit (pip-audit) and the offline OSV database mirror."""

from __future__ import annotations

import argparse

from airflow_aisec.cli._common import FORMATS, add_format_argument, run_report

#: Kinds accepted by ``--allow-unaudited`` (the same as airflow_aisec.core.reqfile.UNAUDITED_KINDS;
#: repeated here so that building the parser imports nothing heavy).
UNAUDITED_KINDS = ("editable", "direct-url", "unpinned", "option", "include", "unversioned")


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser(
        "audit",
        help="audit Python dependencies for known vulnerabilities (pip-audit; online or offline OSV)",
        description=(
            "Audit an environment, pinned requirements or a project for known vulnerabilities. With no "
            "source, audits this interpreter's environment. Vulnerabilities come from --osv-db (else "
            "$AISEC_OSV_DB), else pip-audit's online service. Anything that cannot be audited (editable, URL "
            "or unpinned requirements, index options, includes outside the file's directory, packages without "
            "a version) is an error unless --allow-unaudited KIND. Exit 0 pass, 1 vulnerable, 2 could not audit."
        ),
    )
    audit.add_argument(
        "-r",
        "--requirement",
        dest="requirements",
        action="append",
        default=[],
        metavar="REQUIREMENTS",
        help="pinned requirements file (name==version lines); repeatable",
    )
    audit.add_argument(
        "requirement_files", nargs="*", metavar="REQUIREMENTS", help="more requirements files (as -r each)"
    )
    audit.add_argument(
        "--path", metavar="ENV_OR_SITE_PACKAGES", help="another environment: virtualenv or site-packages"
    )
    audit.add_argument("--project", metavar="DIR", help="project directory (pylock*.toml, else pyproject.toml)")
    audit.add_argument("--osv-db", metavar="ZIP_OR_DIR", help="offline OSV database (default: $AISEC_OSV_DB)")
    audit.add_argument("--service", choices=("osv", "pypi"), default="osv", help="online service without --osv-db")
    audit.add_argument("--osv-url", help="OSV query endpoint for the online osv service")
    audit.add_argument("--timeout", type=int, default=15, help="online service timeout in seconds (default 15)")
    audit.add_argument(
        "--fail-on",
        choices=("critical", "high", "medium", "low", "any"),
        default="any",
        help="fail at or above this severity (default: any)",
    )
    audit.add_argument(
        "--unknown-severity",
        choices=("critical", "high", "medium", "low", "info"),
        default="high",
        help="severity of advisories without CVSS or database severity (default: high)",
    )
    audit.add_argument(
        "--ignore-file", metavar="FILE", help="accepted risks: TOML [[ignore]] or JSON with id, reason, expires"
    )
    audit.add_argument("--max-db-age-days", type=float, help="error when the offline database is older than this")
    audit.add_argument("--sbom", metavar="FILE", help="write a CycloneDX JSON SBOM here")
    audit.add_argument(
        "--allow-unaudited",
        action="append",
        default=[],
        choices=UNAUDITED_KINDS,
        metavar="KIND",
        help="accept (report, status warn) instead of error what the audit cannot inspect, of this kind: "
        + ", ".join(UNAUDITED_KINDS)
        + "; repeatable",
    )
    add_format_argument(audit, FORMATS)
    audit.set_defaults(func=_audit)

    sync = subparsers.add_parser(
        "osv-sync",
        help="mirror an OSV export (zip) into a local cache for offline audits",
        description="Download or copy an OSV export, validate it, and store it atomically with a manifest (SHA-256, "
        "record count, newest modified date). Exit 0 stored, 2 error (unreachable, corrupt export).",
    )
    sync.add_argument("--source", metavar="URL|FILE", help="OSV export (default: OSV's PyPI all.zip)")
    sync.add_argument(
        "--dest",
        metavar="DIR",
        help="cache directory (default: $AIRFLOW__AISEC__DATA_DIR/osv, else the deprecated $AISEC_DATA_DIR/osv)",
    )
    sync.add_argument("--name", default="osv-pypi.zip", help="file name in the cache (default: osv-pypi.zip)")
    sync.add_argument("--timeout", type=float, default=60.0, help="download timeout in seconds")
    add_format_argument(sync, ("text", "json"))
    sync.set_defaults(func=_sync)


def _audit(args: argparse.Namespace) -> int:
    from airflow_aisec.core.dependency_audit import run_audit, source_specs
    from airflow_aisec.core.osv import resolve_db_path

    args.requirements = [*args.requirements, *args.requirement_files]  # positional files: pre-commit passes them

    def build():
        return run_audit(
            requirements=args.requirements,
            path=args.path,
            project=args.project,
            osv_db=resolve_db_path(args.osv_db, online_requested=args.osv_url is not None),
            service=args.service,
            osv_url=args.osv_url,
            timeout=args.timeout,
            fail_on=args.fail_on,
            unknown_severity=args.unknown_severity,
            ignore_file=args.ignore_file,
            max_db_age_days=args.max_db_age_days,
            sbom_path=args.sbom,
            allow_unaudited=args.allow_unaudited,
        )

    try:
        subject = " + ".join(
            s.label for s in source_specs(requirements=args.requirements, path=args.path, project=args.project)
        )
    except Exception:
        subject = "dependencies"
    return run_report(args, "dependency_audit", subject, build)


def _sync(args: argparse.Namespace) -> int:
    from airflow_aisec.core.osv import DEFAULT_SYNC_SOURCE, sync
    from airflow_aisec.report import Report
    from airflow_aisec.utils.paths import data_dir

    dest = args.dest or str(data_dir("osv"))
    source = args.source or DEFAULT_SYNC_SOURCE

    def build():
        report = Report.start("dependency_audit", f"{dest}/{args.name}", tags=["AML.M0016"])
        manifest = sync(source, dest, name=args.name, timeout=args.timeout)
        report.details["osv_sync"] = manifest
        report.metrics.update({"db_records": manifest["records"], "db_bytes": manifest["bytes"]})
        return report.finish(
            "pass",
            f"mirrored {manifest['records']} advisories ({manifest['packages']} packages, newest "
            f"{manifest['newest_modified']}) to {manifest['path']} sha256={manifest['sha256']}",
        )

    return run_report(args, "dependency_audit", f"{dest}/{args.name}", build)
