"""``aisec s3-posture`` and ``aisec iam-lint``: cloud posture checks from the command line.

Credentials come from boto3's standard chain (environment, ``~/.aws``, SSO, instance/role metadata);
``--endpoint-url`` points at an S3-compatible store or a local test server.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from airflow_aisec.cli._common import add_format_argument, run_report
from airflow_aisec.report import SEVERITIES


def register(subparsers: Any) -> None:
    from airflow_aisec.core.aws.s3_config import CHECK_GROUPS

    p = subparsers.add_parser(
        "s3-posture",
        help="check S3 buckets' security configuration (encryption, public access, TLS-only, versioning …)",
        description="Check S3 buckets' security configuration. Exit 0 pass/warn, 1 findings, 2 error "
        "(access denied, missing bucket, bad input). Credentials: the standard AWS chain.",
    )
    p.add_argument("buckets", nargs="+", metavar="BUCKET", help="bucket name or s3:// URI")
    _add_aws_arguments(p)
    p.add_argument("--require-kms", action="store_true", help="require SSE-KMS with a customer-managed key")
    p.add_argument("--kms-key-id", help="expected KMS key (and the key --enforce encrypts with)")
    p.add_argument("--no-bucket-key", action="store_true", help="do not flag SSE-KMS buckets without a Bucket Key")
    p.add_argument("--check-object-lock", action="store_true", help="also require Object Lock")
    p.add_argument("--check-account", action="store_true", help="also check the account-level public access block")
    p.add_argument(
        "--checks",
        help=f"comma-separated subset of check groups (default all but object_lock): {','.join(CHECK_GROUPS)}",
    )
    p.add_argument(
        "--enforce",
        action="store_true",
        help="apply the safe fixes (default encryption, public access block, versioning) and report them",
    )
    _add_fail_on(p)
    add_format_argument(p, ("text", "json", "markdown"))
    p.set_defaults(func=_s3_posture)

    p = subparsers.add_parser(
        "iam-lint",
        help="lint IAM policy documents for least privilege (wildcards, PassRole, role-purpose rules)",
        description="Lint IAM policy JSON files (and, with --role, the policies of IAM roles). Exit 0 pass/warn, "
        "1 findings, 2 error.",
    )
    p.add_argument("policies", nargs="*", metavar="POLICY_JSON", help="policy document file")
    p.add_argument("--role", action="append", default=[], metavar="NAME", help="also lint this IAM role's policies")
    p.add_argument("--purpose", choices=("inference", "training"), help="role purpose for every policy")
    p.add_argument(
        "--training-data-bucket",
        action="append",
        default=[],
        metavar="BUCKET",
        help="bucket holding training data (repeatable); inference roles must not write it",
    )
    p.add_argument(
        "--notebook-instance",
        action="append",
        default=[],
        metavar="NAME",
        help="also check this SageMaker notebook instance's settings (repeatable)",
    )
    p.add_argument(
        "--training-job",
        action="append",
        default=[],
        metavar="NAME",
        help="also check this SageMaker training job's settings (repeatable)",
    )
    _add_aws_arguments(p)
    _add_fail_on(p)
    add_format_argument(p, ("text", "json", "markdown"))
    p.set_defaults(func=_iam_lint)


def _add_aws_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint-url", help="S3/IAM endpoint (S3-compatible store, local test server)")
    p.add_argument("--region", help="AWS region (default: the AWS chain's, else us-east-1)")
    p.add_argument("--profile", help="AWS shared-config profile")
    p.add_argument(
        "--max-attempts", type=int, default=4, help="attempts per call on throttling/5xx/network (default 4)"
    )


def _add_fail_on(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="low",
        help="lowest severity that fails (exit 1); lower findings only warn (default: low)",
    )


def _client(args: argparse.Namespace, service: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(profile_name=args.profile) if args.profile else boto3.session.Session()
    region = args.region or session.region_name or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    # botocore's own retries are off: core retries with bounded backoff and reports what it did.
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60)
    return session.client(service, region_name=region, endpoint_url=args.endpoint_url, config=config)


def _s3_posture(args: argparse.Namespace) -> int:
    from airflow_aisec.core.aws import s3
    from airflow_aisec.core.aws.common import RetryPolicy, retry_call

    subject = ", ".join(f"s3://{b}" for b in args.buckets)

    def build() -> Any:
        retry = RetryPolicy(max_attempts=args.max_attempts)
        account = None
        if args.check_account:
            sts = _client(args, "sts")
            account_id = retry_call(
                lambda: sts.get_caller_identity()["Account"],
                target="the caller's account",
                name="account",
                api="get_caller_identity",
                retry=retry,
            )
            s3control = _client(args, "s3control")
            if args.endpoint_url:
                s3.use_path_style_s3control(s3control)
            account = (s3control, account_id)
        checks = [c.strip() for c in args.checks.split(",") if c.strip()] if args.checks else None
        return s3.check_s3_posture(
            _client(args, "s3"),
            args.buckets,
            require_kms=args.require_kms,
            kms_key_id=args.kms_key_id,
            require_bucket_key=not args.no_bucket_key,
            check_object_lock=args.check_object_lock,
            checks=checks,
            enforce=args.enforce,
            account=account,
            fail_on=args.fail_on,
            retry=retry,
        )

    return run_report(args, "s3_posture", subject, build)


def _iam_lint(args: argparse.Namespace) -> int:
    from airflow_aisec.core.aws.common import RetryPolicy
    from airflow_aisec.core.aws.iam import lint_iam_policies
    from airflow_aisec.exceptions import AisecInputError

    sagemaker = [*args.notebook_instance, *args.training_job]
    subject = ", ".join([*args.policies, *(f"role/{r}" for r in args.role), *sagemaker]) or "(none)"

    def build() -> Any:
        if not args.policies and not args.role and not sagemaker:
            raise AisecInputError("give at least one POLICY_JSON file, --role, --notebook-instance or --training-job")
        return lint_iam_policies(
            policy_files=args.policies,
            role_names=args.role,
            iam_client=_client(args, "iam") if args.role else None,
            purpose=args.purpose,
            training_data_buckets=args.training_data_bucket,
            fail_on=args.fail_on,
            retry=RetryPolicy(max_attempts=args.max_attempts),
            sagemaker_client=_client(args, "sagemaker") if sagemaker else None,
            notebook_instances=args.notebook_instance,
            training_jobs=args.training_job,
        )

    return run_report(args, "iam_policy", subject, build)
