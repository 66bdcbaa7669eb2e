"""Order-statistic math of a drift reference profile: sorting, value counts, quantiles of sorted data."""

from __future__ import annotations

import math

import numpy as np

N_QUANTILES = 1000
N_BINS = 10


def sorted_finite(values: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """Sort a float64 column once: ``(sorted finite values, n_nan, n_posinf, n_neginf)``.

    numpy sorts ``-inf`` first and NaN after ``+inf``, so the finite values are one contiguous slice of
    the sorted copy, found with two searches: no separate ``isfinite`` pass, no boolean gather.
    """
    ordered = np.sort(values)
    if ordered.size == 0 or (math.isfinite(ordered[0]) and math.isfinite(ordered[-1])):
        return ordered, 0, 0, 0
    lo = int(np.searchsorted(ordered, -np.inf, "right"))
    hi = int(np.searchsorted(ordered, np.inf, "left"))
    top = int(np.searchsorted(ordered, np.inf, "right"))
    return ordered[lo:hi], ordered.size - top, top - hi, lo


def positive_zeros(sorted_values: np.ndarray) -> np.ndarray:
    """Store ``-0.0`` as ``0.0`` in a sorted, writable array (in place; returns it).

    They compare equal, so which one a sort puts first depends on the input order, and
    ``repr`` tells them apart (value counts): normalised, the result depends on the multiset of values
    alone (a partitioned build or window gives the very same profile or counts).
    """
    lo, hi = int(np.searchsorted(sorted_values, 0.0, "left")), int(np.searchsorted(sorted_values, 0.0, "right"))
    if hi > lo:
        sorted_values[lo:hi] = 0.0
    return sorted_values


def discrete_counts(sorted_values: np.ndarray, limit: int) -> dict[str, int] | None:
    """Value counts of a sorted array when it has at most ``limit`` distinct values (else ``None``)."""
    if sorted_values.size == 0:
        return {}
    differs = sorted_values[1:] != sorted_values[:-1]
    if int(np.count_nonzero(differs)) + 1 > limit:
        return None
    change = np.flatnonzero(differs) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [sorted_values.size]))
    return {repr(float(sorted_values[s])): int(e - s) for s, e in zip(starts, ends, strict=True)}


def sorted_quantiles(sorted_values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(a, q)`` (linear method) of an already sorted array, without copying it."""
    pos = q * (sorted_values.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, sorted_values.size - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def quantile_grid(sorted_values: np.ndarray) -> np.ndarray:
    """Quantiles at the ``N_QUANTILES`` midpoints ``(k + 0.5) / N`` (lower order statistic)."""
    n = sorted_values.size
    u = (np.arange(N_QUANTILES) + 0.5) / N_QUANTILES
    return np.ascontiguousarray(sorted_values[np.minimum((u * n).astype(np.int64), n - 1)], dtype=np.float64)


def rank_grid(sorted_values: np.ndarray, grid_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The quantile grid of a sorted array: ``(knots, lt, le, ks_error_bound)``.

    ``knots``: the distinct values at ``grid_size`` evenly spaced ranks (minimum and maximum
    included); ``lt`` / ``le``: the exact counts of values ``<`` / ``<=`` each knot; the bound is the
    widest gap ``max_j (lt[j+1] - le[j]) / n``, within which the ECDF is only bracketed (see the
    package docstring).
    """
    n = sorted_values.size
    idx = np.unique(np.linspace(0, n - 1, grid_size).round().astype(np.int64))
    knots = np.unique(sorted_values[idx])
    lt = np.searchsorted(sorted_values, knots, "left").astype(np.int64)
    le = np.searchsorted(sorted_values, knots, "right").astype(np.int64)
    bound = float((lt[1:] - le[:-1]).max() / n) if knots.size > 1 else 0.0
    return knots, lt, le, bound
