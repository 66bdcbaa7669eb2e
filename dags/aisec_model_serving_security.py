"""Model serving security: hash → scan → (serve) → bounded load test → inference-log audit.

The security chain: ``hash_model`` records the model's SHA-256 in a manifest; ``scan_model`` walks the
pickle's opcodes without loading it (a malicious model fails here and is never served); the endpoint
verifies the digest and re-scans before it loads the model; ``load_test`` checks p95 latency against the
SLO with bounded requests; ``audit_inference_log`` reads the endpoint's JSON-lines log (rate abuse,
latency, errors, probing, out-of-distribution share; hashes only, raw inputs never reach the report).

Demo parts (``aisec_demo.serving``): ``prepare_model`` trains a tiny model (``{"malicious": true}``
ships a booby-trapped pickle instead: the run must fail at ``scan_model``); ``scanner_canary`` proves
the scanner catches a torch-style checkpoint built at run time; the endpoint is a stand-in served
*inside* the ``load_test`` and ``simulate_traffic`` tasks (start, exercise, stop in one task), where
five normal clients and one scraper bursting past 10/minute with out-of-range inputs are simulated.
In production point ``EndpointLoadTestOperator(url=...)`` at your serving deployment and the audit at
its log.

**Storage.** Model, manifest, OOD reference and inference log live under
``$AISEC_DATA_DIR/model_serving/<run>``: with Celery workers on separate hosts ``AISEC_DATA_DIR`` must
be a shared filesystem; no task relies on a process or port another task started.
**On Kubernetes** (KubernetesExecutor, no shared disk) mount a ReadWriteMany volume or an object-store
mount at ``AISEC_DATA_DIR`` in the pod template; the real endpoint ships its log to object storage.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, chain
from aisec_demo import RUN_DIR_TEMPLATE
from aisec_demo import serving as demo

from airflow_aisec.operators.inference import InferenceLogAuditOperator
from airflow_aisec.operators.integrity import ArtifactHashOperator
from airflow_aisec.operators.modelscan import ModelArtifactScanOperator
from airflow_aisec.utils.paths import data_dir

RUN_DIR = str(data_dir("model_serving")) + "/" + RUN_DIR_TEMPLATE  # one folder per run, shared storage
MODEL = RUN_DIR + "/model.joblib"
MANIFEST = RUN_DIR + "/model.manifest.json"
INFERENCE_LOG = RUN_DIR + "/inference.jsonl"
OOD_REFERENCE = RUN_DIR + "/reference.json"  # per-feature robust ranges of the training data
LOADTEST_CLIENT = "aisec-loadtest"
SLO_MS = 250.0

with DAG(
    dag_id="aisec_model_serving_security",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisec", "inference", "model-scan", "example"],
    doc_md=__doc__,
    params={"malicious": Param(False, type="boolean", description="ship a booby-trapped model (demo)")},
) as dag:
    # [START aisec_model_serving_security]
    hash_model = ArtifactHashOperator(task_id="hash_model", path=MODEL, manifest_path=MANIFEST)
    scan_model = ModelArtifactScanOperator(task_id="scan_model", paths=MODEL)
    load_test = demo.StandInEndpointLoadTestOperator(  # production: EndpointLoadTestOperator(url=<endpoint>)
        task_id="load_test",
        model_path=MODEL,
        manifest_path=MANIFEST,
        inference_log=INFERENCE_LOG,
        requests=200,
        concurrency=4,
        duration_s=60,
        payload={"features": [0.1, -0.2, 0.3, 0.0]},
        client_id=LOADTEST_CLIENT,
        slo_p95_ms=SLO_MS,
    )
    audit_inference_log = InferenceLogAuditOperator(
        task_id="audit_inference_log",
        inference_log=INFERENCE_LOG,
        reference=OOD_REFERENCE,
        rate_limit="10/minute",
        latency_slo_ms=SLO_MS,
        max_ood_share=0.25,
        exempt_clients=[LOADTEST_CLIENT],
    )

    chain(
        demo.prepare_model(RUN_DIR),  # your model registry download goes here
        hash_model,
        [scan_model, demo.scanner_canary(RUN_DIR)],
        load_test,
        demo.simulate_traffic(MODEL, MANIFEST, INFERENCE_LOG),  # demo: normal clients + one scraper
        audit_inference_log,
    )
    # [END aisec_model_serving_security]
