"""What a drift reference profile holds: per-column metadata and arrays, and the build options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airflow_aisec.exceptions import AisecInputError

#: default: above this many finite values a numeric column is stored as a quantile grid.
DEFAULT_EXACT_MAX = 2_000_000
#: default number of grid knots (certified KS error bound about 1 / grid_size).
DEFAULT_GRID_SIZE = 16_384
#: categorical columns with more distinct values than this are skipped (likely identifiers).
DEFAULT_MAX_CATEGORIES = 200
#: integer columns with at most this many distinct values are tested with chi-square by default.
DEFAULT_MAX_DISCRETE = 20


@dataclass
class ColumnProfile:
    """One column of a profile: ``meta`` (JSON) and its arrays (numpy)."""

    name: str
    meta: dict[str, Any]
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])


@dataclass
class Profile:
    """A reference profile (see the module docstring)."""

    columns: dict[str, ColumnProfile]
    build: dict[str, Any]
    digest: str | None = None
    path: str | None = None

    @property
    def n_rows(self) -> int:
        return int(self.build.get("n_rows", 0))


@dataclass
class BuildOptions:
    """Parameters of a profile build (recorded in the profile)."""

    exact_max: int = DEFAULT_EXACT_MAX
    grid_size: int = DEFAULT_GRID_SIZE
    max_categories: int = DEFAULT_MAX_CATEGORIES
    max_discrete: int = DEFAULT_MAX_DISCRETE

    def __post_init__(self) -> None:
        for name in ("exact_max", "grid_size", "max_categories", "max_discrete"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise AisecInputError(f"profile option {name} must be an integer >= 2, not {value!r}")

    def to_dict(self) -> dict[str, int]:
        return {
            "exact_max": self.exact_max,
            "grid_size": self.grid_size,
            "max_categories": self.max_categories,
            "max_discrete": self.max_discrete,
        }
