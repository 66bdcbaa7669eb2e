"""Test-only DAG for the UI/metrics tests: one task per kind of report the views render.

Not an example DAG (those live in ``dags/``): it fabricates reports with known findings so the
browser and plugin tests do not depend on the real checks. ``conf={"clean": true}`` makes every
check pass (used to build drift history with different values).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag

from airflow_aisec.operators.base import AisecBaseOperator
from airflow_aisec.report import Report


class FabricatedCheckOperator(AisecBaseOperator):
    """Publishes a fabricated report for ``check`` (test only).

    :param check: the report's check name.
    :param scenario: which fabricated content to use (``vulns``, ``drift``, ``integrity``, ``secrets``,
        ``retrain``, ``latency``).
    """

    template_fields = (*AisecBaseOperator.template_fields, "clean")

    def __init__(self, *, check: str, scenario: str, clean: Any = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aisec_check = check  # type: ignore[misc]
        self.scenario = scenario
        self.clean = clean

    def execute(self, context: Any) -> dict[str, Any]:
        clean = str(self.clean).lower() in ("true", "1")
        return self.run_check(context, subject=f"demo://{self.scenario}", check=lambda: fabricate(self.scenario, clean))


def fabricate(scenario: str, clean: bool = False) -> Report:
    if scenario == "vulns":
        r = Report.start("dependency_audit", "requirements.txt", tags=["OWASP-ML06", "AML.T0010.001"])
        if not clean:
            r.add_finding("PYSEC-2018-28", "high", "requests 2.19.0: credentials leak on redirect", "requests==2.19.0")
            r.add_finding("GHSA-x84v-xcm2-53pg", "critical", "pyyaml 5.3: arbitrary code execution", "pyyaml==5.3")
        r.metrics["packages"] = 12
        r.metrics["vulnerabilities"] = len(r.findings)
        return r.finish()
    if scenario == "drift":
        r = Report.start("drift", "features.parquet", tags=["OWASP-ML08"])
        features = []
        for i, name in enumerate(["age", "income", "score", "tenure"]):
            stat = 0.02 + (0 if clean else 0.15 * i)
            drifted = stat > 0.1
            features.append(
                {
                    "feature": name,
                    "statistic": round(stat, 3),
                    "p_value": 0.5 if not drifted else 0.001,
                    "drifted": drifted,
                }
            )
            if drifted:
                r.add_finding("AISEC-DRIFT-FEATURE", "medium", f"feature {name} drifted", name, {"statistic": stat})
        r.details["features"] = features
        r.metrics["drift_share"] = sum(f["drifted"] for f in features) / len(features)
        return r.finish("warn" if r.findings else "pass")
    if scenario == "integrity":
        r = Report.start("integrity", "/models/m1", tags=["OWASP-ML10", "AML.T0018"])
        if not clean:
            r.add_finding("AISEC-INT-CHANGED", "critical", "weights.bin changed since the manifest", "weights.bin")
        return r.finish()
    if scenario == "secrets":
        r = Report.start("secrets", "notebooks/", tags=["AML.T0055"])
        if not clean:
            r.add_finding("AISEC-SECRET-AWS", "high", "AWS access key in notebook", "notebooks/train.ipynb:12")
        return r.finish()
    if scenario == "retrain":
        r = Report.start("retrain", "model m1")
        r.details["decision"] = "retrain" if not clean else "keep"
        return r.finish("pass", f"decision: {r.details['decision']}")
    if scenario == "latency":
        r = Report.start("inference_audit", "http://127.0.0.1/predict")
        r.metrics["latency_p95_ms"] = 120.0 if clean else 950.0
        return r.finish("pass")
    raise ValueError(f"unknown scenario {scenario!r}")


@dag(dag_id="aisec_ui_demo", schedule=None, catchup=False, tags=["aisec", "test"])
def aisec_ui_demo() -> None:
    for scenario, check in [
        ("vulns", "dependency_audit"),
        ("drift", "drift"),
        ("integrity", "integrity"),
        ("secrets", "secrets"),
        ("retrain", "retrain"),
        ("latency", "inference_audit"),
    ]:
        FabricatedCheckOperator(
            task_id=f"check_{scenario}", check=check, scenario=scenario, clean="{{ dag_run.conf.get('clean', False) }}"
        )


DAG = aisec_ui_demo()
