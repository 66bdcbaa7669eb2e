"""The ``[aisec]`` configuration section: declared in the provider metadata, read by operators."""

from __future__ import annotations

import warnings

import pytest

from airflow_aisec import settings
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.get_provider_info import get_provider_info
from airflow_aisec.utils.paths import data_dir

OPTIONS = {"report_dir", "data_dir", "osv_db", "fail_on", "osv_max_age_days"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for option, old in settings.DEPRECATED_ENV.items():
        monkeypatch.delenv(old, raising=False)
        monkeypatch.delenv(f"AIRFLOW__AISEC__{option.upper()}", raising=False)
    monkeypatch.delenv("AIRFLOW__AISEC__FAIL_ON", raising=False)
    monkeypatch.delenv("AIRFLOW__AISEC__OSV_MAX_AGE_DAYS", raising=False)


def test_every_option_is_declared_with_a_description():
    section = get_provider_info()["config"]["aisec"]
    assert set(section["options"]) == OPTIONS
    for name, option in section["options"].items():
        assert len(option["description"]) > 40, name
        assert option["type"] in ("string", "float"), name
        assert "example" in option and "default" in option, name


def test_airflow_variable_wins_over_the_deprecated_one(monkeypatch):
    monkeypatch.setenv("AISEC_REPORT_DIR", "/old")
    monkeypatch.setenv("AIRFLOW__AISEC__REPORT_DIR", "/new")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new option is used: no deprecation warning
        assert settings.get("report_dir") == "/new"


@pytest.mark.parametrize("option", sorted(settings.DEPRECATED_ENV))
def test_deprecated_variable_still_works_and_warns(monkeypatch, option):
    old = settings.DEPRECATED_ENV[option]
    monkeypatch.setenv(old, "/legacy")
    with pytest.warns(DeprecationWarning, match=f"{old} environment variable is deprecated.*AIRFLOW__AISEC__"):
        assert settings.get(option) == "/legacy"


def test_unset_options_fall_back():
    assert settings.get("report_dir") is None
    assert settings.get("osv_db", fallback="x") == "x"
    assert settings.get("fail_on") == "any"  # the declared default, through Airflow's configuration
    assert settings.get_float("osv_max_age_days") is None


def test_numbers_are_checked(monkeypatch):
    monkeypatch.setenv("AIRFLOW__AISEC__OSV_MAX_AGE_DAYS", "14")
    assert settings.get_float("osv_max_age_days") == 14.0
    monkeypatch.setenv("AIRFLOW__AISEC__OSV_MAX_AGE_DAYS", "two weeks")
    with pytest.raises(AisecInputError, match=r"\[aisec\] osv_max_age_days must be a number"):
        settings.get_float("osv_max_age_days")


def test_data_dir_reads_the_option_then_the_deprecated_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("AISEC_DATA_DIR", str(tmp_path / "old"))
    assert data_dir("x") == tmp_path / "old" / "x"
    monkeypatch.setenv("AIRFLOW__AISEC__DATA_DIR", str(tmp_path / "new"))
    assert data_dir("x") == tmp_path / "new" / "x"
