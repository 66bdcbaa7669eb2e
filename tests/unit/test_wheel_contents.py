"""The wheel holds the product only: ``airflow_aisec`` and its metadata, none of the demo code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest
import tomllib

from tests.conftest import REPO_ROOT

#: demo-only code that must never ship (it lives in dags/aisec_demo/ with the example DAGs)
DEMO_NAMES = ("aisec_demo", "model_server", "live_window", "serving/", "simulate_window", "tamper_window")


def test_hatch_packs_only_the_product_package():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["airflow_aisec"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    if shutil.which("uv"):
        cmd = ["uv", "build", "--wheel", "--out-dir", str(out), str(REPO_ROOT)]
    else:
        pytest.importorskip("build", reason="neither uv nor the `build` package is available to build the wheel")
        cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO_ROOT)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    (path,) = out.glob("airflow_aisec-*.whl")
    return path


def test_wheel_has_no_demo_code(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        sources = {n: zf.read(n).decode("utf-8", "replace") for n in names if n.endswith(".py")}
    assert "airflow_aisec/core/model_loading.py" in names  # the hardened verify-before-load helper stays
    assert "airflow_aisec/operators/inference.py" in names
    outside = [n for n in names if not n.startswith(("airflow_aisec/", "airflow_aisec-"))]
    assert outside == []
    assert [n for n in names if any(d in n for d in DEMO_NAMES)] == []
    importing_demo = [n for n, src in sources.items() if "aisec_demo" in src or "live_window" in src]
    assert importing_demo == []
