"""Drift at scale: one window tested in partitions mapped over the workers, merged into one verdict.

``plan`` splits the window into row partitions (``K/N``); ``drift_part`` is mapped over them with
dynamic task mapping (each worker reads only its rows and writes small additive statistics);
``drift_merge`` adds them up and decides. The merged report is the whole-window report: the same KS
statistics, p-values, PSI and chi-square as testing the window in one task.

Demo parts (``aisec_demo.drills.generate_scale_drift_data``): a reference set and a live window with
``age`` shifted. Files live under ``$AISEC_DATA_DIR/drift_scale`` (shared storage with several hosts).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, chain, task
from aisec_demo import RUN_DIR_TEMPLATE
from aisec_demo import drills as demo

from airflow_aisec.operators.drift import DriftMergeOperator, DriftTestOperator, ReferenceProfileOperator
from airflow_aisec.utils.paths import data_dir

BASE = data_dir("drift_scale")  # shared storage root for this DAG's files
REFERENCE = str(BASE / "reference.parquet")
PROFILE = str(BASE / "reference.prof")
WINDOW = str(BASE / "window.parquet")
PARTS = str(BASE) + f"/parts-{RUN_DIR_TEMPLATE}"  # one folder of partials per run

with DAG(
    dag_id="aisec_drift_at_scale",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisec", "drift", "scale"],
    doc_md=__doc__,
) as dag:
    # [START aisec_drift_at_scale]
    @task
    def plan(window: str, parts_dir: str, partitions: int = 4) -> list[dict[str, str]]:
        """One entry per partition: rows K of N, and where its statistics go."""
        import os

        os.makedirs(parts_dir, exist_ok=True)
        n = partitions
        return [{"partition": f"{k}/{n}", "partial_path": f"{parts_dir}/part-{k}.json"} for k in range(1, n + 1)]

    build = ReferenceProfileOperator(task_id="build_reference_profile", reference_path=REFERENCE, profile_path=PROFILE)
    parts = DriftTestOperator.partial(
        task_id="drift_part",
        profile_path=PROFILE,
        expected_profile_digest="{{ ti.xcom_pull(task_ids='build_reference_profile', key='profile_digest') }}",
        current_path=WINDOW,
    ).expand_kwargs(plan(WINDOW, PARTS))
    # the partition tasks' reports: each names its partial and binds it to the digest that task wrote
    merge = DriftMergeOperator(task_id="drift_merge", partials=parts.output, profile_path=PROFILE, on_drift="warn")

    chain(demo.generate_scale_drift_data(REFERENCE, WINDOW), build, parts, merge)  # demo: your data lands here
    # [END aisec_drift_at_scale]
