"""A small held-out set and fitted classifiers for the robustness gate's tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

#: small attack settings: a few seconds per run on a shared CI core
FAST = {"sample_size": 6, "max_iter": 3, "max_eval": 30}


def write_case(directory: Path) -> dict[str, Any]:
    """``holdout.csv`` (features f0..f2, label ``y`` in {"no", "yes"}) and a logistic regression."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    x = rng.normal(size=(240, 3))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0, "yes", "no")
    frame = pd.DataFrame(x, columns=["f0", "f1", "f2"])
    frame["y"] = y
    frame.iloc[180:].to_csv(directory / "holdout.csv", index=False)
    model = LogisticRegression().fit(frame.iloc[:180][["f0", "f1", "f2"]], y[:180])
    path = directory / "model.joblib"
    joblib.dump(model, path)
    return {
        "data": str(directory / "holdout.csv"),
        "frame": frame.iloc[180:].reset_index(drop=True),
        "model": str(path),
        "digest": "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(),
    }
