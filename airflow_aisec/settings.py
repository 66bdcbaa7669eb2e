"""The ``[aisec]`` Airflow configuration section, read by operators (never by core engines).

Options are declared in the provider metadata (``get_provider_info()["config"]``), so they appear in
``airflow config list`` and can be set in ``airflow.cfg`` or as ``AIRFLOW__AISEC__<OPTION>``
environment variables, e.g. ``AIRFLOW__AISEC__REPORT_DIR``.

The older ``AISEC_REPORT_DIR``, ``AISEC_DATA_DIR`` and ``AISEC_OSV_DB`` environment variables keep
working when the option is not set (deprecated: a ``DeprecationWarning`` says which option replaces
each). Airflow's configuration is imported lazily, at the first read.
"""

from __future__ import annotations

import os
import warnings

SECTION = "aisec"

#: Option → the deprecated environment variable still honoured when the option is unset.
DEPRECATED_ENV: dict[str, str] = {
    "report_dir": "AISEC_REPORT_DIR",
    "data_dir": "AISEC_DATA_DIR",
    "osv_db": "AISEC_OSV_DB",
}


def _airflow_conf():  # type: ignore[no-untyped-def]
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - an Airflow without the Task SDK configuration
        from airflow.configuration import conf
    return conf


def get(option: str, *, fallback: str | None = None) -> str | None:
    """The value of ``[aisec] option``, else its deprecated environment variable, else ``fallback``.

    An empty value counts as unset.

    :param option: option name in the ``[aisec]`` section (``report_dir``, ``osv_db`` …).
    :param fallback: returned when neither the option nor the deprecated variable is set.
    """
    value = _airflow_conf().get(SECTION, option, fallback=None)
    if value not in (None, ""):
        return str(value)
    old = DEPRECATED_ENV.get(option)
    if old and os.environ.get(old):
        warnings.warn(
            f"the {old} environment variable is deprecated: set [{SECTION}] {option} in airflow.cfg "
            f"or AIRFLOW__{SECTION.upper()}__{option.upper()} instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return os.environ[old]
    return fallback


def get_float(option: str) -> float | None:
    """``[aisec] option`` as a number, ``None`` when unset.

    :raises AisecInputError: the value is not a number (the message names the option).
    """
    value = get(option)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        from airflow_aisec.exceptions import AisecInputError

        raise AisecInputError(f"[{SECTION}] {option} must be a number, got {value!r}") from None
