"""The plugin module stays light (schedulers and task runners load plugins too)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_importing_the_plugin_does_not_build_the_app():
    code = (
        "import json, sys\n"
        "from airflow_aisec.plugins.aisec_plugin import AisecPlugin\n"
        "app = AisecPlugin.fastapi_apps[0]['app']\n"
        "print(json.dumps([app._app is None, 'airflow_aisec.plugins.app' in sys.modules, 'fastapi' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, False, False]


def test_plugin_is_registered_through_the_entry_point():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="airflow.plugins")}
    assert eps["aisec"] == "airflow_aisec.plugins.aisec_plugin:AisecPlugin"
