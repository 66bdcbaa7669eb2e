"""Demo side of ``aisec_model_monitoring``: reference data, the serving model, the live feed, the drill.

* :func:`prepare_reference` — the training split written by ``aisec_secure_training`` when that DAG
  has run, else scikit-learn's bundled breast-cancer set (so the monitoring DAG is self-sufficient);
* :func:`serving_model` — the model in production (a stand-in fitted on the reference) with its
  manifest, OOD reference and the load test's probe request;
* :func:`collect_window` — the live feed: a window drawn from the reference with an injected mean shift
  (param ``shift``), sent row by row through a stand-in endpoint that lives inside this task; the served
  predictions are kept for a labelled subset;
* :func:`tamper_in_transit` — the poisoning drill (param ``tamper``): rewrites the sealed window.

All files are under the paths the recipe passes (``$AISEC_DATA_DIR``: shared storage across workers).
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import task

from aisec_demo.serving import call

LABEL = "target"
BUNDLED_DATASET = "breast_cancer"
#: application clients of the simulated live feed (each stays under the endpoint's 10/minute limit)
FEED_CLIENTS = 40


@task
def prepare_reference(training_split: str, labelled: str, features: str) -> dict[str, Any]:
    """Reference data: the training split when the training DAG has run, else the bundled dataset."""
    from airflow_aisec.utils.fs import write_text_atomic
    from aisec_demo import live_window as lw

    if os.path.isfile(training_split):
        frame, source = lw.read_table(training_split), training_split
    else:
        frame, source = lw.bundled_reference(BUNDLED_DATASET), f"sklearn:{BUNDLED_DATASET} (bundled)"
    write_text_atomic(labelled, frame.to_csv(index=False))
    write_text_atomic(features, frame.drop(columns=[LABEL]).to_csv(index=False))
    return {"source": source, "rows": len(frame)}


@task
def serving_model(reference_labelled: str, run_dir: str) -> dict[str, Any]:
    """The model in production (stand-in fitted on the reference), its manifest and OOD reference."""
    import hashlib
    import json

    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from airflow_aisec.core.inference_audit import build_reference_ranges
    from airflow_aisec.utils.fs import write_json_atomic
    from aisec_demo import live_window as lw

    frame = lw.read_table(reference_labelled)
    x_ref = frame.drop(columns=[LABEL])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=42))
    model.fit(x_ref, frame[LABEL])
    os.makedirs(run_dir, exist_ok=True)
    model_path = os.path.join(run_dir, "model.joblib")
    joblib.dump(model, model_path + ".tmp")
    os.replace(model_path + ".tmp", model_path)
    with open(model_path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    manifest = os.path.join(run_dir, "manifest.json")
    write_json_atomic(manifest, {"files": {"model.joblib": {"sha256": digest}}})
    write_json_atomic(
        os.path.join(run_dir, "ood-reference.json"), build_reference_ranges(x_ref, source="reference data")
    )
    probe = json.dumps({"features": [float(v) for v in x_ref.median()]})  # the load test's request
    return {"model_path": model_path, "manifest": manifest, "probe": probe}


@task
def collect_window(
    reference_labelled: str, window_dir: str, model_path: str, manifest: str, inference_log: str, params=None
) -> dict[str, Any]:
    """The live feed: a window (shifted by ``shift``) sent through the endpoint, which exists only inside
    this task; served predictions are kept for the labelled subset (labels arrive later in production)."""
    from aisec_demo import live_window as lw
    from aisec_demo.model_server import serving

    frame = lw.read_table(reference_labelled)
    features, labelled, info = lw.simulate_window(
        frame, rows=int(params["rows"]), shift=float(params["shift"]), label_column=LABEL, seed=int(params["seed"])
    )
    predictions = []
    with serving(model_path, manifest_path=manifest, log_path=inference_log) as srv:
        for i, row in enumerate(features.itertuples(index=False)):  # bounded: one request per window row
            status, prediction = call(srv.url, f"app-{i % FEED_CLIENTS:02d}", [float(v) for v in row])
            if status != 200:
                raise RuntimeError(f"the endpoint answered HTTP {status} to the live feed")
            predictions.append(prediction)
    labelled["prediction"] = predictions[: len(labelled)]
    return {**lw.write_window(window_dir, features, labelled), "dir": window_dir, **info}


@task
def tamper_in_transit(window_dir: str, params=None) -> int:
    """Poisoning drill: rewrite the sealed window (only with ``tamper``)."""
    from aisec_demo import live_window as lw

    return lw.tamper_window(window_dir) if params["tamper"] else 0


@task
def score_window(labelled_reference: str, window_dir: str, model: dict[str, Any]) -> dict[str, Any]:
    """The serving model's probabilities (verified before loading) on the labelled reference and the window:
    what a label-free estimate needs (in production the serving log already holds them)."""
    import pandas as pd

    from airflow_aisec.core.model_loading import load_verified_model
    from airflow_aisec.utils.fs import write_text_atomic
    from aisec_demo import live_window as lw

    clf = load_verified_model(model["model_path"], manifest_path=model["manifest"]).model
    reference = lw.read_table(labelled_reference)
    scored_ref = pd.DataFrame(clf.predict_proba(reference.drop(columns=[LABEL])), columns=["p0", "p1"])
    scored_ref[LABEL] = reference[LABEL].to_numpy()
    scored_window = pd.DataFrame(clf.predict_proba(lw.read_table(f"{window_dir}/features.csv")), columns=["p0", "p1"])
    write_text_atomic(f"{window_dir}.scored-reference.csv", scored_ref.to_csv(index=False))
    write_text_atomic(f"{window_dir}.scored-window.csv", scored_window.to_csv(index=False))
    return {"rows": len(scored_window)}
