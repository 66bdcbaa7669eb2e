"""S3 posture remediation: the plan of safe changes, and applying it.

Only three changes are ever made, all additive and safe for running pipelines: default encryption
(``PutBucketEncryption``), the bucket public access block, versioning. An existing encryption
configuration, bucket policies, ownership and logging are reported, never changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_aisec.core.aws.common import CallError, CallStats, RetryPolicy, call_api
from airflow_aisec.core.aws.s3_config import PAB_KEYS, S3_CHECKS, PostureOptions, S3Finding
from airflow_aisec.exceptions import AisecInputError


# --------------------------------------------------------------------------------------- remediation
def plan_remediation(bucket: str, findings: Sequence[S3Finding], options: PostureOptions) -> list[dict[str, Any]]:
    """The safe changes that would fix ``findings`` (encryption, public access block, versioning).

    Each item: ``{"bucket", "action" (S3 API), "fixes" (finding ids), "params" | "skipped"}``.
    """
    ids = {f.id for f in findings if f.bucket == bucket}
    plan: list[dict[str, Any]] = []
    enc_ids = sorted(ids & {i for i in S3_CHECKS if i.startswith("AISEC-S3-ENC-")})
    # Only a bucket with no encryption configuration at all gets one: an existing configuration (its
    # KMS key, algorithm or Bucket Key setting) is never changed, whatever the findings say.
    unset = any(
        f.id == "AISEC-S3-ENC-NONE" and f.bucket == bucket and not f.details.get("configured") for f in findings
    )
    if enc_ids and not unset:
        plan.append(
            {
                "bucket": bucket,
                "action": "put_bucket_encryption",
                "fixes": enc_ids,
                "skipped": "the bucket already has an encryption configuration; enforce never changes an existing "
                "one (its KMS key, algorithm or Bucket Key): change it deliberately",
            }
        )
    elif enc_ids:
        if options.kms_key_id:
            default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": options.kms_key_id}
            rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}
            plan.append(_item(bucket, "put_bucket_encryption", enc_ids, {"Rules": [rule]}))
        elif options.require_kms:
            plan.append(
                {
                    "bucket": bucket,
                    "action": "put_bucket_encryption",
                    "fixes": enc_ids,
                    "skipped": "require_kms is set but no kms_key_id was given to encrypt with",
                }
            )
        else:
            rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            plan.append(_item(bucket, "put_bucket_encryption", ["AISEC-S3-ENC-NONE"], {"Rules": [rule]}))
    pab_ids = sorted(ids & {"AISEC-S3-PAB-MISSING", "AISEC-S3-PAB-PARTIAL"})
    if pab_ids:
        plan.append(_item(bucket, "put_public_access_block", pab_ids, dict.fromkeys(PAB_KEYS, True)))
    if "AISEC-S3-VERSIONING-OFF" in ids:
        plan.append(_item(bucket, "put_bucket_versioning", ["AISEC-S3-VERSIONING-OFF"], {"Status": "Enabled"}))
    return plan


def _item(bucket: str, action: str, fixes: list[str], params: dict[str, Any]) -> dict[str, Any]:
    return {"bucket": bucket, "action": action, "fixes": list(fixes), "params": params}


def apply_remediation(
    client: Any, plan: Sequence[Mapping[str, Any]], *, retry: RetryPolicy, stats: CallStats | None = None
) -> list[dict[str, Any]]:
    """Apply every non-skipped plan item; returns the items with ``status`` ``applied`` / ``failed`` / ``skipped``."""
    results = []
    for item in plan:
        result = dict(item)
        if "skipped" in item:
            result["status"] = "skipped"
            results.append(result)
            continue
        bucket, action, params = item["bucket"], item["action"], item["params"]
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if action == "put_bucket_encryption":
            kwargs["ServerSideEncryptionConfiguration"] = params
        elif action == "put_public_access_block":
            kwargs["PublicAccessBlockConfiguration"] = params
        elif action == "put_bucket_versioning":
            kwargs["VersioningConfiguration"] = params
        else:  # pragma: no cover - the plan only contains the three above
            raise AisecInputError(f"unsupported remediation {action!r}")
        try:
            call_api(client, action, bucket=bucket, retry=retry, stats=stats, **kwargs)
            result["status"] = "applied"
        except CallError as exc:
            result["status"] = "failed"
            result["error"] = exc.to_dict()
        results.append(result)
    return results
