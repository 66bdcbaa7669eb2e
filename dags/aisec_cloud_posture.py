"""Cloud posture: least-privilege lint of IAM policies, and S3 bucket posture when a store is configured.

Runs as-is with no network: the IAM lint reads the policy documents bundled under ``data/iam/`` (or
``$AISEC_IAM_POLICY_DIR``), and the S3 branch is *skipped* with a clear message unless an AWS connection
and buckets are given, through the run's ``conf`` / params or the environment:

* ``AISEC_S3_CONN_ID`` (param ``aws_conn_id``): an Airflow AWS connection; its ``extra.endpoint_url``
  may point at an S3-compatible store (the docker-compose stack sets one for MinIO).
* ``AISEC_S3_BUCKETS`` (param ``buckets``): comma-separated bucket names.
* ``AISEC_S3_CHECKS`` (param ``checks``): optional subset of check groups (S3-compatible stores implement
  only some of the S3 configuration APIs).

``conf={"policy_set": "overprivileged"}`` lints the deliberately over-privileged examples instead (the task
fails, which is the point); ``conf={"enforce": true}`` lets the S3 task apply the safe fixes.

**Workers.** No task hands a file to another: the policy paths travel by XCom and the policy folder is
read-only data shipped with the DAGs, so separate Celery hosts need nothing shared. **On Kubernetes**
(KubernetesExecutor) the same holds; give the pods AWS credentials through the connection (or IRSA),
never through files.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowSkipException

from airflow_aisec.operators.cloud import IamPolicyLintOperator, S3BucketPostureOperator
from airflow_aisec.utils.paths import repo_data_file

POLICY_DIR = os.environ.get("AISEC_IAM_POLICY_DIR") or str(repo_data_file("iam"))
POLICY_SETS = {
    "least_privilege": ["inference-role-least-privilege.json", "training-role-least-privilege.json"],
    "overprivileged": ["inference-role-overprivileged.json", "training-role-overprivileged.json"],
}

with DAG(
    dag_id="aisec_cloud_posture",
    schedule=None,
    catchup=False,
    tags=["aisec", "cloud", "OWASP-ML05", "AML.T0055"],
    doc_md=__doc__,
    params={
        "policy_set": Param("least_privilege", enum=sorted(POLICY_SETS)),
        "training_data_buckets": Param("acme-ml-training-data", type="string"),
        "aws_conn_id": Param(os.environ.get("AISEC_S3_CONN_ID", ""), type="string"),
        "buckets": Param(os.environ.get("AISEC_S3_BUCKETS", ""), type="string"),
        "checks": Param(os.environ.get("AISEC_S3_CHECKS", ""), type="string"),
        "enforce": Param(False, type="boolean"),
    },
) as dag:
    # [START aisec_cloud_posture]
    @task
    def policy_files(params=None) -> list[str]:
        """The policy documents of the chosen set (paths under the policy directory)."""
        return [os.path.join(POLICY_DIR, name) for name in POLICY_SETS[params["policy_set"]]]

    iam_lint = IamPolicyLintOperator(
        task_id="iam_lint",
        policy_files=policy_files(),
        training_data_buckets="{{ params.training_data_buckets }}",
        aws_conn_id=None,
    )

    @task
    def s3_target(params=None) -> None:
        """Skip the S3 branch (with the reason) unless a connection and buckets are configured."""
        if not params["aws_conn_id"] or not params["buckets"].strip():
            raise AirflowSkipException(
                "S3 posture skipped: no S3 store configured. Set AISEC_S3_CONN_ID and AISEC_S3_BUCKETS "
                "(or conf {'aws_conn_id': ..., 'buckets': 'a,b'}) to check real buckets."
            )

    s3_posture = S3BucketPostureOperator(
        task_id="s3_posture",
        buckets="{{ params.buckets }}",
        aws_conn_id="{{ params.aws_conn_id }}",
        checks="{{ params.checks }}",
        enforce="{{ params.enforce }}",
    )

    s3_target() >> s3_posture
    # [END aisec_cloud_posture]
