"""Model serving security, end to end: hash → scan → serve (rate-limited, logged) → load-test → audit.

Runs as-is on loopback with no external service:

1. ``prepare_model`` trains a tiny scikit-learn model, saves it with joblib and builds the OOD
   reference (per-feature robust ranges) from the training data; ``hash_model``
   (:class:`ArtifactHashOperator`) records its SHA-256 in an ``aisec.manifest/v1`` manifest.
   With ``conf={"malicious": true}`` it ships a booby-trapped model instead (a pickle whose reduce
   calls ``os.system``): ``scan_model`` then fails and the server is never started.
2. ``scan_model`` (:class:`ModelArtifactScanOperator`) scans the artifact without loading it.
3. ``scanner_canary`` builds a malicious PyTorch-style checkpoint at run time and proves the scanner
   catches it (and that its payload never ran) without failing the run.
4. ``start_server`` (setup) starts the model server on 127.0.0.1, port chosen by the OS; the server
   itself re-verifies the digest against the manifest and re-scans before loading.
5. ``load_test`` (:class:`EndpointLoadTestOperator`): bounded, 200 requests, 4 workers.
6. ``simulate_traffic``: five normal clients and one abusive scraper (bursting past the
   10-per-minute limit with out-of-range inputs); the server throttles it.
7. ``audit_inference_log`` (:class:`InferenceLogAuditOperator`) reads the server's JSON-lines log:
   the throttled scraper is reported (warn) and the OOD share (its out-of-range inputs, 20%) stays
   under the configured 25%, so the run succeeds while showing the abuse.
8. ``stop_server`` (teardown) always stops the server.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import chain, dag, task

from airflow_aisec.operators.inference import EndpointLoadTestOperator, InferenceLogAuditOperator
from airflow_aisec.operators.integrity import ArtifactHashOperator
from airflow_aisec.operators.modelscan import ModelArtifactScanOperator
from airflow_aisec.utils.paths import data_dir

WORK = data_dir("model_serving")
LOADTEST_CLIENT = "aisec-loadtest"
SLO_MS = 250.0
N_FEATURES = 4


def _run_dir(run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return os.path.join(str(WORK), safe)


@task
def prepare_model(**context: Any) -> dict[str, Any]:
    """Train (or replace with a malicious sample, on request) the model; write the OOD reference."""
    import pickle

    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from airflow_aisec.core.inference import build_reference_ranges
    from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

    run_dir = _run_dir(context["run_id"])
    os.makedirs(run_dir, exist_ok=True)
    rng = np.random.default_rng(7)
    X = rng.normal(size=(500, N_FEATURES))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(int)
    model_path = os.path.join(run_dir, "model.joblib")
    if context["params"].get("malicious"):
        sentinel = os.path.join(run_dir, "PWNED")

        class Trojan:  # what a poisoned upstream artifact looks like; never unpickled here
            def __reduce__(self) -> tuple[Any, ...]:
                return (os.system, (f"echo 'the model was unpickled' > {sentinel}",))

        blob = pickle.dumps({"model": LogisticRegression().fit(X, y), "hook": Trojan()}, protocol=4)
        write_bytes_atomic(model_path, blob)
    else:
        tmp = model_path + ".tmp"
        joblib.dump(LogisticRegression().fit(X, y), tmp)
        os.replace(tmp, model_path)
    reference = os.path.join(run_dir, "reference.json")
    write_json_atomic(reference, build_reference_ranges(X, source="training data"))
    manifest = os.path.join(run_dir, "model.manifest.json")  # written by hash_model (ArtifactHashOperator)
    return {"model_path": model_path, "manifest": manifest, "reference": reference, "dir": run_dir}


@task
def scanner_canary(**context: Any) -> dict[str, Any]:
    """Build a malicious torch-style checkpoint now and show the scanner catching it (nothing executes)."""
    import io
    import zipfile

    from airflow_aisec.core.modelscan import scan_paths

    run_dir = _run_dir(context["run_id"])
    os.makedirs(run_dir, exist_ok=True)
    sentinel = os.path.join(run_dir, "CANARY-PWNED")
    cmd = f"touch {sentinel}".encode()
    # data.pkl: STACK_GLOBAL('os', 'system') with the strings fetched back from the memo, then REDUCE
    evil = (
        b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94"
        + b"00h\x00h\x01\x93"
        + b"\x8c"
        + bytes([len(cmd)])
        + cmd
        + b"\x85R."
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", evil)
        zf.writestr("archive/data/0", b"\x00" * 16)
        zf.writestr("archive/version", "3\n")
    sample = os.path.join(run_dir, "canary_checkpoint.pt")
    with open(sample, "wb") as fh:
        fh.write(buf.getvalue())
    report = scan_paths([sample])
    critical = [f for f in report.findings if f.severity == "critical"]
    if report.status != "fail" or not critical or os.path.exists(sentinel):
        raise RuntimeError(f"scanner canary NOT caught: {report.status} {report.summary}")
    return {"status": report.status, "caught": [f.details["global"] for f in critical], "executed": False}


@task
def start_server(model: dict[str, Any]) -> dict[str, Any]:
    """Start the model server (separate process, loopback, bounded lifetime); it verifies + scans first."""
    from airflow_aisec.serving.server import start_server_process

    return start_server_process(
        model["model_path"],
        manifest_path=model["manifest"],
        log_path=os.path.join(model["dir"], "inference.jsonl"),
        state_dir=model["dir"],
        rate_limit_per_minute=10,
        exempt_clients=[LOADTEST_CLIENT],
        max_lifetime_s=600,
    )


@task
def simulate_traffic(server: dict[str, Any]) -> dict[str, Any]:
    """Five well-behaved clients (8 requests each), then one scraper bursting 30 out-of-range requests."""
    import json
    import urllib.error
    import urllib.request

    import numpy as np

    rng = np.random.default_rng(11)

    def call(client: str, features: list[float]) -> int:
        req = urllib.request.Request(
            server["url"] + "/predict",
            data=json.dumps({"features": features}).encode(),
            headers={"Content-Type": "application/json", "X-Client-Id": client},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    codes: dict[str, list[int]] = {}
    for client in ("app-web", "app-mobile", "batch-scorer", "partner-api", "analyst"):
        codes[client] = [call(client, rng.normal(size=N_FEATURES).round(3).tolist()) for _ in range(8)]
    codes["scraper-7"] = [call("scraper-7", [8.0 + i, -8.0, 8.0, 0.5 * i]) for i in range(30)]
    throttled = codes["scraper-7"].count(429)
    if throttled == 0:
        raise RuntimeError("the rate limit did not throttle the scraper")
    return {client: {str(c): v.count(c) for c in set(v)} for client, v in codes.items()}


@task
def stop_server(server: dict[str, Any]) -> dict[str, Any]:
    from airflow_aisec.serving.server import stop_server_process

    return stop_server_process(server)


@dag(
    dag_id="aisec_model_serving_security",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aisec", "inference", "model-scan", "example"],
    doc_md=__doc__,
    params={"malicious": False},
)
def aisec_model_serving_security() -> None:
    model = prepare_model()
    hash_model = ArtifactHashOperator(
        task_id="hash_model",
        path="{{ ti.xcom_pull(task_ids='prepare_model')['model_path'] }}",
        manifest_path="{{ ti.xcom_pull(task_ids='prepare_model')['manifest'] }}",
    )
    scan = ModelArtifactScanOperator(
        task_id="scan_model",
        paths="{{ ti.xcom_pull(task_ids='prepare_model')['model_path'] }}",
    )
    canary = scanner_canary()
    server = start_server(model)
    load = EndpointLoadTestOperator(
        task_id="load_test",
        url="{{ ti.xcom_pull(task_ids='start_server')['url'] }}/predict",
        requests=200,
        concurrency=4,
        duration_s=60,
        payload={"features": [0.1, -0.2, 0.3, 0.0]},
        client_id=LOADTEST_CLIENT,
        slo_p95_ms=SLO_MS,
    )
    traffic = simulate_traffic(server)
    audit = InferenceLogAuditOperator(
        task_id="audit_inference_log",
        inference_log="{{ ti.xcom_pull(task_ids='start_server')['log_path'] }}",
        reference="{{ ti.xcom_pull(task_ids='prepare_model')['reference'] }}",
        rate_limit="10/minute",
        latency_slo_ms=SLO_MS,
        max_ood_share=0.25,
        exempt_clients=[LOADTEST_CLIENT],
    )
    stop = stop_server(server)
    chain(model, hash_model, [scan, canary], server, load, traffic, audit, stop)
    stop.as_teardown(setups=server)


aisec_model_serving_security()
