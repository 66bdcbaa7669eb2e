"""``aisec performance-estimate``: exit codes over real files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from airflow_aisec.cli import main


def _write(path, n, seed, p_scale=1.0, labelled=True):
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(0, 3 * p_scale, n)))
    frame = pd.DataFrame({"p_yes": p})
    if labelled:
        frame["churned"] = (rng.random(n) < p).astype(int)
    frame.to_csv(path, index=False)


def test_pass_fail_error_exit_codes(tmp_path, capsys):
    _write(tmp_path / "ref.csv", 1500, 1)
    _write(tmp_path / "same.csv", 1500, 2, labelled=False)
    _write(tmp_path / "uncertain.csv", 1500, 3, p_scale=0.1, labelled=False)  # every row near 0.5
    base = ["performance-estimate", "--reference", str(tmp_path / "ref.csv"), "--proba-columns", "p_yes"]
    base += ["--label", "churned", "--format", "json"]
    assert main([*base, "--current", str(tmp_path / "same.csv")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["check"] == "performance_estimate" and report["status"] == "pass"
    assert main([*base, "--current", str(tmp_path / "uncertain.csv")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "fail" and report["metrics"]["estimated_accuracy"] < 0.6
    assert main([*base, "--current", str(tmp_path / "missing.csv")]) == 2
    assert main([*base, "--current", str(tmp_path / "same.csv"), "--max-degradation", "nan"]) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
