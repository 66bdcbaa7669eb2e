"""Supply chain, daily: audit the dependencies Airflow runs on, write SBOMs, scan the DAGs for secrets.

Runs as-is. Vulnerability data comes from the offline OSV database named by ``$AISEC_OSV_DB`` (``make
demo`` points it at the bundled PyPA snapshot, ``data/osv/``; refresh a mirror with ``aisec osv-sync``).
Without it the audit tasks use pip-audit's online OSV service — and, with no network, error clearly:
"could not audit" fails closed, it never passes.

1. ``audit_environment`` audits the worker's own Python environment (``pip list`` via pip-audit) and
   writes a CycloneDX SBOM whose SHA-256 is in the report and on the ``aisec://sbom/airflow-environment``
   asset event.
2. ``audit_pinned_requirements`` audits the project's pinned requirements: ``data/requirements/
   airflow-aisec-pins.txt``, exported from ``uv.lock`` (runtime dependencies, see that file's header),
   without resolving anything.
3. ``scan_dags_for_secrets`` scans the DAG folder and, when it lives in a git repository, every commit
   that touched it (a deleted token is still in history). Vendor-format tokens fail the task; entropy /
   keyword heuristics are reported with status ``warn`` (``fail_on="high"``).
4. ``audit_known_vulnerable`` audits ``data/requirements/known-vulnerable.txt`` (``requests==2.19.0``,
   ``jinja2==2.11.2``) and fails as it must; ``confirm_vulnerabilities_caught`` (trigger rule
   ``all_done``) asserts the report names PYSEC-2018-28, PYSEC-2023-74 and PYSEC-2021-66 with their
   fix versions — so the run succeeds while showing a real failing audit.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import Asset, dag, task

from airflow_aisec.operators.audit import DependencyAuditOperator
from airflow_aisec.operators.secrets import SecretsScanOperator
from airflow_aisec.utils.paths import data_dir, repo_data_file

DAGS_FOLDER = Path(__file__).resolve().parent
OUT = data_dir("supply_chain")
PINNED = str(repo_data_file("requirements", "airflow-aisec-pins.txt"))
KNOWN_VULNERABLE = str(repo_data_file("requirements", "known-vulnerable.txt"))
#: History scan only where there is history (a cheap parse-time check: no subprocess).
IN_GIT = any((p / ".git").exists() for p in (DAGS_FOLDER, *DAGS_FOLDER.parents))
EXPECTED = {"PYSEC-2018-28": "2.20.0", "PYSEC-2023-74": "2.31.0", "PYSEC-2021-66": "2.11.3"}


@dag(
    dag_id="aisec_supply_chain_audit",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisec", "example", "supply-chain"],
    doc_md=__doc__,
)
def aisec_supply_chain_audit():
    DependencyAuditOperator(
        task_id="audit_environment",
        sbom_path=str(OUT / "sbom-airflow-environment.cdx.json"),
        outlets=[Asset("aisec://sbom/airflow-environment")],
    )

    DependencyAuditOperator(
        task_id="audit_pinned_requirements",
        requirements=[PINNED],
        sbom_path=str(OUT / "sbom-pinned-requirements.cdx.json"),
        outlets=[Asset("aisec://sbom/pinned-requirements")],
    )

    # Vendor-format tokens (AWS, GitHub, Hugging Face, OpenAI …) fail the task; entropy/keyword heuristics are
    # reported for review (status warn) so that a DAG carrying, say, a model digest does not break the run.
    SecretsScanOperator(task_id="scan_dags_for_secrets", path=str(DAGS_FOLDER), history=IN_GIT, fail_on="high")

    known_vulnerable = DependencyAuditOperator(task_id="audit_known_vulnerable", requirements=[KNOWN_VULNERABLE])

    @task(trigger_rule="all_done")
    def confirm_vulnerabilities_caught(ti=None) -> dict:
        report = ti.xcom_pull(task_ids="audit_known_vulnerable", key="aisec_report")
        if not report or report["status"] != "fail":
            raise RuntimeError(f"known-vulnerable pins were NOT caught: {report and report['summary']}")
        fixes = {f["id"]: f["details"]["fix_versions"] for f in report["findings"]}
        missing = {i: v for i, v in EXPECTED.items() if v not in fixes.get(i, [])}
        if missing:
            raise RuntimeError(f"expected advisories (with fix versions) missing from the report: {missing}")
        return {"caught": sorted(fixes), "summary": report["summary"]}

    known_vulnerable >> confirm_vulnerabilities_caught()


aisec_supply_chain_audit()
