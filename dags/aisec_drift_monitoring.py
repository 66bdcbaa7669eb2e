"""Drift monitoring example: build a reference profile, wait for a window, test it for drift.

Runs as-is: generated data under ``$AISEC_DATA_DIR/drift_demo`` (a reference "training" set and a
live window in which two features are shifted). ``on_drift="warn"`` keeps the DAG green while the
report (XCom ``aisec_report``, ``$AISEC_REPORT_DIR``) and the static HTML page show the drift; the
outlet asset event lists the drifted features, so a retraining DAG can be scheduled on it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, chain, dag, task

from airflow_aisec.operators.drift import DriftTestOperator, ReferenceProfileOperator
from airflow_aisec.sensors.drift import DriftWindowSensor
from airflow_aisec.utils.paths import data_dir

BASE = data_dir("drift_demo")
REFERENCE = str(BASE / "reference.parquet")
PROFILE = str(BASE / "reference.prof")
DRIFT_ASSET = Asset("aisec://drift/demo-model")


@dag(
    dag_id="aisec_drift_monitoring",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["aisec", "drift"],
    doc_md=__doc__,
)
def aisec_drift_monitoring():
    @task
    def generate_data(ds: str | None = None) -> str:
        """Write a reference set and a live window with two shifted features (deterministic)."""
        import numpy as np
        import pandas as pd

        BASE.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(42)
        n = 20_000

        def frame(shift: float, rows: int) -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "age": rng.normal(40 + 8 * shift, 12, rows).round(),
                    "income": rng.lognormal(10 + shift, 0.5, rows),
                    "tenure_months": rng.integers(0, 120, rows),
                    "score": rng.normal(0, 1, rows),
                    "segment": rng.choice(["retail", "smb", "enterprise"], rows, p=[0.6, 0.3, 0.1]),
                    "n_products": rng.integers(1, 5, rows),
                }
            )

        frame(0.0, n).to_parquet(REFERENCE, index=False)
        current = str(BASE / f"window-{ds or 'manual'}.parquet")
        frame(0.5, 5_000).to_parquet(current, index=False)  # age and income shifted
        return current

    current = generate_data()
    build = ReferenceProfileOperator(task_id="build_reference_profile", reference_path=REFERENCE, profile_path=PROFILE)
    wait = DriftWindowSensor(task_id="wait_for_window", path=current, min_rows=1_000, poke_interval=5, timeout=300)
    drift = DriftTestOperator(
        task_id="drift_test",
        profile_path=PROFILE,
        expected_profile_digest="{{ ti.xcom_pull(task_ids='build_reference_profile', key='profile_digest') }}",
        current_path=current,
        critical_features=["score"],
        drift_share=0.3,
        on_drift="warn",
        html_report_path=str(BASE / "drift_report.html"),
        outlets=[DRIFT_ASSET],
    )
    chain(current, build, wait, drift)


aisec_drift_monitoring()
