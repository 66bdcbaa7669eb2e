"""``aisec inference-audit``, ``aisec load-test`` and ``aisec inference-reference``."""

from __future__ import annotations

import argparse
import sys

from airflow_aisec.cli._common import add_format_argument, run_report


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser(
        "inference-audit",
        help="audit a JSON-lines inference log: rate abuse, latency SLO, errors, probing, OOD share",
        description="Exit 0 pass/warn, 1 a finding at --fail-severity or above, 2 unreadable/empty log or more "
        "unattributable lines than --max-bad-line-share. Rate limits count rows (a batch of 50 rows is 50).",
    )
    audit.add_argument("log", metavar="LOG", help="JSON-lines inference log (file or directory)")
    audit.add_argument(
        "--rate-limit", default="10/minute", help="per-client limit in rows (items), e.g. 10/minute (default)"
    )
    audit.add_argument("--latency-slo-ms", type=float, default=500.0, help="latency SLO (p95), default 500")
    audit.add_argument("--max-error-rate", type=float, default=0.05, help="error share above this is a finding")
    audit.add_argument("--repeat-threshold", type=int, default=20, help="same input this many times = probing")
    audit.add_argument("--profile", help="reference ranges JSON (aisec inference-reference) for the OOD share")
    audit.add_argument(
        "--max-ood-share", type=float, default=0.05, help="out-of-range input share above this is a finding"
    )
    audit.add_argument("--exempt-client", action="append", default=[], help="client id not rate-checked")
    audit.add_argument("--since", help="ISO-8601 start of the audited window")
    audit.add_argument("--until", help="ISO-8601 end of the audited window")
    audit.add_argument(
        "--max-bad-line-share",
        type=float,
        default=0.0,
        help="share of unattributable log lines tolerated before the audit errors (default 0: any bad line = exit 2)",
    )
    audit.add_argument(
        "--fail-severity",
        default="high",
        choices=("critical", "high", "medium", "low"),
        help="lowest finding severity that fails (exit 1); default high",
    )
    add_format_argument(audit, ("text", "json", "markdown"))
    audit.set_defaults(func=_audit)

    load = subparsers.add_parser(
        "load-test",
        help="bounded load test of a model endpoint (p50/p95/p99, throughput, errors vs SLO)",
        description="Stops by itself (request, concurrency and duration caps). Loopback only unless --allow-remote. "
        "Exit 0 pass, 1 SLO/error breach, 2 bad input or endpoint down.",
    )
    load.add_argument("url", metavar="URL", help="endpoint to load (http:// or https://)")
    load.add_argument("--requests", "-n", type=int, default=100, help="total requests to send (default 100)")
    load.add_argument("--concurrency", "-c", type=int, default=10, help="requests in flight at once (default 10)")
    load.add_argument("--duration", type=float, default=60.0, help="wall-clock cap in seconds (default 60)")
    load.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in seconds")
    load.add_argument("--payload", metavar="FILE", help="request body file (sent with POST)")
    load.add_argument("--method", help="HTTP method (default: POST with --payload, else GET)")
    load.add_argument("--client-id", default="aisec-loadtest", help="client id sent with each request")
    load.add_argument("--slo-p95-ms", type=float, help="p95 latency SLO in milliseconds (default: none)")
    load.add_argument("--max-error-rate", type=float, default=0.01, help="error share above this fails")
    load.add_argument("--allow-remote", action="store_true", help="allow a non-loopback target")
    add_format_argument(load, ("text", "json", "markdown"))
    load.set_defaults(func=_load)

    ref = subparsers.add_parser(
        "inference-reference",
        help="build per-feature robust ranges (the OOD reference) from a CSV of reference data",
        description="Write per-column robust ranges (quartiles ± k·IQR) of numeric reference data, the input of "
        "aisec inference-audit --profile. Exit 0 written, 2 unreadable or non-numeric data.",
    )
    ref.add_argument("csv", metavar="CSV", help="numeric reference data with a header row")
    ref.add_argument("--output", "-o", required=True, help="where to write the reference JSON")
    ref.add_argument("--exclude", action="append", default=[], help="column to leave out (e.g. the label)")
    ref.add_argument("--k", type=float, default=3.0, help="IQR multiplier (default 3)")
    ref.set_defaults(func=_reference)


def _audit(args: argparse.Namespace) -> int:
    from airflow_aisec.core import inference_audit as inference

    return run_report(
        args,
        "inference_audit",
        args.log,
        lambda: inference.audit_log(
            args.log,
            reference=args.profile,
            rate_limit_per_minute=inference.parse_rate(args.rate_limit),
            latency_slo_ms=args.latency_slo_ms,
            max_error_rate=args.max_error_rate,
            repeat_threshold=args.repeat_threshold,
            max_ood_share=args.max_ood_share,
            exempt_clients=args.exempt_client,
            since=inference.parse_time_arg(args.since, "since"),
            until=inference.parse_time_arg(args.until, "until"),
            fail_severity=args.fail_severity,
            max_bad_line_share=args.max_bad_line_share,
        ),
    )


def _load(args: argparse.Namespace) -> int:
    from airflow_aisec.core.loadtest import run_load_test
    from airflow_aisec.exceptions import AisecInputError

    def build():  # type: ignore[no-untyped-def]
        payload = None
        if args.payload:
            try:
                with open(args.payload, "rb") as fh:
                    payload = fh.read()
            except OSError as exc:
                raise AisecInputError(f"payload file {args.payload!r} is unreadable: {exc.strerror}") from exc
        return run_load_test(
            args.url,
            requests=args.requests,
            concurrency=args.concurrency,
            duration_s=args.duration,
            timeout_s=min(args.timeout, args.duration),
            payload=payload,
            method=args.method,
            client_id=args.client_id,
            slo_p95_ms=args.slo_p95_ms,
            max_error_rate=args.max_error_rate,
            allow_remote=args.allow_remote,
        )

    return run_report(args, "load_test", args.url, build)


def _reference(args: argparse.Namespace) -> int:
    from airflow_aisec.core.inference_audit import build_reference_ranges
    from airflow_aisec.exceptions import AisecError
    from airflow_aisec.utils.fs import write_json_atomic

    try:
        from airflow_aisec.utils.fs import check_output_path

        check_output_path(args.output)  # directory, symlink, under a file: refused before any work
        import pandas as pd

        try:
            frame = pd.read_csv(args.csv)
        except (OSError, ValueError) as exc:
            raise AisecError(f"reference CSV {args.csv!r} is unreadable: {exc}") from exc
        unknown = [c for c in args.exclude if c not in frame.columns]
        if unknown:  # a misspelt --exclude would silently keep the label as a feature
            raise AisecError(f"--exclude names column(s) {unknown} that reference CSV {args.csv!r} does not have")
        frame = frame.drop(columns=list(args.exclude))
        non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            raise AisecError(f"reference CSV {args.csv!r} has non-numeric columns {non_numeric} (use --exclude)")
        ref = build_reference_ranges(frame, k=args.k, source=args.csv)
        write_json_atomic(args.output, ref)
    except AisecError as exc:
        print(f"aisec inference-reference: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(ref['features'])} feature range(s) from {ref['rows']} rows to {args.output}")
    return 0
