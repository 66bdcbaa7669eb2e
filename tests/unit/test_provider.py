from __future__ import annotations

import importlib
import subprocess
import sys

from airflow_aisec import __version__
from airflow_aisec.get_provider_info import get_provider_info


def test_provider_info_matches_distribution_and_modules_import():
    info = get_provider_info()
    assert info["package-name"] == "airflow-aisec"
    assert info["versions"] == [__version__]
    for section in ("operators", "sensors", "triggers", "hooks"):
        for group in info[section]:
            for module in group["python-modules"]:
                importlib.import_module(module)
    for conn in info["connection-types"]:
        module, _, cls = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), cls)
        assert hook.conn_type == conn["connection-type"]


def test_airflow_providers_list_shows_us(airflow_db):
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "get", "airflow-aisec", "-o", "json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "airflow-aisec" in out.stdout
    assert __version__ in out.stdout
