"""``aisec profile build`` / ``aisec drift``: exit codes 0/1/2 and the JSON contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from airflow_aisec.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_drift")
    rng = np.random.default_rng(2)
    n = 1500
    ref = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})
    same = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})
    ref.to_parquet(base / "ref.parquet")
    same.to_csv(base / "same.csv", index=False)
    same.assign(x=same["x"] + 1, y=same["y"] + 1).to_parquet(base / "shifted.parquet")
    return base


def test_profile_build_then_drift_exit_codes(files, capsys):
    prof = files / "ref.prof"
    assert main(["profile", "build", str(files / "ref.parquet"), "-o", str(prof), "--format", "json"]) == 0
    digest = json.loads(capsys.readouterr().out)["details"]["profile"]["digest"]
    assert main(["drift", "--profile", str(prof), str(files / "same.csv"), "--expected-digest", digest]) == 0
    assert "[PASS]" in capsys.readouterr().out
    html = files / "r.html"
    code = main(
        ["drift", "--profile", str(prof), str(files / "shifted.parquet"), "--format", "json", "--html", str(html)]
    )
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "fail"
    by_name = {f["name"]: f for f in data["details"]["features"]}
    for f in by_name.values():
        assert {"name", "method", "statistic", "p_value"} <= set(f)
    assert by_name["x"]["method"] == "ks"
    assert "<svg" in html.read_text()


def test_drift_options_reference_and_errors(files, capsys):
    args = ["drift", "--reference", str(files / "ref.parquet"), str(files / "shifted.parquet"), "--format", "json"]
    assert main([*args, "--correction", "bonferroni", "--drift-share", "0.9"]) == 0  # 2/3 < 0.9: warn
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "warn"
    assert data["details"]["config"]["correction"] == "bonferroni"
    assert main([*args, "--drift-share", "0.9", "--critical", "x"]) == 1
    capsys.readouterr()
    assert main(["drift", "--reference", str(files / "ref.parquet"), str(files / "absent.parquet")]) == 2
    assert "data not found" in capsys.readouterr().err
    assert main(["drift", "--profile", str(files / "ref.parquet"), str(files / "same.csv")]) == 2
    assert "not an aisec drift profile" in capsys.readouterr().out
    assert main(["drift", "--reference", "a", "--profile", "b", "c"]) == 2  # argparse: mutually exclusive
