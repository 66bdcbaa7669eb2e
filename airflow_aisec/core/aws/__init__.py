"""AWS posture checks (pure; no Airflow import; boto3 clients are passed in, botocore imported lazily).

=====================  ==========================================================================
module                 what
=====================  ==========================================================================
``common``             retries, error classification, pagination and the severity gate of every call
``catalogue``          the AWS action catalogue (IAM action / ARN-format matching)
``iam``                policy parsing and normalisation, matching, lint rules, role fetch
``s3``                 bucket posture: fetch (``s3_config``), evaluate (``s3_evaluate``), enforce
                       (``s3_enforce``), one report (``check_s3_posture``)
``sagemaker``          notebook instance and training job settings
``cloudwatch``         the metrics endpoint's series published with ``PutMetricData``; the alarms of the rules
=====================  ==========================================================================

Nothing is imported here: ``from airflow_aisec.core.aws import s3`` loads only what S3 needs.
"""
