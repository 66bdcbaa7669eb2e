"""Cloud posture operators: S3 bucket configuration, IAM least privilege, SageMaker settings.

boto3 clients come from providers-amazon's ``AwsBaseHook(aws_conn_id=…)`` (:class:`AisecAwsHookMixin`,
after providers-amazon's ``AwsBaseOperator``), so existing AWS connections, assumed roles and
``endpoint_url`` overrides (S3-compatible stores) work unchanged. providers-amazon and boto3 are imported
only when the task runs (never at DAG parse time).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.operators.base import AisecBaseOperator
from airflow_aisec.report import SEVERITIES, parse_fail_on
from airflow_aisec.utils.values import parse_bool

if TYPE_CHECKING:
    from airflow.sdk import Context

INSTALL_HINT = "install the AWS extra: pip install 'airflow-aisec[aws]' (apache-airflow-providers-amazon)"


def _as_list(value: str | Sequence[str] | None, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items = [v.strip() for v in value.replace("\n", ",").split(",")]
    else:
        items = [str(v).strip() for v in value]
    return [v for v in items if v]


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """Summary metadata for outlet asset events (no secrets: ids, counts, status)."""
    counts: dict[str, int] = {}
    for f in data["findings"]:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    return {"aisec_check": data["check"], "status": data["status"], "findings": counts, "subject": data["subject"]}


_as_bool = parse_bool  # the one boolean parser (airflow_aisec.utils.values)


class _LazyHookClass:
    """Class attribute naming a providers-amazon hook class, imported on first access.

    providers-amazon imports boto3 at module level, so the hook class cannot be imported when a DAG file
    is parsed; it is resolved when a task first builds its hook. A missing providers-amazon is an input
    error that says what to install.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        module, _, name = self.path.rpartition(".")
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError as exc:
            conn_id = getattr(obj, "aws_conn_id", None)
            raise AisecInputError(f"aws_conn_id={conn_id!r} needs providers-amazon: {INSTALL_HINT}") from exc


class AisecAwsHookMixin:
    """The AWS side of an aisec operator, after providers-amazon's ``AwsBaseHookMixin`` / ``AwsBaseOperator``.

    Same constructor parameters (``aws_conn_id``, ``region_name``, ``verify``, ``botocore_config``), same
    ``aws_hook_class`` / ``_hook_parameters`` / lazy ``hook`` shape, so existing AWS connections, assumed
    roles and ``endpoint_url`` overrides work unchanged. providers-amazon's own mixin is not used: its
    module imports boto3 (DAG-parse cost, and an ImportError at parse time when the AWS extra is not
    installed), and its ``hook`` serves one client type where these checks need two (S3 and S3 Control,
    IAM and SageMaker). The hook class is imported when the task first builds a hook.

    :param aws_conn_id: Airflow AWS connection (``extra.endpoint_url`` for S3-compatible stores); ``None``
        uses boto3's default credential chain. (templated)
    :param region_name: AWS region; default from the connection. (templated)
    :param verify: whether to verify TLS certificates, or a CA bundle path; default from the connection.
        (templated)
    :param botocore_config: botocore client configuration as a dict (timeouts, retries, proxies).
    """

    #: The providers-amazon hook class every client of this operator is built with.
    aws_hook_class: Any = _LazyHookClass("airflow.providers.amazon.aws.hooks.base_aws.AwsBaseHook")
    #: The boto3 client type of :attr:`hook`.
    aws_client_type: ClassVar[str] = ""

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict[str, Any] | None

    def _set_aws_params(
        self,
        aws_conn_id: str | None,
        region_name: str | None,
        verify: bool | str | None,
        botocore_config: dict[str, Any] | None,
    ) -> None:
        if botocore_config is not None and not isinstance(botocore_config, dict):
            raise ValueError(f"botocore_config must be a dict, not {type(botocore_config).__name__}")
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "config": self.botocore_config,
            "client_type": self.aws_client_type,
        }

    @cached_property
    def hook(self) -> Any:
        """The AWS hook of :attr:`aws_client_type` (built on first use, at run time)."""
        return self.aws_hook_class(**self._hook_parameters)

    def client_hook(self, client_type: str) -> Any:
        """Another client of the same connection, region, TLS and botocore settings."""
        return self.aws_hook_class(**{**self._hook_parameters, "client_type": client_type})


#: Template fields every AWS operator here adds (as providers-amazon's ``aws_template_fields``).
AWS_TEMPLATE_FIELDS = ("aws_conn_id", "region_name", "verify")


