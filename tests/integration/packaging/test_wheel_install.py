"""The built wheel installs into a clean virtualenv with only Airflow, and each extra adds its capability.

Builds the wheel with ``uv build``, installs it into a fresh ``uv venv`` pinned to the versions of
``uv.lock`` (uv's cache makes this take seconds), then uses it the way a user would: the provider is
registered, its ``[aisec]`` config section is known to Airflow, ``aisec hash``/``verify`` and a small
integrity DAG run, a capability whose extra is missing says which extra to install, and installing
that extra makes it work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("uv") is None, reason="uv is installed by scripts/setup.sh"),
]

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_aisec.operators.integrity import ArtifactHashOperator, ArtifactIntegrityOperator

with DAG("aisec_wheel_smoke", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    ArtifactHashOperator(task_id="hash", path="{model}", manifest_path="{manifest}") >> ArtifactIntegrityOperator(
        task_id="verify", path="{model}", manifest_path="{manifest}"
    )
"""


def _run(cmd: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtualenv holding the wheel and its core dependencies only (no extras)."""
    work = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    built = _run(["uv", "build", "--wheel", "--out-dir", str(work / "dist"), str(ROOT)], env)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (work / "dist").glob("airflow_aisec-*.whl")
    pins = work / "pins.txt"  # the core install's versions from uv.lock: no resolution drift
    exported = _run(
        ["uv", "export", "--frozen", "--format", "requirements-txt", "--no-hashes", "--no-emit-project", "--no-dev",
         "--project", str(ROOT), "-o", str(pins)],
        env,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr[-2000:]
    made = _run(["uv", "venv", "--quiet", "--python", sys.executable, str(work / "venv")], env)
    assert made.returncode == 0, made.stderr[-2000:]
    python = work / "venv" / "bin" / "python"
    installed = _run(["uv", "pip", "install", "--quiet", "--python", str(python), "-c", str(pins), str(wheel)], env)
    assert installed.returncode == 0, installed.stderr[-2000:]
    home = work / "airflow-home"
    env.update(
        AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(work / "dags")
    )
    for key in ("AISEC_DATA_DIR", "AISEC_REPORT_DIR", "AISEC_OSV_DB"):
        env.pop(key, None)
    return {"work": work, "bin": work / "venv" / "bin", "python": python, "wheel": wheel, "pins": pins, "env": env}


def test_core_install_has_no_optional_dependency(venv):
    probe = "import importlib.util as u; print([m for m in ('pandas','numpy','scipy','pip_audit','detect_secrets','sklearn','boto3') if u.find_spec(m)])"
    out = _run([str(venv["python"]), "-c", probe], venv["env"])
    assert out.stdout.strip() == "[]", out.stderr


def test_provider_and_config_section_are_registered(venv):
    listed = _run([str(venv["bin"] / "airflow"), "providers", "list", "--output", "json"], venv["env"])
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "airflow-aisec" in {p["package_name"] for p in json.loads(listed.stdout)}
    env = {**venv["env"], "AIRFLOW__AISEC__FAIL_ON": "high"}
    value = _run([str(venv["bin"] / "airflow"), "config", "get-value", "aisec", "fail_on"], env)
    assert value.returncode == 0 and value.stdout.strip().splitlines()[-1] == "high", value.stderr[-2000:]


def test_core_cli_and_a_dag_run_without_extras(venv):
    work, aisec, env = venv["work"], str(venv["bin"] / "aisec"), venv["env"]
    model = work / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 1024)
    manifest = work / "model.manifest.json"
    assert _run([aisec, "hash", str(model), "-o", str(manifest)], env).returncode == 0
    verified = _run([aisec, "verify", str(model), "--manifest", str(manifest), "--format", "json"], env)
    assert verified.returncode == 0 and json.loads(verified.stdout)["status"] == "pass", verified.stderr
    version = _run([aisec, "--version"], env)
    assert version.stdout.strip().startswith("airflow-aisec "), version.stderr

    (work / "dags").mkdir()
    (work / "dags" / "smoke_dag.py").write_text(
        textwrap.dedent(DAG).format(model=model, manifest=work / "dag.manifest.json"), encoding="utf-8"
    )
    airflow = str(venv["bin"] / "airflow")
    assert _run([airflow, "db", "migrate"], env).returncode == 0
    ran = _run([airflow, "dags", "test", "aisec_wheel_smoke"], env)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    assert (work / "dag.manifest.json").is_file()


def test_missing_extra_is_named_then_installing_it_works(venv):
    work, aisec, env = venv["work"], str(venv["bin"] / "aisec"), venv["env"]
    data = work / "ref.csv"
    data.write_text("x\n1\n2\n", encoding="utf-8")
    drift = _run([aisec, "drift", "--reference", str(data), str(data), "--format", "json"], env)
    assert drift.returncode == 2
    assert "pip install 'airflow-aisec[drift]'" in json.loads(drift.stdout)["summary"]
    assert "Traceback" not in drift.stderr

    scanned = work / "src"
    scanned.mkdir()
    (scanned / "app.py").write_text("print('hello')\n", encoding="utf-8")
    before = _run([aisec, "secrets", str(scanned), "--format", "json"], env)
    assert before.returncode == 2 and "airflow-aisec[secrets]" in json.loads(before.stdout)["summary"]
    extra = f"airflow-aisec[secrets] @ {venv['wheel'].as_uri()}"
    installed = _run(["uv", "pip", "install", "--quiet", "--python", str(venv["python"]), "-c", str(venv["pins"]),
                      extra], env)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    after = _run([aisec, "secrets", str(scanned), "--format", "json"], env)
    assert after.returncode == 0, after.stdout + after.stderr
    assert json.loads(after.stdout)["status"] == "pass"
