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
