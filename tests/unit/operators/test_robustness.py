"""AdversarialRobustnessOperator: constructor validation (the run is in test_monitoring's DAG)."""

from __future__ import annotations

import pytest

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.operators.robustness import AdversarialRobustnessOperator


def test_constructor_validates():
    base = {"task_id": "r", "data_path": "d.csv", "model_path": "m.joblib", "label_column": "y"}
    with pytest.raises(ValueError, match="needs model_digest or manifest_path"):
        AdversarialRobustnessOperator(**base, min_robust_accuracy=0.5)
    with pytest.raises(AisecInputError, match="without a threshold"):
        AdversarialRobustnessOperator(**base, model_digest="sha256:" + "0" * 64)
    with pytest.raises(AisecInputError, match="attack must be one of"):
        AdversarialRobustnessOperator(**base, model_digest="0" * 64, min_robust_accuracy=0.5, attack="pgd")
    op = AdversarialRobustnessOperator(**base, model_digest="0" * 64, max_accuracy_drop=0.1, storage_conn_id="s3")
    assert op.config.max_accuracy_drop == 0.1 and op.storage_conn_id == "s3"
    assert {"data_path", "model_path", "model_digest", "manifest_path"} <= set(op.template_fields)
