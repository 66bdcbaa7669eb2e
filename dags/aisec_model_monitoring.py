"""Model monitoring that closes the loop: live window → integrity → drift + performance → guarded retrain.

The window is sealed (manifest) where it is produced and verified where it lands (sensors, reschedule
mode): a window changed in transit fails ``window_integrity``. Drift (KS per feature against the pinned
profile) and performance (served predictions vs the baseline) report with ``pass-through``, as do ``multivariate_drift`` (a domain
classifier) and ``performance_estimate`` (accuracy/F1 estimated without labels from calibrated
probabilities); the endpoint
is load-tested and its inference log audited; ``retrain`` (``all_done``) decides ``triggered`` (runs
``aisec_secure_training`` with a ``conf`` saying why), ``no_drift``, ``suppressed_cooldown``,
``suppressed_cap`` or ``refused_provenance`` — a guard never fails the task.

Demo parts (``aisec_demo.monitoring``): reference = the training DAG's split (else the bundled dataset),
a stand-in model, a live window with an injected ``shift`` sent through a stand-in endpoint that exists
only inside ``collect_window`` / ``load_test``, and the ``tamper`` drill. ``make demo`` runs: shift →
triggered; again → suppressed_cooldown; ``{"tamper": true}`` → refused_provenance; ``{"shift": 0}`` → no_drift.

**Storage.** Everything lives under ``$AISEC_DATA_DIR/model_monitoring`` (one folder per run): with Celery
workers on separate hosts it must be a shared filesystem. **On Kubernetes** (KubernetesExecutor, no shared
disk) mount a ReadWriteMany volume or an object-store mount there; reschedule sensors free their pod.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, Param, chain
from aisec_demo import RUN_DIR_TEMPLATE
from aisec_demo import monitoring as demo
from aisec_demo.serving import StandInEndpointLoadTestOperator

from airflow_aisec.operators.drift import DriftTestOperator, ReferenceProfileOperator
from airflow_aisec.operators.inference import InferenceLogAuditOperator
from airflow_aisec.operators.integrity import ArtifactHashOperator
from airflow_aisec.operators.monitoring import MultivariateDriftOperator, PerformanceEstimateOperator
from airflow_aisec.operators.performance import ModelPerformanceOperator
from airflow_aisec.operators.retrain import RetrainTriggerOperator
from airflow_aisec.sensors.drift import DriftWindowSensor
from airflow_aisec.sensors.integrity import ArtifactIntegritySensor
from airflow_aisec.utils.paths import data_dir

BASE = data_dir("model_monitoring")  # shared storage root for this DAG's files
TRAINING_SPLIT = str(data_dir("secure_training", "splits", "train.parquet"))  # written by aisec_secure_training
REFERENCE, PROFILE = str(BASE / "reference" / "features.csv"), str(BASE / "reference" / "features.profile.json")
LABELLED_REFERENCE = str(BASE / "reference" / "labelled.csv")
WINDOW = str(BASE / "windows") + "/" + RUN_DIR_TEMPLATE  # {features,labelled}.csv + <WINDOW>.manifest.json
SERVING = str(BASE / "serving") + "/" + RUN_DIR_TEMPLATE  # model, manifest, OOD reference, inference log
INFERENCE_LOG = SERVING + "/inference.jsonl"
BASELINE = {"accuracy": 0.95, "f1": 0.95}  # the model card's figures, rounded down
LOADTEST_CLIENT = "aisec-loadtest"

with DAG(
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
) as dag:
    model = demo.serving_model(LABELLED_REFERENCE, SERVING)
    window = demo.collect_window(
        LABELLED_REFERENCE, WINDOW, model["model_path"], model["manifest"], INFERENCE_LOG
    )  # your landing zone's producer goes here
    # [START aisec_model_monitoring]
    reference_profile = ReferenceProfileOperator(
        task_id="reference_profile", reference_path=REFERENCE, profile_path=PROFILE
    )
    seal_window = ArtifactHashOperator(task_id="seal_window", path=WINDOW, manifest_path=WINDOW + ".manifest.json")
    window_landed = DriftWindowSensor(
        task_id="window_landed",
        path=WINDOW + "/features.csv",
        min_rows=20,
        mode="reschedule",
        poke_interval=60,
        timeout=3600,
    )
    window_integrity = ArtifactIntegritySensor(
        task_id="window_integrity",
        path=WINDOW,
        manifest_path=WINDOW + ".manifest.json",
        mode="reschedule",
        poke_interval=30,
        timeout=3600,
    )
    drift_test = DriftTestOperator(
        task_id="drift_test",
        current_path=WINDOW + "/features.csv",
        profile_path=PROFILE,
        expected_profile_digest="{{ ti.xcom_pull(task_ids='reference_profile', key='profile_digest') }}",
        drift_share=0.2,
        on_drift="pass-through",  # the report says fail; the retrain decision acts on it
        outlets=[Asset("aisec://drift/breast-cancer-classifier")],
    )
    performance = ModelPerformanceOperator(
        task_id="performance",
        data_path=WINDOW + "/labelled.csv",
        label_column="target",
        prediction_column="prediction",
        baseline=BASELINE,
        max_degradation=0.05,
        on_degradation="pass-through",
        outlets=[Asset("aisec://performance/breast-cancer-classifier")],
    )
    multivariate_drift = MultivariateDriftOperator(  # a domain classifier: can it tell window from reference?
        task_id="multivariate_drift",
        reference_path=REFERENCE,
        current_path=WINDOW + "/features.csv",
        on_drift="pass-through",
    )
    performance_estimate = PerformanceEstimateOperator(  # without labels: calibrated probabilities
        task_id="performance_estimate",
        reference_path=WINDOW + ".scored-reference.csv",
        current_path=WINDOW + ".scored-window.csv",
        proba_columns=["p0", "p1"],
        classes=["0", "1"],
        label_column="target",
        on_degradation="pass-through",
    )
    load_test = StandInEndpointLoadTestOperator(  # production: EndpointLoadTestOperator(url=<endpoint>)
        task_id="load_test",
        model_path="{{ ti.xcom_pull(task_ids='serving_model')['model_path'] }}",
        manifest_path="{{ ti.xcom_pull(task_ids='serving_model')['manifest'] }}",
        inference_log=INFERENCE_LOG,
        payload="{{ ti.xcom_pull(task_ids='serving_model')['probe'] }}",
        requests=100,
        concurrency=2,
        duration_s=60,
        client_id=LOADTEST_CLIENT,
        slo_p95_ms=1000,
    )
    audit_inference_log = InferenceLogAuditOperator(
        task_id="audit_inference_log",
        inference_log=INFERENCE_LOG,
        reference=SERVING + "/ood-reference.json",
        rate_limit="10/minute",
        latency_slo_ms=1000,
        max_ood_share=0.5,
        exempt_clients=[LOADTEST_CLIENT],
        fail_severity="critical",  # findings inform the decision, they do not stop it
        trigger_rule="all_done",
    )
    retrain = RetrainTriggerOperator(
        task_id="retrain",
        trigger_dag_id="aisec_secure_training",
        report_task_ids=[
            *("window_integrity", "drift_test", "multivariate_drift", "performance", "performance_estimate"),
            "audit_inference_log",
        ],
        min_interval=timedelta(hours=6),
        max_per_day=4,
        dry_run="{{ params.dry_run }}",
        trigger_rule="all_done",
    )

    chain(demo.prepare_reference(TRAINING_SPLIT, LABELLED_REFERENCE, REFERENCE), reference_profile, model, window)
    chain(
        window,
        seal_window,
        demo.tamper_in_transit(WINDOW),
        window_landed,
        window_integrity,
        [drift_test, performance],
        retrain,
    )
    chain(window_integrity, retrain)
    chain(window_integrity, multivariate_drift, retrain)
    chain(window_integrity, demo.score_window(LABELLED_REFERENCE, WINDOW, model), performance_estimate, retrain)
    chain(window, load_test, audit_inference_log, retrain)
    # [END aisec_model_monitoring]
