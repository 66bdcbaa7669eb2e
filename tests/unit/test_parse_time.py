"""DAG parse time: importing the package, operators, sensors, hooks or triggers must stay light."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import airflow_aisec

HEAVY = ("pandas", "scipy", "numpy", "pyarrow", "great_expectations", "boto3", "botocore", "pip_audit", "sklearn")


def _parse_time_modules() -> list[str]:
    names = ["airflow_aisec"]
    for sub in ("operators", "sensors", "hooks", "triggers"):
        pkg = __import__(f"airflow_aisec.{sub}", fromlist=["_"])
        names.append(pkg.__name__)
        names += [f"{pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]
    return names


def test_operator_modules_do_not_import_heavy_libraries():
    modules = _parse_time_modules()
    assert "airflow_aisec.operators.base" in modules
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(h for h in {HEAVY!r} if h in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_package_import_is_free():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, airflow_aisec; print(sorted(m for m in sys.modules if m.startswith('airflow')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "['airflow_aisec']"
    assert airflow_aisec.__version__