def _check_fail_on(fail_on: str) -> None:
    """The one validation of ``fail_on`` (the gate itself is the core's ``finish_report``)."""
    parse_fail_on(fail_on, choices=SEVERITIES)


class S3BucketPostureOperator(AisecAwsHookMixin, AisecBaseOperator):
    """Check (and optionally remediate) the security configuration of S3 buckets.

    Per bucket: default encryption (SSE-S3 vs SSE-KMS, customer-managed key, bucket key), the bucket
    public access block, public bucket policy / ACL grants, a TLS-only bucket policy (``Deny`` on
    ``aws:SecureTransport`` = false, any spelling), versioning, ownership controls (ACLs disabled), access
    logging, optionally Object Lock and the account-level public access block. Every finding carries the
    equivalent prowler / checkov check ids. "Not configured" is a finding; access denied or a missing
    bucket makes the report ``error`` (naming the bucket and API call); throttling and network errors are
    retried with bounded backoff, then the task retries.

    :param buckets: bucket names (or ``s3://`` URIs), a list or a comma-separated string. (templated)
    :param aws_conn_id: Airflow AWS connection (``extra.endpoint_url`` for S3-compatible stores). (templated)
    :param region_name: AWS region; default from the connection. (templated)
    :param verify: verify TLS certificates (or a CA bundle path); default from the connection. (templated)
    :param botocore_config: botocore client configuration, as a dict.
    :param require_kms: require SSE-KMS with a customer-managed KMS key (not SSE-S3, and not the
        AWS-managed ``aws/s3`` key), so that reading the data also needs a KMS permission you control.
    :param kms_key_id: KMS key id/ARN/alias: the expected key, and the key ``enforce`` encrypts with. (templated)
    :param require_bucket_key: flag SSE-KMS buckets without an S3 Bucket Key (low severity).
    :param check_object_lock: also require Object Lock.
    :param check_account: also check the account-level public access block (S3 Control API).
    :param checks: subset of check groups to run, a list or a comma-separated string (default all but
        ``object_lock``); see :data:`airflow_aisec.core.aws.s3.CHECK_GROUPS`. Useful for S3-compatible
        stores lacking some APIs. (templated)
    :param enforce: apply the safe remediations (default encryption, public access block, versioning) and
        report exactly what changed. Without it nothing is modified; the report holds the plan. A bool, or
        ``"true"`` / ``"false"`` when templated from params. (templated)
    :param fail_on: lowest finding severity that fails the task; lower ones only ``warn``.
    :param max_attempts: attempts per API call for throttling / 5xx / network errors (bounded backoff).
    """

    aisec_check = "s3_posture"
    aws_client_type = "s3"
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "buckets",
        "aws_conn_id",
        "region_name",
        "kms_key_id",
        "checks",
        "enforce",
        "verify",
    )
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        buckets: str | Sequence[str],
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        require_kms: bool = False,
        kms_key_id: str | None = None,
        require_bucket_key: bool = True,
        check_object_lock: bool = False,
        check_account: bool = False,
        checks: str | Sequence[str] | None = None,
        enforce: bool | str = False,
        fail_on: str = "low",
        max_attempts: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_fail_on(fail_on)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self._set_aws_params(aws_conn_id, region_name, verify, botocore_config)
        self.buckets = buckets
        self.require_kms = require_kms
        self.kms_key_id = kms_key_id
        self.require_bucket_key = require_bucket_key
        self.check_object_lock = check_object_lock
        self.check_account = check_account
        self.checks = checks
        self.enforce = enforce
        self.fail_on = fail_on
        self.max_attempts = max_attempts

    def execute(self, context: Context) -> dict[str, Any]:
        buckets = _as_list(self.buckets, "buckets")
        subject = ", ".join(f"s3://{b}" for b in buckets) or "s3://"
        data = self.run_check(context, subject=subject, check=lambda: self._check(buckets))
        self.emit_asset_events(context, _summary(data))
        return data

    def _check(self, buckets: list[str]) -> Any:
        from airflow_aisec.core.aws import s3
        from airflow_aisec.core.aws.common import RetryPolicy

        if not buckets:
            raise AisecInputError("buckets: give at least one bucket name")
        account = None
        if self.check_account:
            s3control = self.client_hook("s3control").conn
            if self.hook.conn_config.endpoint_url:
                s3.use_path_style_s3control(s3control)
            account = (s3control, self.hook.account_id)
        return s3.check_s3_posture(
            self.hook.conn,
            buckets,
            require_kms=self.require_kms,
            kms_key_id=self.kms_key_id or None,
            require_bucket_key=self.require_bucket_key,
            check_object_lock=self.check_object_lock,
            checks=_as_list(self.checks, "checks") or None,
            enforce=_as_bool(self.enforce, "enforce"),
            account=account,
            fail_on=self.fail_on,
            retry=RetryPolicy(max_attempts=self.max_attempts),
        )


