"""Model monitoring that closes the loop: live window → integrity → drift + performance → guarded retrain.

Runs as-is on local files under ``$AISEC_DATA_DIR/model_monitoring`` (default ``$AIRFLOW_HOME/aisec``):

1. ``prepare_reference`` picks the reference data: the training features saved by
   ``aisec_secure_training`` when that DAG has run, else a scikit-learn bundled dataset exported
   deterministically (so this DAG is self-sufficient), and builds the reference drift profile.
2. ``collect_window`` draws a live window from the reference with an injected mean shift (param
   ``shift``, in standard deviations, on a third of the features) and logs the serving model's
   predictions for a labelled subset; ``seal_window`` hashes it into a manifest at the source.
3. ``tamper_in_transit`` (param ``tamper``) poisons the sealed window the way an attacker with write
   access to the landing zone would.
4. ``window_integrity`` — a sensor in reschedule mode — waits for the window and its manifest, then
   verifies every file (fails closed on a mismatch).
5. ``drift_test`` (KS per feature against the profile) and ``performance`` (accuracy / F1 / ROC AUC on
   the labelled subset against the baseline) report on the verified window.
6. ``retrain`` (``RetrainTriggerOperator``, trigger rule ``all_done``) decides: ``triggered`` (runs
   ``aisec_secure_training`` with a ``conf`` saying why), ``no_drift``, ``suppressed_cooldown``,
   ``suppressed_cap`` or ``refused_provenance`` — never a task failure for a guard.

Demo runs (``demo/runs/aisec_model_monitoring.json``): shift → triggered; immediately again →
suppressed_cooldown; ``{"tamper": true}`` → refused_provenance; ``{"shift": 0}`` → no_drift.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, chain, dag, task

from airflow_aisec.operators.integrity import ArtifactHashOperator
from airflow_aisec.operators.retrain import RetrainTriggerOperator, retrain_asset
from airflow_aisec.sensors.integrity import ArtifactIntegritySensor
from airflow_aisec.utils.paths import data_dir

TRAINING_DAG_ID = "aisec_secure_training"
BASE = data_dir("model_monitoring")
#: training features written by the training DAG (issue 4); used as the reference when present
TRAINING_FEATURES = data_dir("secure_training", "splits", "train.parquet")
LABEL = "target"
#: the live window of a run: ``windows/<run>/{features,labelled}.csv`` + ``windows/<run>.manifest.json``
WINDOW_DIR = str(BASE / "windows" / "{{ run_id | replace(':', '-') | replace('+', '_') }}")
WINDOW_MANIFEST = WINDOW_DIR + ".manifest.json"


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
        "dry_run": Param(False, type="boolean", description="decide but never trigger the training DAG"),
    },
)
def aisec_model_monitoring():
    @task
    def prepare_reference() -> dict:
        """Reference data (training features, else bundled) and its drift profile."""
        import os

        from airflow_aisec.core import live_window as lw
        from airflow_aisec.core.drift import build_and_save_profile
        from airflow_aisec.utils.fs import write_text_atomic

        if os.path.isfile(TRAINING_FEATURES):
            frame, source = lw.read_table(TRAINING_FEATURES), str(TRAINING_FEATURES)
        else:
            frame, source = lw.bundled_reference("breast_cancer"), "sklearn:breast_cancer (bundled)"
        ref_dir = BASE / "reference"
        ref_dir.mkdir(parents=True, exist_ok=True)
        reference = str(ref_dir / "reference.csv")
        write_text_atomic(reference, frame.to_csv(index=False))
        features = [c for c in frame.columns if c != LABEL]
        profile = str(ref_dir / "reference.profile.json")
        report = build_and_save_profile(frame, profile, columns=features)
        return {"reference": reference, "source": source, "profile": profile, "digest": report.details.get("digest")}

    @task
    def collect_window(reference: dict, params=None, ti=None) -> dict:
        """Draw the live window and log the serving model's predictions on its labelled subset."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from airflow_aisec.core import live_window as lw

        frame = lw.read_table(reference["reference"])
        features, labelled, info = lw.simulate_window(
            frame, rows=int(params["rows"]), shift=float(params["shift"]), label_column=LABEL, seed=int(params["seed"])
        )
        # the serving model (stand-in: fitted on the reference) — its logged predictions meet late labels
        x_ref = frame.drop(columns=[LABEL])
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_ref, frame[LABEL])
        x_lab = labelled.drop(columns=[LABEL])
        labelled["prediction"] = model.predict(x_lab)
        if len(model.classes_) == 2:
            labelled["score"] = np.round(model.predict_proba(x_lab)[:, 1], 6)
        baseline = float((model.predict(x_ref) == frame[LABEL]).mean())
        window_dir = str(BASE / "windows" / ti.run_id.replace(":", "-").replace("+", "_"))
        paths = lw.write_window(window_dir, features, labelled)
        return {**paths, "dir": window_dir, **info, "baseline_accuracy": round(baseline, 6)}

    seal_window = ArtifactHashOperator(task_id="seal_window", path=WINDOW_DIR, manifest_path=WINDOW_MANIFEST)

    @task
    def tamper_in_transit(window: dict, params=None) -> int:
        """Poisoning drill: rewrite the sealed window (only with ``tamper``)."""
        from airflow_aisec.core import live_window as lw

        return lw.tamper_window(window["dir"]) if params["tamper"] else 0

    window_integrity = ArtifactIntegritySensor(
        task_id="window_integrity",
        path=WINDOW_DIR,
        manifest_path=WINDOW_MANIFEST,
        mode="reschedule",
        poke_interval=30,
        timeout=3600,
    )

    @task(task_id="drift_test")
    def drift_test(reference: dict, window: dict, ti=None) -> dict:
        from airflow_aisec.core.drift import DriftConfig, run_drift

        report = run_drift(window["features"], profile=reference["profile"], config=DriftConfig(drift_share=0.2))
        data = report.to_dict()
        ti.xcom_push(key="aisec_report", value=data)
        return data

    @task(task_id="performance")
    def performance(window: dict, ti=None) -> dict:
        from sklearn.metrics import accuracy_score, f1_score

        from airflow_aisec.core import live_window as lw
        from airflow_aisec.report import Report

        frame = lw.read_table(window["labelled"])
        acc = float(accuracy_score(frame[LABEL], frame["prediction"]))
        f1 = float(f1_score(frame[LABEL], frame["prediction"], average="macro"))
        report = Report.start("performance", window["labelled"])
        report.metrics.update({"accuracy": acc, "f1": f1, "baseline_accuracy": window["baseline_accuracy"]})
        if acc < window["baseline_accuracy"] - 0.05:
            report.add_finding("AISEC-PERF-DEGRADED", "high", f"accuracy {acc:.3f} below baseline")
        data = report.finish().to_dict()
        ti.xcom_push(key="aisec_report", value=data)
        return data

    retrain = RetrainTriggerOperator(
        task_id="retrain",
        trigger_dag_id=TRAINING_DAG_ID,
        report_task_ids=["window_integrity", "drift_test", "performance"],
        trigger_on=("warn", "fail"),
        min_interval=timedelta(hours=6),
        max_per_day=4,
        dry_run="{{ params.dry_run }}",
        trigger_rule="all_done",
        outlets=[retrain_asset(TRAINING_DAG_ID)],
    )

    reference = prepare_reference()
    window = collect_window(reference)
    chain(window, seal_window, tamper_in_transit(window), window_integrity)
    drift = drift_test(reference, window)
    perf = performance(window)
    window_integrity >> [drift, perf]
    [window_integrity, drift, perf] >> retrain


aisec_model_monitoring()
