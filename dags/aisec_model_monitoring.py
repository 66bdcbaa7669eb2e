"""Model monitoring that closes the loop: live window → integrity → drift + performance → guarded retrain.

Runs as-is on local files under ``$AISEC_DATA_DIR/model_monitoring`` (default ``$AIRFLOW_HOME/aisec``)
and a model server on 127.0.0.1 (no external service):

1. ``prepare_reference`` picks the reference data — the training split saved by
   ``aisec_secure_training`` (``secure_training/splits/train.parquet``) when that DAG has run, else the
   same scikit-learn bundled dataset (breast cancer), so this DAG is self-sufficient — and
   ``reference_profile`` stores its drift profile (digest pinned by the drift test).
2. ``serving_model`` fits the serving model on the reference (a stand-in for the registry's model) and
   records its digest; ``start_server`` (setup) serves it on loopback — the server verifies the digest
   and scans the pickle before loading it, rate-limits clients and logs every inference.
3. ``collect_window`` is the live feed: it draws a window from the reference with an injected mean
   shift (param ``shift``, in standard deviations, on a third of the features), sends every row through
   the server as application traffic, keeps the served predictions for a labelled subset, and
   ``seal_window`` hashes the window into a manifest at the source.
4. ``tamper_in_transit`` (param ``tamper``) poisons the sealed window the way an attacker with write
   access to the landing zone would.
5. ``window_landed`` (``DriftWindowSensor``) and ``window_integrity`` (``ArtifactIntegritySensor``),
   both in reschedule mode, wait for enough rows and for window + manifest, then verify every file
   (fail closed on a mismatch).
6. ``drift_test`` (KS per feature against the profile, ``on_drift="pass-through"``: the report says
   ``fail``, the retrain decision acts on it) and ``performance`` (accuracy / F1 of the served
   predictions on the labelled subset against the baseline) report on the verified window;
   ``multivariate_drift`` (domain classifier: can a model tell window rows from reference rows?) and
   ``performance_estimate`` (accuracy / F1 estimated without labels from the serving model's
   probabilities, calibrated on the reference; ``score_window`` loads the model verified first) add the
   signals that do not wait for labels.
7. ``load_test`` (bounded) and ``audit_inference_log`` (rate abuse, latency, errors, probing, share of
   out-of-distribution inputs) check the endpoint; ``stop_server`` (teardown) always stops it.
8. ``retrain`` (``RetrainTriggerOperator``, trigger rule ``all_done``) decides: ``triggered`` (runs
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
from airflow_aisec.operators.inference import EndpointLoadTestOperator, InferenceLogAuditOperator
from airflow_aisec.operators.integrity import ArtifactHashOperator
from airflow_aisec.operators.monitoring import MultivariateDriftOperator, PerformanceEstimateOperator
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
#: the serving model's probabilities on the labelled reference and on the window (label-free estimate)
SCORED_REFERENCE = WINDOW_DIR + ".scored-reference.csv"
SCORED_WINDOW = WINDOW_DIR + ".scored-window.csv"
#: quality of the serving model on its training data (the model card's figures, rounded down)
BASELINE = {"accuracy": 0.95, "f1": 0.95}
#: the serving model and its server's files, one directory per run
SERVING_DIR = BASE / "serving"
LOADTEST_CLIENT = "aisec-loadtest"
#: application clients of the simulated live feed (each stays under the server's 10/minute limit)
FEED_CLIENTS = 40

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
    def serving_model(ti=None) -> dict:
        """The model in production (stand-in fitted on the reference), its digest and OOD reference."""
        import hashlib
        import json
        import os

        import joblib
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from airflow_aisec.core import live_window as lw
        from airflow_aisec.core.inference_audit import build_reference_ranges
        from airflow_aisec.utils.fs import write_json_atomic

        frame = lw.read_table(REFERENCE_LABELLED)
        x_ref = frame.drop(columns=[LABEL])
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=42))
        model.fit(x_ref, frame[LABEL])
        run_dir = str(SERVING_DIR / ti.run_id.replace(":", "-").replace("+", "_"))
        os.makedirs(run_dir, exist_ok=True)
        model_path = os.path.join(run_dir, "model.joblib")
        joblib.dump(model, model_path + ".tmp")
        os.replace(model_path + ".tmp", model_path)
        with open(model_path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        manifest = os.path.join(run_dir, "manifest.json")
        write_json_atomic(manifest, {"files": {"model.joblib": {"sha256": digest}}})
        reference = os.path.join(run_dir, "ood-reference.json")
        write_json_atomic(reference, build_reference_ranges(x_ref, source="reference data"))
        probe = json.dumps({"features": [float(v) for v in x_ref.median()]})  # the load test's request
        return {"model_path": model_path, "manifest": manifest, "reference": reference, "dir": run_dir, "probe": probe}

    @task
    def start_server(model: dict) -> dict:
        """Serve the model on loopback (own process, bounded lifetime); it verifies and scans first."""
        import os

        from airflow_aisec.serving.server import start_server_process

        return start_server_process(
            model["model_path"],
            manifest_path=model["manifest"],
            log_path=os.path.join(model["dir"], "inference.jsonl"),
            state_dir=model["dir"],
            rate_limit_per_minute=10,
            exempt_clients=[LOADTEST_CLIENT],
            max_lifetime_s=900,
        )

    @task
    def collect_window(server: dict, params=None, ti=None) -> dict:
        """The live feed: a window (shifted by ``shift``) sent through the server; served predictions
        are kept for the labelled subset (labels arrive later in production)."""
        import json
        import urllib.request

        from airflow_aisec.core import live_window as lw

        frame = lw.read_table(REFERENCE_LABELLED)
        features, labelled, info = lw.simulate_window(
            frame, rows=int(params["rows"]), shift=float(params["shift"]), label_column=LABEL, seed=int(params["seed"])
        )
        predictions = []
        for i, row in enumerate(features.itertuples(index=False)):  # bounded: one request per window row
            body = json.dumps({"features": [float(v) for v in row]}).encode()
            request = urllib.request.Request(
                server["url"] + "/predict",
                data=body,
                headers={"Content-Type": "application/json", "X-Client-Id": f"app-{i % FEED_CLIENTS:02d}"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                predictions.append(json.loads(response.read())["predictions"][0])
        labelled["prediction"] = predictions[: len(labelled)]
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
        baseline=BASELINE,
        max_degradation=0.05,
        on_degradation="pass-through",  # like the drift test: the retrain decision acts on the report
        outlets=[PERFORMANCE_ASSET],
    )
    load_test = EndpointLoadTestOperator(
        task_id="load_test",
        url="{{ ti.xcom_pull(task_ids='start_server')['url'] }}/predict",
        payload="{{ ti.xcom_pull(task_ids='serving_model')['probe'] }}",
        requests=100,
        concurrency=2,
        duration_s=60,
        client_id=LOADTEST_CLIENT,
        slo_p95_ms=1000,
    )
    audit_inference_log = InferenceLogAuditOperator(
        task_id="audit_inference_log",
        inference_log="{{ ti.xcom_pull(task_ids='start_server')['log_path'] }}",
        reference="{{ ti.xcom_pull(task_ids='serving_model')['reference'] }}",
        rate_limit="10/minute",
        latency_slo_ms=1000,
        max_ood_share=0.5,
        exempt_clients=[LOADTEST_CLIENT],
        fail_severity="critical",  # findings inform the decision (context), they do not stop it
        trigger_rule="all_done",
    )

    multivariate_drift = MultivariateDriftOperator(
        task_id="multivariate_drift",
        reference_path=REFERENCE_FEATURES,
        current_path=WINDOW_FEATURES,
        on_drift="pass-through",
    )

    @task
    def score_window(model: dict, ti=None) -> dict:
        """The serving model's probabilities (verified before loading) on the reference and the window."""
        import pandas as pd

        from airflow_aisec.core import live_window as lw
        from airflow_aisec.core.model_loading import load_verified_model
        from airflow_aisec.utils.fs import write_text_atomic

        clf = load_verified_model(model["model_path"], manifest_path=model["manifest"]).model
        window_dir = str(BASE / "windows" / ti.run_id.replace(":", "-").replace("+", "_"))
        reference = lw.read_table(REFERENCE_LABELLED)
        scored_ref = pd.DataFrame(clf.predict_proba(reference.drop(columns=[LABEL])), columns=["p0", "p1"])
        scored_ref[LABEL] = reference[LABEL].to_numpy()
        window = lw.read_table(f"{window_dir}/features.csv")
        scored_window = pd.DataFrame(clf.predict_proba(window), columns=["p0", "p1"])
        write_text_atomic(f"{window_dir}.scored-reference.csv", scored_ref.to_csv(index=False))
        write_text_atomic(f"{window_dir}.scored-window.csv", scored_window.to_csv(index=False))
        return {"rows": len(scored_window)}

    performance_estimate = PerformanceEstimateOperator(
        task_id="performance_estimate",
        reference_path=SCORED_REFERENCE,
        current_path=SCORED_WINDOW,
        proba_columns=["p0", "p1"],
        classes=["0", "1"],
        label_column=LABEL,
        on_degradation="pass-through",  # a signal for the retrain decision, like the other monitors
    )

    @task(trigger_rule="all_done")
    def stop_server(server: dict) -> dict:
        from airflow_aisec.serving.server import stop_server_process

        return stop_server_process(server)

    retrain = RetrainTriggerOperator(
        task_id="retrain",
        trigger_dag_id=TRAINING_DAG_ID,
        report_task_ids=[
            "window_integrity",
            "drift_test",
            "multivariate_drift",
            "performance",
            "performance_estimate",
            "audit_inference_log",
        ],
        min_interval=timedelta(hours=6),
        max_per_day=4,
        dry_run="{{ params.dry_run }}",
        trigger_rule="all_done",
    )

    model = serving_model()
    server = start_server(model)
    window = collect_window(server)
    chain(prepare_reference(), reference_profile, model)
    chain(
        window,
        seal_window,
        tamper_in_transit(window),
        window_landed,
        window_integrity,
        [drift_test, performance],
        retrain,
    )
    window_integrity >> retrain
    chain(window_integrity, multivariate_drift, retrain)
    chain(window_integrity, score_window(model), performance_estimate, retrain)
    chain(window, load_test, audit_inference_log, retrain)
    stop = stop_server(server)
    audit_inference_log >> stop
    stop.as_teardown(setups=server)


aisec_model_monitoring()