class IamPolicyLintOperator(AisecAwsHookMixin, AisecBaseOperator):
    """Lint IAM policy documents for least privilege: local JSON files and/or the policies of IAM roles.

    Every action pattern is expanded against the AWS action catalogue (``*`` / ``?``, any case;
    ``NotAction`` complemented). Flags grants of every action or of every action of a service, of
    every resource, ``NotAction`` / ``NotResource`` in ``Allow``, ``iam:PassRole`` without a restricting
    condition (always-true conditions count as none), unknown actions, action/resource-type mismatches,
    and role-purpose rules: an inference role must not write or delete training data, a training role
    must not delete. Purpose comes from ``purpose``, else a role tag (``aisec:purpose`` / ``purpose``),
    else the role name. Malformed policy JSON fails the task (error), never a skipped statement.

    SageMaker settings have their own operator, :class:`SageMakerPostureOperator`. The
    ``sagemaker_notebook_instances`` / ``sagemaker_training_jobs`` parameters still work here (their
    findings join this report, as before) but are deprecated.

    :param policy_files: local policy JSON files (bare document, or ``{"RoleName", "Tags",
        "PolicyDocument"}``). (templated)
    :param role_names: IAM roles whose inline and attached policies are fetched through ``aws_conn_id``. (templated)
    :param aws_conn_id: Airflow AWS connection used for ``role_names``. (templated)
    :param region_name: AWS region; default from the connection. (templated)
    :param verify: verify TLS certificates (or a CA bundle path); default from the connection. (templated)
    :param botocore_config: botocore client configuration, as a dict.
    :param purpose: ``"inference"`` or ``"training"`` for every policy (overrides tags and names).
    :param training_data_buckets: buckets holding training data; an inference role must not write them
        (without the list: must not write any bucket). (templated)
    :param sagemaker_notebook_instances: deprecated: use :class:`SageMakerPostureOperator`. (templated)
    :param sagemaker_training_jobs: deprecated: use :class:`SageMakerPostureOperator`. (templated)
    :param fail_on: lowest finding severity that fails the task; lower ones only ``warn``.
    :param max_attempts: attempts per fetch for throttling / network errors.
    """

    aisec_check = "iam_policy"
    aws_client_type = "iam"
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "policy_files",
        "role_names",
        "aws_conn_id",
        "training_data_buckets",
        "sagemaker_notebook_instances",
        "sagemaker_training_jobs",
        "region_name",
        "verify",
    )
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        policy_files: str | Sequence[str] = (),
        role_names: str | Sequence[str] = (),
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        purpose: str | None = None,
        training_data_buckets: str | Sequence[str] = (),
        sagemaker_notebook_instances: str | Sequence[str] = (),
        sagemaker_training_jobs: str | Sequence[str] = (),
        fail_on: str = "low",
        max_attempts: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (policy_files or role_names or sagemaker_notebook_instances or sagemaker_training_jobs):
            raise ValueError("IamPolicyLintOperator needs policy_files, role_names or SageMaker resources")
        if purpose is not None and purpose not in ("inference", "training"):
            raise ValueError(f"purpose must be 'inference' or 'training', not {purpose!r}")
        _check_fail_on(fail_on)
        if sagemaker_notebook_instances or sagemaker_training_jobs:
            warnings.warn(
                "IamPolicyLintOperator(sagemaker_notebook_instances=…, sagemaker_training_jobs=…) is deprecated: "
                "check SageMaker settings with SageMakerPostureOperator(notebook_instances=…, training_jobs=…)",
                DeprecationWarning,
                stacklevel=2,
            )
        self._set_aws_params(aws_conn_id, region_name, verify, botocore_config)
        self.policy_files = policy_files
        self.role_names = role_names
        self.purpose = purpose
        self.training_data_buckets = training_data_buckets
        self.sagemaker_notebook_instances = sagemaker_notebook_instances
        self.sagemaker_training_jobs = sagemaker_training_jobs
        self.fail_on = fail_on
        self.max_attempts = max_attempts

    def execute(self, context: Context) -> dict[str, Any]:
        files = _as_list(self.policy_files, "policy_files")
        roles = _as_list(self.role_names, "role_names")
        notebooks = _as_list(self.sagemaker_notebook_instances, "sagemaker_notebook_instances")
        jobs = _as_list(self.sagemaker_training_jobs, "sagemaker_training_jobs")
        subject = ", ".join([*files, *(f"role/{r}" for r in roles), *notebooks, *jobs])
        data = self.run_check(context, subject=subject, check=lambda: self._check(files, roles, notebooks, jobs))
        self.emit_asset_events(context, _summary(data))
        return data

    def _check(self, files: list[str], roles: list[str], notebooks: list[str], jobs: list[str]) -> Any:
        from airflow_aisec.core.aws.common import RetryPolicy
        from airflow_aisec.core.aws.iam import lint_iam_policies

        return lint_iam_policies(
            policy_files=files,
            role_names=roles,
            iam_client=self.hook.conn if roles else None,
            purpose=self.purpose,
            training_data_buckets=_as_list(self.training_data_buckets, "training_data_buckets"),
            fail_on=self.fail_on,
            retry=RetryPolicy(max_attempts=self.max_attempts),
            sagemaker_client=self.client_hook("sagemaker").conn if (notebooks or jobs) else None,
            notebook_instances=notebooks,
            training_jobs=jobs,
        )


