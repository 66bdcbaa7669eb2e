"""Supply chain, daily: audit the dependencies Airflow runs on, write SBOMs, scan the DAGs for secrets.

Vulnerability data comes from the offline OSV database named by ``$AISEC_OSV_DB`` (``make demo`` points
it at the bundled PyPA snapshot, ``data/osv/``; refresh a mirror with ``aisec osv-sync``). Without it
the audit tasks use pip-audit's online OSV service — and, with no network, error clearly: "could not
audit" fails closed, it never passes.

The security chain: ``audit_environment`` audits the worker's own Python environment and writes a
CycloneDX SBOM (its SHA-256 is in the report and on the ``aisec://sbom/airflow-environment`` asset
event); ``audit_pinned_requirements`` audits the project's pins (``data/requirements/
airflow-aisec-pins.txt``, exported from ``uv.lock``) without resolving anything;
``scan_dags_for_secrets`` scans the DAG folder and, in a git checkout, every commit that touched it
(vendor-format tokens fail; entropy / keyword heuristics are reported as ``warn``).

``scan_training_image`` reads the training image as files — a ``docker save`` tarball or an OCI
archive, no Docker engine on the worker — and fails on vulnerable packages, secrets in any layer,
unsafe model files or a root user (OS packages, which the offline PyPI database cannot audit, fail
closed unless accepted with ``os_packages="warn"``).

Demo drills (``aisec_demo.drills``, ``aisec_demo.images``): ``scan_hostile_image`` scans an image with
``requests==2.19.0``, a token "deleted" by a later layer (still in the image) and a pickle that runs
code, and ``confirm_image_findings`` asserts all three were caught. ``audit_known_vulnerable`` audits ``requests==2.19.0`` and
``jinja2==2.11.2`` and fails as it must; ``confirm_vulnerabilities_caught`` (``all_done``) asserts the
report names PYSEC-2018-28, PYSEC-2023-74 and PYSEC-2021-66 with their fix versions.

**Workers.** Each audit describes the environment of the worker that runs it: with Celery queues or
Kubernetes pod images per team, run it once per image (``queue=`` / ``executor_config``). SBOMs are
written under ``$AISEC_DATA_DIR/supply_chain`` (shared storage or an object-store mount on Kubernetes,
where KubernetesExecutor pods share no disk); the reports travel by XCom.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Asset
from aisec_demo import data_file
from aisec_demo import drills as demo
from aisec_demo import images as demo_images

from airflow_aisec.operators.audit import DependencyAuditOperator
from airflow_aisec.operators.image import ContainerImageScanOperator
from airflow_aisec.operators.secrets import SecretsScanOperator
from airflow_aisec.utils.paths import data_dir

DAGS_FOLDER = Path(__file__).resolve().parent
OUT = data_dir("supply_chain")
PINNED = data_file("requirements", "airflow-aisec-pins.txt")
KNOWN_VULNERABLE = data_file("requirements", "known-vulnerable.txt")
TRAINING_IMAGE = str(OUT / "images" / "trainer.tar")  # a `docker save` / OCI archive from your CI
HOSTILE_IMAGE = str(OUT / "images" / "trainer-hostile.tar")
#: History scan only where there is history (a cheap parse-time check: no subprocess).
IN_GIT = any((p / ".git").exists() for p in (DAGS_FOLDER, *DAGS_FOLDER.parents))

with DAG(
    dag_id="aisec_supply_chain_audit",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisec", "example", "supply-chain"],
    doc_md=__doc__,
) as dag:
    # [START aisec_supply_chain_audit]
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
    # Vendor-format tokens (AWS, GitHub, Hugging Face, OpenAI …) fail the task; entropy/keyword heuristics
    # are reported for review (status warn) so that a DAG carrying, say, a model digest does not break the run.
    SecretsScanOperator(task_id="scan_dags_for_secrets", path=str(DAGS_FOLDER), history=IN_GIT, fail_on="high")
    # The image the pipeline ships, read as files (no Docker engine): packages, secrets in every layer, models.
    scan_image = ContainerImageScanOperator(task_id="scan_training_image", image=TRAINING_IMAGE)
    # [END aisec_supply_chain_audit]

    images = demo_images.build_images(TRAINING_IMAGE, HOSTILE_IMAGE)  # your CI's image export goes here
    hostile = ContainerImageScanOperator(task_id="scan_hostile_image", image=HOSTILE_IMAGE)
    images >> [scan_image, hostile]
    hostile >> demo_images.confirm_image_findings()  # demo drill: a hostile image, caught

    known_vulnerable = DependencyAuditOperator(task_id="audit_known_vulnerable", requirements=[KNOWN_VULNERABLE])
    known_vulnerable >> demo.confirm_vulnerabilities_caught()  # demo drill: a real failing audit, caught
