"""Missing optional dependencies: one message naming the extra to install."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pytest
import tomllib

from airflow_aisec.cli._common import unexpected_error
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils.extras import MODULE_EXTRAS, MissingExtraError, missing_extra, require

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def test_require_returns_the_module():
    assert require("json") is json


def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ModuleNotFoundError
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'airflow-aisec[data]'")) as info:
        require("pandas")
    assert isinstance(info.value, AisecInputError)  # operators fail without retry, the CLI exits 2
    with pytest.raises(MissingExtraError, match=re.escape("airflow-aisec[model]")):
        require("pandas", extra="model")


def test_a_broken_dependency_of_an_installed_module_is_not_disguised(monkeypatch, tmp_path):
    (tmp_path / "aisec_fake_lib.py").write_text("import aisec_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="aisec_missing_dependency"):
        require("aisec_fake_lib", extra="data")


def test_missing_extra_translates_module_not_found_and_its_causes():
    assert missing_extra(ValueError("x")) is None
    assert missing_extra(ModuleNotFoundError("No module named 'left_pad'", name="left_pad")) is None
    direct = missing_extra(ModuleNotFoundError("No module named 'scipy.stats'", name="scipy.stats"))
    assert direct is not None and direct.extra == "drift" and direct.module == "scipy"
    try:
        try:
            raise ModuleNotFoundError("No module named 'detect_secrets'", name="detect_secrets")
        except ModuleNotFoundError as inner:
            raise RuntimeError("plugin loading failed") from inner
    except RuntimeError as wrapped:
        found = missing_extra(wrapped)
    assert found is not None and found.extra == "secrets"


def test_every_extra_named_exists_and_lists_its_module():
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    for module, extra in MODULE_EXTRAS.items():
        assert extra in extras, (module, extra)
        names = " ".join(extras[extra]).lower().replace("-", "_")
        distribution = {
            "sklearn": "scikit_learn",
            "botocore": "boto3",
            "art": "adversarial_robustness_toolbox",
            "cyclonedx": "cyclonedx_python_lib",
            "openlineage": "apache_airflow_providers_openlineage",
        }.get(module, module)
        assert distribution in names, (module, extra)
    assert set(extras["all"][0].split("[")[1].rstrip("]").split(",")) == {
        "audit", "secrets", "data", "drift", "model", "aws", "formats", "robustness", "signing", "mlbom", "openlineage"
    }  # fmt: skip


def test_cli_reports_a_missing_extra_as_one_clear_error(capsys):
    args = argparse.Namespace(command="drift", current="live.csv", format="json")
    exc = ModuleNotFoundError("No module named 'numpy'", name="numpy")
    assert unexpected_error(args, "drift", exc) == 2
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["status"] == "error"
    assert "pip install 'airflow-aisec[drift]'" in report["summary"]
    assert "unexpected" not in report["summary"] and "unexpected" not in err
    assert err.count("airflow-aisec[drift]") == 1
