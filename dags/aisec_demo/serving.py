"""Demo side of the serving and monitoring recipes: a model to serve, a stand-in endpoint, traffic drills.

Host-safe by construction: the stand-in endpoint (:func:`aisec_demo.model_server.serving`) lives inside
the one task that uses it — started, exercised and stopped in a ``try/finally`` — so no task depends on
a process or port another task (maybe on another worker) created. What tasks share goes through XCom
or files under ``$AISEC_DATA_DIR`` (the model, its manifest and the inference log).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from airflow.sdk import task

from airflow_aisec.operators.inference import EndpointLoadTestOperator


def call(url: str, client: str, features: list[float], timeout: float = 10.0) -> tuple[int, Any]:
    """POST one row to ``url``/predict as ``client``; return (HTTP status, first prediction or None)."""
    request = urllib.request.Request(
        url + "/predict",
        data=json.dumps({"features": features}).encode(),
        headers={"Content-Type": "application/json", "X-Client-Id": client},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())["predictions"][0]
    except urllib.error.HTTPError as exc:
        return exc.code, None


class StandInEndpointLoadTestOperator(EndpointLoadTestOperator):
    """:class:`EndpointLoadTestOperator` against a stand-in endpoint that exists only inside this task.

    In production the endpoint is your serving deployment and the recipe uses
    ``EndpointLoadTestOperator(url=...)`` directly. Here the verified model is served on loopback for the
    duration of the load test (verify + scan before load; log appended to ``inference_log``), then stopped.

    :param model_path: the model file (shared storage). (templated)
    :param manifest_path: manifest recording its SHA-256. (templated)
    :param inference_log: JSON-lines log the stand-in appends to (shared storage). (templated)
    :param rate_limit_per_minute: the stand-in's per-client limit (the load tester is exempt).
    """

    template_fields: Sequence[str] = (
        *EndpointLoadTestOperator.template_fields,
        "model_path",
        "manifest_path",
        "inference_log",
    )

    def __init__(
        self,
        *,
        model_path: str,
        manifest_path: str,
        inference_log: str,
        rate_limit_per_minute: float = 10.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("url", "http://127.0.0.1/predict")  # replaced by the stand-in's address at run time
        super().__init__(**kwargs)
        self.model_path = model_path
        self.manifest_path = manifest_path
        self.inference_log = inference_log
        self.rate_limit_per_minute = rate_limit_per_minute

    def execute(self, context: Any) -> dict[str, Any]:
        from aisec_demo.model_server import serving

        with serving(
            self.model_path,
            manifest_path=self.manifest_path,
            log_path=self.inference_log,
            exempt_clients=[self.client_id],
            rate_limit_per_minute=self.rate_limit_per_minute,
        ) as srv:
            self.url = srv.url + "/predict"
            return super().execute(context)


N_FEATURES = 4


@task
def prepare_model(run_dir: str, params=None) -> dict[str, Any]:
    """Train a tiny model and write its OOD reference; with ``{"malicious": true}`` ship a booby-trapped
    pickle instead (its reduce calls ``os.system``; the scan must stop it, it is never unpickled here)."""
    import pickle

    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from airflow_aisec.core.inference_audit import build_reference_ranges
    from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

    os.makedirs(run_dir, exist_ok=True)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(500, N_FEATURES))
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] > 0).astype(int)
    model_path = os.path.join(run_dir, "model.joblib")
    if (params or {}).get("malicious"):
        sentinel = os.path.join(run_dir, "PWNED")

        class Trojan:  # what a poisoned upstream artifact looks like
            def __reduce__(self) -> tuple[Any, ...]:
                return (os.system, (f"echo 'the model was unpickled' > {sentinel}",))

        blob = pickle.dumps({"model": LogisticRegression().fit(x, y), "hook": Trojan()}, protocol=4)
        write_bytes_atomic(model_path, blob)
    else:
        joblib.dump(LogisticRegression().fit(x, y), model_path + ".tmp")
        os.replace(model_path + ".tmp", model_path)
    write_json_atomic(os.path.join(run_dir, "reference.json"), build_reference_ranges(x, source="training data"))
    return {"model_path": model_path, "dir": run_dir}


@task
def scanner_canary(run_dir: str) -> dict[str, Any]:
    """Build a malicious torch-style checkpoint now and show the scanner catching it (nothing executes)."""
    import io
    import zipfile

    from airflow_aisec.core.modelscan import scan_paths

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
def simulate_traffic(model_path: str, manifest_path: str, inference_log: str) -> dict[str, Any]:
    """Five well-behaved clients (8 requests each), then one scraper bursting 30 out-of-range requests,
    against a stand-in endpoint living inside this task (the 10-per-minute limit must throttle it)."""
    import numpy as np

    from aisec_demo.model_server import serving

    rng = np.random.default_rng(11)
    codes: dict[str, list[int]] = {}
    with serving(model_path, manifest_path=manifest_path, log_path=inference_log) as srv:
        for client in ("app-web", "app-mobile", "batch-scorer", "partner-api", "analyst"):
            codes[client] = [call(srv.url, client, rng.normal(size=N_FEATURES).round(3).tolist())[0] for _ in range(8)]
        codes["scraper-7"] = [call(srv.url, "scraper-7", [8.0 + i, -8.0, 8.0, 0.5 * i])[0] for i in range(30)]
    if codes["scraper-7"].count(429) == 0:
        raise RuntimeError("the rate limit did not throttle the scraper")
    return {client: {str(c): v.count(c) for c in set(v)} for client, v in codes.items()}
