"""Optional capabilities: which ``pip install 'airflow-aisec[EXTRA]'`` brings which third-party module.

The core install (integrity, provenance, the UI view, the CLI) needs only Airflow. Every other
capability imports its libraries lazily; when one is missing the user gets ONE message naming the
extra to install, never a bare ``ModuleNotFoundError`` traceback:

* :func:`require` at a lazy-import site: ``pd = require("pandas", extra="data")``;
* :func:`missing_extra` where errors are reported (the CLI, the operators' base class): it turns a
  ``ModuleNotFoundError`` of a module listed here into :class:`MissingExtraError`.

No Airflow import here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from airflow_aisec.exceptions import AisecInputError

#: Top-level module → the extra that installs it (the first extra naming it in ``pyproject.toml``).
MODULE_EXTRAS: dict[str, str] = {
    "pip_audit": "audit",
    "cvss": "audit",
    "detect_secrets": "secrets",
    "great_expectations": "data",
    "pandas": "data",
    "numpy": "drift",
    "scipy": "drift",
    "pyarrow": "drift",
    "blake3": "drift",
    "sklearn": "model",
    "joblib": "model",
    "lz4": "model",
    "boto3": "aws",
    "botocore": "aws",
    "s3fs": "aws",
    "policy_sentry": "aws",
    "h5py": "formats",
    "onnx": "formats",
    "gguf": "formats",
    "art": "robustness",
    "model_signing": "signing",
    "securesystemslib": "signing",
    "in_toto_attestation": "signing",
    "cyclonedx": "mlbom",
    "openlineage": "openlineage",
}


class MissingExtraError(AisecInputError):
    """A capability's optional dependency is not installed; the message names the extra to install.

    An input (installation) problem, not a verdict: operators fail the task without retry, the CLI
    reports ``error`` (exit 2).
    """

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"this capability needs the optional dependency {module!r}, which is not installed: "
            f"pip install 'airflow-aisec[{extra}]' (or 'airflow-aisec[all]')"
        )


def require(module: str, *, extra: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming the extra that provides it.

    :param module: dotted module name (``"pandas"``, ``"scipy.stats"``).
    :param extra: the extra to name; default: :data:`MODULE_EXTRAS` of the top-level package.
    """
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.partition(".")[0] != top:
            raise  # the module exists but one of ITS dependencies is missing: a broken install, say so
        raise MissingExtraError(top, extra or MODULE_EXTRAS.get(top, "all")) from exc


def missing_extra(exc: BaseException) -> MissingExtraError | None:
    """``exc`` as a :class:`MissingExtraError` when it is (or was caused by) a missing optional module.

    Looks through ``__cause__``/``__context__`` (a library wrapping the import error) a few levels deep.
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, MissingExtraError):
            return current
        if isinstance(current, ModuleNotFoundError) and current.name:
            top = current.name.partition(".")[0]
            if top in MODULE_EXTRAS:
                return MissingExtraError(top, MODULE_EXTRAS[top])
        current = current.__cause__ or current.__context__
        seen += 1
    return None
