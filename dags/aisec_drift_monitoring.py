"""Drift monitoring: build a reference profile, wait for a live window, test it for drift.

The security chain: ``build_reference_profile`` stores the reference's profile (its digest goes to
XCom); ``wait_for_window`` (sensor) waits until the window has enough rows; ``drift_test`` checks the
profile's digest, tests every feature (KS / chi-square) and writes a static HTML page.
``on_drift="warn"`` keeps the DAG green while the report (XCom ``aisec_report``, ``$AISEC_REPORT_DIR``)
and the page show the drift; the outlet asset event lists the drifted features, so a retraining DAG
can be scheduled on it.

Demo parts (``aisec_demo.drills.generate_drift_data``): a generated reference "training" set and a live
window in which ``age`` and ``income`` are shifted.

**Storage.** Files live under ``$AISEC_DATA_DIR/drift_demo``: with Celery workers on separate hosts it
must be a shared filesystem. **On Kubernetes** (KubernetesExecutor, no shared disk) mount a
ReadWriteMany volume or an object-store mount at ``AISEC_DATA_DIR`` in the pod template.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, chain
from aisec_demo import RUN_DIR_TEMPLATE
from aisec_demo import drills as demo

from airflow_aisec.operators.drift import DriftTestOperator, ReferenceProfileOperator
from airflow_aisec.sensors.drift import DriftWindowSensor
from airflow_aisec.utils.paths import data_dir

BASE = data_dir("drift_demo")  # shared storage root for this DAG's files
REFERENCE = str(BASE / "reference.parquet")
PROFILE = str(BASE / "reference.prof")
WINDOW = str(BASE) + f"/window-{RUN_DIR_TEMPLATE}.parquet"  # one live window per run

with DAG(
    dag_id="aisec_drift_monitoring",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisec", "drift"],
    doc_md=__doc__,
) as dag:
    # [START aisec_drift_monitoring]
    build = ReferenceProfileOperator(task_id="build_reference_profile", reference_path=REFERENCE, profile_path=PROFILE)
    wait = DriftWindowSensor(task_id="wait_for_window", path=WINDOW, min_rows=1_000, poke_interval=5, timeout=300)
    drift = DriftTestOperator(
        task_id="drift_test",
        profile_path=PROFILE,
        expected_profile_digest="{{ ti.xcom_pull(task_ids='build_reference_profile', key='profile_digest') }}",
        current_path=WINDOW,
        critical_features=["score"],
        drift_share=0.3,
        on_drift="warn",
        html_report_path=str(BASE / "drift_report.html"),
        outlets=[Asset("aisec://drift/demo-model")],
    )

    chain(demo.generate_drift_data(REFERENCE, WINDOW), build, wait, drift)  # demo: your data lands here
    # [END aisec_drift_monitoring]
