"""Model monitoring that closes the loop: live window → integrity → drift + performance → guarded retrain.

Runs as-is on local files under ``$AISEC_DATA_DIR/model_monitoring`` (default ``$AIRFLOW_HOME/aisec``):

1. ``prepare_reference`` picks the reference data — the training split saved by
   ``aisec_secure_training`` (``secure_training/splits/train.parquet``) when that DAG has run, else the
   same scikit-learn bundled dataset (breast cancer), so this DAG is self-sufficient — and
   ``reference_profile`` stores its drift profile (digest pinned by the drift test).
2. ``collect_window`` stands in for the live feed: it draws a window from the reference with an
   injected mean shift (param ``shift``, in standard deviations, on a third of the features), logs the
   serving model's predictions for a labelled subset, and seals the window at the source with a
   manifest (``seal_window``).
3. ``tamper_in_transit`` (param ``tamper``) poisons the sealed window the way an attacker with write
   access to the landing zone would.
4. ``window_landed`` (``DriftWindowSensor``) and ``window_integrity`` (``ArtifactIntegritySensor``),
   both in reschedule mode, wait for enough rows and for window + manifest, then verify every file
   (fail closed on a mismatch).
5. ``drift_test`` (KS per feature against the profile, ``on_drift="pass-through"``: the report says
   ``fail``, the retrain decision acts on it) and ``performance`` (accuracy / F1 / ROC AUC of the logged
   predictions on the labelled subset against the baseline) report on the verified window.
6. ``retrain`` (``RetrainTriggerOperator``, trigger rule ``all_done``) decides: ``triggered`` (runs
   ``aisec_secure_training`` with a ``conf`` saying why), ``no_drift``, ``suppressed_cooldown``,
   ``suppressed_cap`` or ``refused_provenance`` — a guard never fails the task.

Demo runs (``demo/runs/aisec_model_monitoring.json``): shift → triggered; immediately again →
suppressed_cooldown; ``{"tamper": true}`` → refused_provenance; ``{"shift": 0}`` → no_drift.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, chain, dag, task

from airflow_aisec.operators.drift import DriftTestOperator, ReferenceProfileOperator
from airflow_aisec.operators.integrity import ArtifactHashOperator
from airflow_aisec.operators.performance import ModelPerformanceOperator
from airflow_aisec.operators.retrain import RetrainTriggerOperator
from airflow_aisec.sensors.drift import DriftWindowSensor
from airflow_aisec.sensors.integrity import ArtifactIntegritySensor
from airflow_aisec.utils.paths import data_dir

TRAINING_DAG_ID = "aisec_secure_training"
BASE = data_dir("model_monitoring")
#: the training split written by aisec_secure_training: the reference when that DAG has run
TRAINING_SPLIT = str(data_dir("secure_training", "splits", "train.parquet"))
BUNDLED_DATASET = "breast_cancer"
LABEL = "target"
REFERENCE_FEATURES = str(BASE / "reference" / "features.csv")
REFERENCE_LABELLED = str(BASE / "reference" / "labelled.csv")
PROFILE = str(BASE / "reference" / "features.profile.json")
#: one live window per run: ``windows/<run>/{features,labelled}.csv`` + ``windows/<run>.manifest.json``
WINDOW_DIR = str(BASE / "windows" / "{{ run_id | replace(':', '-') | replace('+', '_') }}")
WINDOW_FEATURES = WINDOW_DIR + "/features.csv"
WINDOW_LABELLED = WINDOW_DIR + "/labelled.csv"
WINDOW_MANIFEST = WINDOW_DIR + ".manifest.json"
#: quality of the serving model on its training data (the model card's figures, rounded down)
BASELINE = {"accuracy": 0.95, "roc_auc": 0.98}

DRIFT_ASSET = Asset("aisec://drift/breast-cancer-classifier")
PERFORMANCE_ASSET = Asset("aisec://performance/breast-cancer-classifier")


@dag(
    dag_id="aisec_model_monitoring",
    schedule=timedelta(hours=1),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisec", "example", "drift", "retrain"],
    doc_md=__doc__,
    params={
        "shift": Param(1.5, type="number", description="mean shift injected into the live window (in std)"),
        "tamper": Param(False, type="boolean", description="poison the window after it was sealed"),
        "rows": Param(300, type="integer", minimum=20, description="rows in the live window"),
        "seed": Param(7, type="integer", description="seed of the window sample"),
        "dry_run": Param(False, type="boolean", description="decide, but never trigger the training DAG"),
    },
)
def aisec_model_monitoring():
    @task
    def prepare_reference() -> dict:
        """Reference data: the training split when the training DAG has run, else the bundled dataset."""
        import os

        from airflow_aisec.core import live_window as lw
        from airflow_aisec.utils.fs import write_text_atomic

        if os.path.isfile(TRAINING_SPLIT):
            frame, source = lw.read_table(TRAINING_SPLIT), TRAINING_SPLIT
        else:
            frame, source = lw.bundled_reference(BUNDLED_DATASET), f"sklearn:{BUNDLED_DATASET} (bundled)"
        write_text_atomic(REFERENCE_LABELLED, frame.to_csv(index=False))
        write_text_atomic(REFERENCE_FEATURES, frame.drop(columns=[LABEL]).to_csv(index=False))
        return {"source": source, "rows": len(frame)}

    reference_profile = ReferenceProfileOperator(
        task_id="reference_profile", reference_path=REFERENCE_FEATURES, profile_path=PROFILE
    )

    @task
    def collect_window(params=None, ti=None) -> dict:
        """Stand-in for the live feed: a window (shifted by ``shift``) plus logged predictions and labels."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from airflow_aisec.core import live_window as lw

        frame = lw.read_table(REFERENCE_LABELLED)
        features, labelled, info = lw.simulate_window(
            frame, rows=int(params["rows"]), shift=float(params["shift"]), label_column=LABEL, seed=int(params["seed"])
        )
        # the serving model (stand-in fitted on the reference): its logged predictions meet late labels
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=42))
        model.fit(frame.drop(columns=[LABEL]), frame[LABEL])
        x_labelled = labelled.drop(columns=[LABEL])
        labelled["prediction"] = model.predict(x_labelled)
        labelled["score"] = np.round(model.predict_proba(x_labelled)[:, 1], 6)
        window_dir = str(BASE / "windows" / ti.run_id.replace(":", "-").replace("+", "_"))
        return {**lw.write_window(window_dir, features, labelled), "dir": window_dir, **info}

    seal_window = ArtifactHashOperator(task_id="seal_window", path=WINDOW_DIR, manifest_path=WINDOW_MANIFEST)

    @task
    def tamper_in_transit(window: dict, params=None) -> int:
        """Poisoning drill: rewrite the sealed window (only with ``tamper``)."""
        from airflow_aisec.core import live_window as lw

        return lw.tamper_window(window["dir"]) if params["tamper"] else 0

    window_landed = DriftWindowSensor(
        task_id="window_landed", path=WINDOW_FEATURES, min_rows=20, mode="reschedule", poke_interval=60, timeout=3600
    )
    window_integrity = ArtifactIntegritySensor(
        task_id="window_integrity",
        path=WINDOW_DIR,
        manifest_path=WINDOW_MANIFEST,
        mode="reschedule",
        poke_interval=30,
        timeout=3600,
    )
    drift_test = DriftTestOperator(
        task_id="drift_test",
        current_path=WINDOW_FEATURES,
        profile_path=PROFILE,
        expected_profile_digest="{{ ti.xcom_pull(task_ids='reference_profile', key='profile_digest') }}",
        drift_share=0.2,
        on_drift="pass-through",
        outlets=[DRIFT_ASSET],
    )
    performance = ModelPerformanceOperator(
        task_id="performance",
        data_path=WINDOW_LABELLED,
        label_column=LABEL,
        prediction_column="prediction",
        score_column="score",
        baseline=BASELINE,
        max_degradation=0.05,
        outlets=[PERFORMANCE_ASSET],
    )
    retrain = RetrainTriggerOperator(
        task_id="retrain",
        trigger_dag_id=TRAINING_DAG_ID,
        report_task_ids=["window_integrity", "drift_test", "performance"],
        min_interval=timedelta(hours=6),
        max_per_day=4,
        dry_run="{{ params.dry_run }}",
        trigger_rule="all_done",
    )

    window = collect_window()
    chain(
        prepare_reference(),
        reference_profile,
        window,
        seal_window,
        tamper_in_transit(window),
        window_landed,
        window_integrity,
        [drift_test, performance],
        retrain,
    )
    window_integrity >> retrain


aisec_model_monitoring()
