"""Drift reference profiles: what the drift tests need to know about the reference (training-time) data,
built once from that data and stored as one verified file.

(Not the inference-log audit's reference, per-feature robust input ranges saved as
``aisec.inference-reference/v1`` JSON, which can be derived from a drift profile: see
:mod:`airflow_aisec.core.inference`.)

A profile holds, per column, what the drift tests need about the reference distribution:

* numeric columns: type, row / null / ±inf counts, min/max/mean/std, constant flag, the **sorted finite
  values** (``storage="exact"``, up to ``exact_max`` values) or, above that, a **quantile grid**
  (``storage="grid"``: ``grid_size`` order statistics with their exact ranks), decile bin edges and
  counts (PSI, Jensen-Shannon), 1,000 quantiles (Wasserstein), and the value counts of discrete columns;
* categorical columns (strings, booleans, dictionaries): category counts;
* unusable columns (empty, all-null, nested, binary): a status and the reason;
* the build parameters.

Quantile grid and its certified error bound
    With ``storage="grid"`` the grid keeps the distinct reference values ``q_0 < … < q_K`` at evenly
    spaced ranks (``q_0`` = minimum, ``q_K`` = maximum) together with the exact counts
    ``#{x < q_j}`` and ``#{x <= q_j}``. For any ``x`` the reference ECDF is then known exactly at the
    knots and bracketed between them: ``F(q_j) <= F(x) <= F(q_{j+1}^-)``. The bracket width is at most
    ``eps = max_j (#{x < q_{j+1}} - #{x <= q_j}) / n`` (about ``1/K``; stored as ``ks_error_bound``).
    Hence the KS statistic computed from the grid satisfies ``D_lo <= D <= D_hi`` with
    ``D_hi - D_lo <= eps`` (both bounds are reported), and since the p-value is monotone in ``D`` the
    true p-value lies in ``[p(D_hi), p(D_lo)]`` (reported as ``p_value_bounds``). The decision uses
    the midpoint estimate; a feature whose bounds straddle the threshold is flagged ``borderline``.

File format (one file, written atomically)
    ``MAGIC`` line, 8-byte little-endian header length, canonical JSON header, binary payload (raw
    little-endian arrays). The header records each array's offset/dtype/length, the payload's BLAKE3
    hash (``payload_hash``; v1 profiles recorded a SHA-256) and the profile ``digest`` = SHA-256 of the
    canonical header (which includes the payload hash). :func:`load_profile` recomputes both and fails
    closed (:class:`AisecUndecidableError`) on any mismatch, and also when an ``expected_digest`` is
    given and differs. BLAKE3 because verification reads every stored value on every drift test:
    SHA-256 runs at ~0.4 GB/s on CPUs without SHA extensions, BLAKE3 at ~3 GB/s on one core.

Layout: :mod:`.build` (reference data to a :class:`Profile`), :mod:`.grid` (order statistics and
quantiles), :mod:`.model`, :mod:`.storage` (the file: write, open, verify), :mod:`.header` (header
validation).
"""

from __future__ import annotations

from airflow_aisec.core.drift_profile.build import (
    build_profile,
    category_counts,
    classify,
    profile_categorical,
    profile_column,
    profile_counts,
    profile_numeric,
    profile_sorted,
    to_float64,
)
from airflow_aisec.core.drift_profile.grid import (
    N_BINS,
    N_QUANTILES,
    discrete_counts,
    positive_zeros,
    quantile_grid,
    rank_grid,
    sorted_finite,
    sorted_quantiles,
)
from airflow_aisec.core.drift_profile.header import MAX_COUNT, MAX_HEADER_BYTES, validate_header
from airflow_aisec.core.drift_profile.model import (
    DEFAULT_EXACT_MAX,
    DEFAULT_GRID_SIZE,
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_MAX_DISCRETE,
    BuildOptions,
    ColumnProfile,
    Profile,
)
from airflow_aisec.core.drift_profile.storage import (
    FORMAT,
    FORMAT_V1,
    MAGIC,
    PAYLOAD_ALIGN,
    load_profile,
    open_profile,
    save_profile,
)

__all__ = [
    "DEFAULT_EXACT_MAX",
    "DEFAULT_GRID_SIZE",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_MAX_DISCRETE",
    "FORMAT",
    "FORMAT_V1",
    "MAGIC",
    "MAX_COUNT",
    "MAX_HEADER_BYTES",
    "N_BINS",
    "N_QUANTILES",
    "PAYLOAD_ALIGN",
    "BuildOptions",
    "ColumnProfile",
    "Profile",
    "build_profile",
    "category_counts",
    "classify",
    "discrete_counts",
    "load_profile",
    "open_profile",
    "positive_zeros",
    "profile_categorical",
    "profile_column",
    "profile_counts",
    "profile_numeric",
    "profile_sorted",
    "quantile_grid",
    "rank_grid",
    "save_profile",
    "sorted_finite",
    "sorted_quantiles",
    "to_float64",
    "validate_header",
]
