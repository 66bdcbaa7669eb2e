"""IAM lint purpose rules: an inference role that can write ANY training object, however the action
and resource are spelled, is found; a Deny only neutralises what it certainly covers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.aws import iam
from tests.adversarial.iam_policy.test_wildcards import _doc, spelling_of

BUCKET = "train-data"


@st.composite
def write_grant(draw) -> dict:
    action = draw(
        st.sampled_from(
            ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectRetention", "s3:RestoreObject", "s3:PutObjectAcl"]
        )
    )
    pattern = draw(spelling_of(action))
    resource = draw(
        st.sampled_from(
            [
                f"arn:aws:s3:::{BUCKET}/*",
                f"arn:aws:s3:::{BUCKET}/models/*",
                f"arn:aws:s3:::{BUCKET}/a?c",
                f"arn:aws:s3:::{BUCKET}*",
                "arn:aws:s3:::train-*/*",
                "arn:aws:s3:::*",
                f"arn:aws:s3:::{BUCKET}/${{aws:username}}/*",
                "*",
            ]
        )
    )
    return {"Effect": "Allow", "Action": pattern, "Resource": resource}


partial_denies = st.sampled_from(
    [
        None,
        {"Effect": "Deny", "Action": "s3:*", "Resource": f"arn:aws:s3:::{BUCKET}/a*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": f"arn:aws:s3:::{BUCKET}/${{aws:username}}/*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": f"arn:aws-cn:s3:::{BUCKET}/*"},
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
        },
    ]
)


@settings(max_examples=120)
@given(grant=write_grant(), deny=partial_denies)
def test_inference_write_to_any_training_object_is_found(grant, deny):
    statements = [grant] + ([deny] if deny else [])
    found = iam.lint_policy(_doc(*statements), purpose="inference", training_data_buckets=[BUCKET])
    assert "AISEC-IAM-INFERENCE-WRITES-DATA" in {f.id for f in found}, statements


@settings(max_examples=40)
@given(grant=write_grant())
def test_a_deny_of_every_key_neutralises_the_write(grant):
    deny = {
        "Effect": "Deny",
        "Action": "S3:*",
        "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
    }
    found = iam.lint_policy(_doc(grant, deny), purpose="inference", training_data_buckets=[BUCKET])
    assert "AISEC-IAM-INFERENCE-WRITES-DATA" not in {f.id for f in found}, grant


partial_delete_denies = st.sampled_from(
    [
        "arn:aws:s3:::models/*e",
        "arn:aws:s3:::models/?",
        "arn:aws:s3:::models/a*",
        "arn:aws:s3:::models/${aws:username}/*",
        "arn:aws-cn:s3:::models/*",
        "arn:aws:s3:::model/*",
    ]
)


@settings(max_examples=80)
@given(
    action=st.sampled_from(
        ["s3:DeleteObject", "s3:DeleteObjectVersion", "sagemaker:DeleteModel", "s3:PutLifecycleConfiguration"]
    ),
    data=st.data(),
    deny_resource=partial_delete_denies,
)
def test_training_delete_survives_a_deny_that_covers_only_part(action, data, deny_resource):
    pattern = data.draw(spelling_of(action))
    allow = {"Effect": "Allow", "Action": pattern, "Resource": "arn:aws:s3:::models/*"}
    deny = {"Effect": "Deny", "Action": "*", "Resource": deny_resource}
    found = iam.lint_policy(_doc(allow, deny), purpose="training")
    assert "AISEC-IAM-TRAINING-CAN-DELETE" in {f.id for f in found}, (pattern, deny_resource)
