"""The former import paths ``airflow_aisec.core.cloud`` / ``core.iam`` / ``core.aws_catalogue`` still work:
every name of the former modules resolves, to the very object of its new module, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import sys

import pytest

from airflow_aisec.core.aws import catalogue, common, s3, s3_config, s3_enforce, s3_evaluate, sagemaker
from airflow_aisec.core.aws.iam import lint, match, policy, rules

#: Every top-level name the former modules defined (taken from them before the move).
FORMER_CLOUD = """S3_CHECKS CHECK_GROUPS DEFAULT_CHECK_GROUPS NOT_CONFIGURED TRANSIENT_CODES DENIED_CODES MISSING_CODES
PAB_KEYS PUBLIC_GROUPS AWS_MANAGED_S3_KEY_ALIASES RetryPolicy CallError NotConfigured error_code _is_network_error
CallStats call_api retry_call _snake _describe BucketConfig fetch_bucket_config fetch_account_public_access_block
PostureOptions S3Finding evaluate_bucket _encryption_findings _same_key _policy_statements public_statements
_public_findings denies_insecure_transport _principal_all _deny_covers_bucket _deny_covers_all_objects
_is_insecure_transport_condition evaluate_account_pab plan_remediation _item apply_remediation check_s3_posture
_call_error_args use_path_style_s3control lint_iam_policies SAGEMAKER_CHECKS evaluate_notebook_instance
evaluate_training_job audit_sagemaker""".split()
FORMER_IAM = """RULES S3_BUCKET_WRITE_ACTIONS S3_DELETE_ACTIONS _S3_DELETE_LOWER INFERENCE_WORDS TRAINING_WORDS
PURPOSE_TAG_KEYS PROBE_OBJECT ANY_BUCKET Statement Policy MAX_POLICY_BYTES MAX_STATEMENTS VERSIONS DOCUMENT_KEYS
STATEMENT_KEYS _BASE_OPERATORS KNOWN_OPERATORS NEGATED_OPERATORS _strings _condition_value _principal _conditions
parse_policy_text normalize_policy _catalogue action_matches granted_actions _granted unknown_action_patterns
resource_matches resource_certainly_matches _any_partition statement_covers_action statement_covers_resource
is_star_resource _FOREIGN _format_probe resource_covers_all_of_type RESTRICTING_KEYS MIN_IPV4_PREFIX MIN_IPV6_PREFIX
_base_operator _WHO_ARN_KEYS WILDCARD_OPERATORS _PASS_SERVICES _POLICY_VARIABLE has_policy_variable
_ADMIN_SET_VARIABLES _tag_key _self_reference _everything_value _cidr_prefix _cidr_too_wide vacuous_block _true_now
_all_numbers_at_most condition_restricts PASSROLE_KEYS PASSROLE_KEY_PREFIXES passrole_restricted vacuous_conditions
condition_makes_non_public PRINCIPAL_TYPES _AWS_PRINCIPAL principal_is_everyone principals_not_understood
effective_allows certain_deny _deny_covers is_read_only_action _sample_arn role_purpose _purpose_from_text
_bucket_name LintFinding lint_policy MAX_EXPANSION_COST MAX_RESOURCE_PATTERNS MAX_WILDCARD_SERVICE_RESOURCES
_check_cost _mismatch_findings S3_OBJECT_FORMAT S3_BUCKET_FORMAT certainly_covers_prefix deny_covers_prefix
deny_covers_pattern _could_apply _inference_findings _training_findings finish_report load_policy_file
split_wrapped lint_policy_files lint_documents _keep_policy_text fetch_role_documents""".split()

NEW_CLOUD_HOMES = (common, s3, s3_config, s3_evaluate, s3_enforce, sagemaker, lint)
NEW_IAM_HOMES = (policy, match, rules, lint, common)


def _fresh(name: str):
    sys.modules.pop(name, None)
    with pytest.warns(DeprecationWarning, match=r"is deprecated; import airflow_aisec\.core\.aws"):
        return importlib.import_module(name)


def _home(name: str, homes) -> object:
    for mod in homes:
        if name in vars(mod):
            return vars(mod)[name]
    raise AssertionError(f"{name} has no new home")


@pytest.mark.parametrize(
    ("module", "names", "homes"),
    [
        ("airflow_aisec.core.cloud", FORMER_CLOUD, NEW_CLOUD_HOMES),
        ("airflow_aisec.core.iam", FORMER_IAM, NEW_IAM_HOMES),
    ],
)
def test_every_former_name_resolves_to_the_object_of_its_new_module(module, names, homes):
    old = _fresh(module)
    for name in names:
        assert getattr(old, name) is _home(name, homes), name
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        _ = old.no_such_name


def test_the_former_catalogue_path_is_the_same_module():
    old = _fresh("airflow_aisec.core.aws_catalogue")
    assert old is catalogue  # monkeypatching either patches both
    from airflow_aisec.core.aws_catalogue import catalogue as old_function

    assert old_function is catalogue.catalogue


def test_star_imports_of_the_former_paths_give_the_public_names():
    namespace: dict[str, object] = {}
    exec("from airflow_aisec.core.cloud import *\nfrom airflow_aisec.core.iam import *", namespace)
    assert namespace["check_s3_posture"] is s3.check_s3_posture
    assert namespace["lint_iam_policies"] is lint.lint_iam_policies
    assert namespace["lint_policy"] is lint.lint_policy
    assert namespace["finish_report"] is common.finish_report
