"""``aisec cloudwatch-alarms``: CloudWatch alarms equivalent to the shipped Prometheus alert rules.

Without ``--apply`` the alarm definitions (``PutMetricAlarm`` parameters) are printed and nothing is
called. With ``--apply`` they are created or updated idempotently: ``DescribeAlarms`` first, then
``PutMetricAlarm`` only for the missing alarms and those whose settings differ. Credentials come from
boto3's standard chain. Exit 0 done, 2 error (access denied, bad input, AWS unreachable).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from airflow_aisec.cli._common import add_format_argument, clean, emit, unexpected_error

CHECK = "cloudwatch"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cloudwatch-alarms",
        help="derive (and with --apply create or update) CloudWatch alarms equivalent to the Prometheus alert rules",
        description="Print the CloudWatch alarms equivalent to deploy/prometheus/alerts.yml for the metrics "
        "published to NAMESPACE; with --apply create the missing ones and update the changed ones. "
        "Exit 0 done, 2 error (access denied, bad input). Credentials: the standard AWS chain.",
    )
    p.add_argument("--namespace", required=True, help="CloudWatch namespace the aisec metrics are published to")
    p.add_argument("--apply", action="store_true", help="create or update the alarms (default: only print them)")
    p.add_argument(
        "--dimension",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only watch series with this dimension, e.g. DAG=my_dag (repeatable)",
    )
    p.add_argument(
        "--alarm-actions", nargs="+", default=[], metavar="ARN", help="ARNs notified when an alarm fires (SNS …)"
    )
    p.add_argument(
        "--latency-threshold",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="p95 inference latency that fires AisecInferenceLatencySpike (default 2)",
    )
    p.add_argument(
        "--missing-after",
        type=int,
        default=900,
        metavar="SECONDS",
        help="AisecMetricsMissing fires when nothing was published for this long (multiple of 300; default 900); "
        "set it above the publishing task's schedule interval",
    )
    p.add_argument("--endpoint-url", help="CloudWatch endpoint (local test server)")
    p.add_argument("--region", help="AWS region (default: the AWS chain's, else us-east-1)")
    p.add_argument("--profile", help="AWS shared-config profile")
    p.add_argument(
        "--max-attempts", type=int, default=4, help="attempts per call on throttling/5xx/network (default 4)"
    )
    add_format_argument(p)
    p.set_defaults(func=_alarms)


def render_text(data: dict[str, Any]) -> str:
    lines = [f"[{'APPLIED' if data['applied'] else 'PLAN'}] cloudwatch alarms in {clean(data['namespace'])}"]
    if data["applied"]:
        lines.append(f"  {clean(data['summary'])}")
    for alarm in data["alarms"]:
        name = alarm["AlarmName"]
        outcome = data["outcome"].get(name, "")
        metrics = alarm.get("Metrics") or []
        query = metrics[0]["Expression"] if metrics else f"{alarm['Statistic']}({alarm['MetricName']})"
        if len(metrics) > 1:
            query = f"{metrics[-1]['Expression']} where m = {query}"
        lines.append(
            f"  - {clean(name)}{f' ({outcome})' if outcome else ''}: {clean(query)} "
            f"{alarm['ComparisonOperator']} {alarm['Threshold']:g}, missing data: {alarm['TreatMissingData']}"
        )
    return "\n".join(lines)


def _alarms(args: argparse.Namespace) -> int:
    from airflow_aisec.core.aws import cloudwatch
    from airflow_aisec.exceptions import AisecError
    from airflow_aisec.report import Report

    subject = f"CloudWatch namespace {args.namespace}"
    try:
        alarms = cloudwatch.alarm_definitions(
            namespace=args.namespace,
            dimensions=cloudwatch.parse_dimensions(args.dimension),
            alarm_actions=args.alarm_actions,
            latency_threshold=args.latency_threshold,
            missing_after=args.missing_after,
        )
        data: dict[str, Any] = {"namespace": args.namespace, "applied": False, "alarms": alarms, "outcome": {}}
        if args.apply:
            from airflow_aisec.cli.cloud import _client
            from airflow_aisec.core.aws.common import RetryPolicy

            result = cloudwatch.apply_alarms(
                _client(args, "cloudwatch"), alarms, retry=RetryPolicy(max_attempts=args.max_attempts)
            )
            data.update(applied=True, **result)
            for outcome in ("created", "updated", "unchanged"):
                data["outcome"].update(dict.fromkeys(result[outcome], outcome))
    except AisecError as exc:
        print(f"aisec cloudwatch-alarms: error: {clean(exc)}", file=sys.stderr)
        report = Report.start(CHECK, subject).error(f"{type(exc).__name__}: {exc}").to_dict()
        return emit(report, args.format)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a bug or an input nobody foresaw: never a traceback
        return unexpected_error(args, CHECK, exc, subject=subject)
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render_text(data) + "\n")
    return 0