class SageMakerPostureOperator(AisecAwsHookMixin, AisecBaseOperator):
    """Check the security settings of SageMaker notebook instances and training jobs.

    Notebook instances: direct internet access, root access, storage encrypted with a customer-managed
    KMS key, placement in a VPC subnet. Training jobs: inter-container traffic encryption, volume and
    output KMS keys, network isolation. Each finding carries the equivalent prowler / checkov ids. A
    resource that does not exist is an input error, a denied read makes the report ``error`` (both name
    the resource and the API call); throttling and network errors are retried, then the task retries.
    The report's ``check`` is ``iam_policy``: the report schema has no SageMaker check name, and these
    findings were reported by the IAM lint before this operator existed.

    :param notebook_instances: notebook instance names, a list or a comma-separated string. (templated)
    :param training_jobs: training job names, a list or a comma-separated string. (templated)
    :param aws_conn_id: Airflow AWS connection. (templated)
    :param region_name: AWS region; default from the connection. (templated)
    :param verify: verify TLS certificates (or a CA bundle path); default from the connection. (templated)
    :param botocore_config: botocore client configuration, as a dict.
    :param fail_on: lowest finding severity that fails the task; lower ones only ``warn``.
    :param max_attempts: attempts per API call for throttling / 5xx / network errors (bounded backoff).
    """

    aisec_check = "iam_policy"
    aws_client_type = "sagemaker"
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "notebook_instances",
        "training_jobs",
        *AWS_TEMPLATE_FIELDS,
    )
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        notebook_instances: str | Sequence[str] = (),
        training_jobs: str | Sequence[str] = (),
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        fail_on: str = "low",
        max_attempts: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (notebook_instances or training_jobs):
            raise ValueError("SageMakerPostureOperator needs notebook_instances or training_jobs")
        _check_fail_on(fail_on)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self._set_aws_params(aws_conn_id, region_name, verify, botocore_config)
        self.notebook_instances = notebook_instances
        self.training_jobs = training_jobs
        self.fail_on = fail_on
        self.max_attempts = max_attempts

    def execute(self, context: Context) -> dict[str, Any]:
        notebooks = _as_list(self.notebook_instances, "notebook_instances")
        jobs = _as_list(self.training_jobs, "training_jobs")
        subject = ", ".join(
            [*(f"sagemaker/notebook-instance/{n}" for n in notebooks), *(f"sagemaker/training-job/{j}" for j in jobs)]
        )
        data = self.run_check(context, subject=subject, check=lambda: self._check(notebooks, jobs))
        self.emit_asset_events(context, _summary(data))
        return data

    def _check(self, notebooks: list[str], jobs: list[str]) -> Any:
        from airflow_aisec.core.aws.common import RetryPolicy
        from airflow_aisec.core.aws.sagemaker import check_sagemaker_posture

        return check_sagemaker_posture(
            self.hook.conn,
            notebook_instances=notebooks,
            training_jobs=jobs,
            fail_on=self.fail_on,
            retry=RetryPolicy(max_attempts=self.max_attempts),
        )
