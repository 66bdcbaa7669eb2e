"""Small pure-Python statistics shared by core modules (no numpy needed)."""

from __future__ import annotations

import math


def percentile(sorted_vals: list[float], q: float) -> float | None:
    """The ``q``-th percentile of already sorted values, linear interpolation (numpy's default); ``None`` when empty."""
    if not sorted_vals:
        return None
    pos = (len(sorted_vals) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def robust_range(
    q1: float, q3: float, k: float, *, observed: tuple[float, float] | None = None, median: float = 0.0
) -> tuple[float, float]:
    """The robust range ``[Q1 - k·IQR, Q3 + k·IQR]`` (the one builder of it).

    :param observed: ``(min, max)`` of the data: when given and the IQR is 0 (a constant-ish feature), the
        range is the observed one widened by ``k`` times its spread (at least ``|median|·1e-6`` and 1e-9),
        so that values at the observed extremes stay inside. Without it a zero IQR gives ``[Q1, Q3]``.
    :param median: the data's median (sets the smallest spread of that fallback).
    """
    iqr = q3 - q1
    if iqr <= 0 and observed is not None:
        lo, hi = observed
        spread = max(hi - lo, abs(median) * 1e-6, 1e-9)
        return lo - k * spread, hi + k * spread
    return q1 - k * iqr, q3 + k * iqr
