"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Kept as a plain literal: Airflow imports this at start-up, so it must stay cheap.
"""

from __future__ import annotations

from typing import Any

from airflow_aisec import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-aisec",
        "name": "AI/ML Security (airflow-aisec)",
        "description": "AI/ML security checks as Airflow tasks: supply chain, integrity & provenance, "
        "data validation, drift, guarded retraining, cloud posture, and an AI-security UI view.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "AI/ML Security",
                "external-doc-url": "https://github.com/airflow-aisec/airflow-aisec",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "AI/ML Security",
                "python-modules": [
                    "airflow_aisec.operators.integrity",
                    "airflow_aisec.operators.cloud",
                    "airflow_aisec.operators.cloudwatch",
                    "airflow_aisec.operators.modelscan",
                    "airflow_aisec.operators.inference",
                    "airflow_aisec.operators.audit",
                    "airflow_aisec.operators.secrets",
                    "airflow_aisec.operators.provenance",
                    "airflow_aisec.operators.validation",
                    "airflow_aisec.operators.split",
                    "airflow_aisec.operators.drift",
                    "airflow_aisec.operators.performance",
                    "airflow_aisec.operators.retrain",
                    "airflow_aisec.operators.image",
                    "airflow_aisec.operators.robustness",
                    "airflow_aisec.operators.monitoring",
                    "airflow_aisec.operators.mlbom",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "AI/ML Security",
                "python-modules": ["airflow_aisec.sensors.integrity", "airflow_aisec.sensors.drift"],
            }
        ],
        "triggers": [
            {
                "integration-name": "AI/ML Security",
                "python-modules": ["airflow_aisec.triggers.integrity", "airflow_aisec.triggers.drift"],
            }
        ],
        "hooks": [
            {
                "integration-name": "AI/ML Security",
                "python-modules": ["airflow_aisec.hooks.signing", "airflow_aisec.hooks.storage"],
            }
        ],
        "extra-links": ["airflow_aisec.links.AisecReportLink"],
        "plugins": [{"name": "aisec", "plugin-class": "airflow_aisec.plugins.aisec_plugin.AisecPlugin"}],
        "config": {
            "aisec": {
                "description": "Defaults of the airflow-aisec operators. Each option can also be set as "
                "AIRFLOW__AISEC__<OPTION>. Operator arguments given in a DAG win over these.",
                "options": {
                    "report_dir": {
                        "description": "Directory where every aisec task also writes its report as JSON "
                        "(<dag_id>/<run_id>/<task_id>.json). Unset: the deprecated AISEC_REPORT_DIR "
                        "environment variable, else no file (the report is still in XCom).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/aisec-reports",
                        "default": None,
                    },
                    "data_dir": {
                        "description": "Base directory for local aisec data (example DAGs, reference "
                        "profiles, the OSV cache of aisec osv-sync). Unset: the deprecated AISEC_DATA_DIR "
                        "environment variable, else $AIRFLOW_HOME/aisec.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/aisec",
                        "default": None,
                    },
                    "osv_db": {
                        "description": "Offline OSV vulnerability database (zip or directory) used by the "
                        "dependency audit and the image scan when the task names none. Unset: the "
                        "deprecated AISEC_OSV_DB environment variable, else the online service.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/aisec/osv/pypi.zip",
                        "default": None,
                    },
                    "fail_on": {
                        "description": "Default severity gate of the dependency audit: findings at or "
                        "above it fail the task, lower ones warn (critical, high, medium, low, any).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "high",
                        "default": "any",
                    },
                    "osv_max_age_days": {
                        "description": "Default freshness limit of the offline OSV database, in days: an "
                        "older database makes the audit an error. Unset: no limit.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "14",
                        "default": None,
                    },
                },
            }
        },
        "connection-types": [
            {
                "hook-class-name": "airflow_aisec.hooks.signing.SigningKeyHook",
                "connection-type": "aisec_signing_key",
                "hook-name": "AI Security signing key",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "login", "port", "extra"],
                    "relabeling": {"password": "Private key (PEM) or HMAC secret"},
                    "placeholders": {"password": "-----BEGIN PRIVATE KEY----- …"},
                },
                "conn-fields": {
                    "algorithm": {
                        "label": "Algorithm",
                        "schema": {"type": ["string", "null"], "enum": ["ed25519", "hmac-sha256", None]},
                    },
                    "public_key": {
                        "label": "Public key (PEM), for verification only",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
