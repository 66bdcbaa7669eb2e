"""Two-sample statistics for drift, computed from a stored reference profile.

Kolmogorov-Smirnov from a sorted reference (:func:`ks_statistic_sorted`)
    ``D = sup_x |F_ref(x) - F_cur(x)|``. Both ECDFs are step functions, so the supremum is reached at
    a data point; scipy evaluates all ``n + m`` points. We show it suffices to evaluate, at each
    current value ``c``, the pairs ``(#R <= c, #C <= c)`` and ``(#R < c, #C < c)`` (the latter is the
    value just before ``c``, i.e. at the preceding data point), so ``D`` needs only ranks of current
    values in the sorted reference: ``O(m log m)`` to sort the window and ``O(m log n)`` to search.
    It is computed with the very same float expression as scipy (``a/n - b/m`` from the same integer
    pair), so ``D`` is bit-identical, and the p-value comes from scipy's own functions with scipy's
    ``method="auto"`` selection (exact when ``max(n, m) <= 10000``, else ``kstwo.sf(D, round(nm/(n+m)))``).

    Pruning: ranks are first taken at ~n/64 reference knots. Between two knots the pairs are bounded
    by the knots' exact ranks, so a block of current values whose upper bound is below the largest
    exact value already seen cannot hold the maximum and is never searched. The result is exact
    (the bound is conservative); the work is ``m log m`` for the sort plus a small fraction of the
    searches. A value's rank in its own sorted array is its position (searched only when tied).

Smirnov p-values (:func:`smirnov_sf`): scipy's O(n) exact sum, evaluated only over the terms that a
curvature bound cannot rule out (proof in the function's docstring), with cephes' log-gamma series.

No scipy import on a drift run's usual path (it costs ~0.2 s of every whole process): the chi-square
survival (:func:`chi2_sf`), relative entropy (:func:`rel_entr`) and integer log-gamma are computed here,
tested against scipy; scipy is imported only for the rarer branches (small exact samples, ``n`` outside
the vectorised range, categorical chi-square tables).

Quantile-grid profiles (:func:`ks_from_grid`) give certified bounds ``D_lo <= D <= D_hi`` (see
:mod:`airflow_aisec.core.drift_profile`).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import numpy as np

from airflow_aisec.utils.lazy import lazy_import

#: scipy's ``MAX_AUTO_N``: exact p-values when both samples are at most this large.
MAX_AUTO_N = 10000


def ks_pvalue(d: float, n_ref: int, n_cur: int) -> tuple[float, float, str]:
    """Two-sided KS p-value exactly as ``scipy.stats.ks_2samp(ref, cur, method="auto")``.

    :returns: ``(statistic, p_value, mode)``; in exact mode scipy replaces ``D`` by ``round(D*lcm)/lcm``
        and so do we.
    """
    mode = "exact" if max(n_ref, n_cur) <= MAX_AUTO_N else "asymp"
    if mode == "exact":  # scipy's exact routine (private; the only way to be identical). Fallback: asymptotic.
        try:  # imported only here: importing scipy.stats costs ~1 s of a whole process
            _attempt_exact_2kssamp = lazy_import("scipy.stats._stats_py")._attempt_exact_2kssamp
        except (ImportError, AttributeError):  # pragma: no cover - future scipy
            mode = "asymp"
    prob = math.nan
    if mode == "exact":
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            success, d, prob = _attempt_exact_2kssamp(n_ref, n_cur, math.gcd(n_ref, n_cur), d, "two-sided")
        if not success:
            mode = "asymp"
    if mode == "asymp":
        m, n = sorted([float(n_ref), float(n_cur)], reverse=True)
        en = m * n / (m + n)
        prob = kstwo_sf(d, float(np.round(en)))
    return float(d), float(np.clip(prob, 0, 1)), mode


#: range of ``n`` where :func:`kstwo_sf` replaces scipy's scalar exact Smirnov loop by a vectorised one.
SMIRNOV_VECTOR_RANGE = (20_000, 1_000_000)


#: Cephes ``lgam`` (what ``scipy.special.gammaln`` evaluates) for ``x >= 13``: Stirling's series with
#: these coefficients (BSD-3-Clause, Copyright 1984-2000 Stephen L. Moshier; scipy's ``xsf`` port).
_LGAM_A = (8.11614167470508450300e-4, -5.95061904284301438324e-4, 7.93650340457716943945e-4,
           -2.77777777730099687205e-3, 8.33333333333331927722e-2)  # fmt: skip
_LS2PI = 0.91893853320467274178  # log(sqrt(2 pi))
_LGAMMA_SMALL = np.array([math.inf] + [math.lgamma(float(k)) for k in range(1, 13)])


def _lgamma_integers(x: np.ndarray) -> np.ndarray:
    """``log Gamma(x)`` at positive integers ``x`` (a float array), vectorised without scipy: below 13 a
    table of C's ``lgamma``, above cephes' series, operation for operation (numpy's ``log`` may differ
    from the C library's by an ulp; tested against ``gammaln`` to a relative 1e-15)."""
    small = x < 13
    out = np.empty_like(x)
    out[small] = _LGAMMA_SMALL[x[small].astype(np.int64)]
    a0, a1, a2, a3, a4 = _LGAM_A
    for part, series in ((~small & (x < 1000.0), "full"), ((x >= 1000.0) & (x <= 1.0e8), "short"), (x > 1.0e8, None)):
        big = x[part]
        q = (big - 0.5) * np.log(big) - big + _LS2PI
        p = 1.0 / (big * big)
        if series == "full":
            q += ((((a0 * p + a1) * p + a2) * p + a3) * p + a4) / big
        elif series == "short":
            q += ((7.9365079365079365079365e-4 * p - 2.7777777777777777777778e-3) * p + 0.0833333333333333333333) / big
        out[part] = q
    return out


@functools.lru_cache(maxsize=2)
def _log_factorials(n: int) -> np.ndarray:
    """``log k!`` for ``k = 0..n``, cached: the columns of one window share ``n``."""
    out = _lgamma_integers(np.arange(1.0, n + 2.0))
    out.flags.writeable = False
    return out


def _log_binomials(n: int, j: np.ndarray) -> np.ndarray:
    """``log C(n, j)`` at the integer points ``j`` (log-gamma, as scipy's ``gammaln`` computes it)."""
    log_fact = _log_factorials(n)
    k = j.astype(np.int64)
    return log_fact[n] - log_fact[k] - log_fact[n - k]


def _smirnov_log_terms(n: int, x: float, j: np.ndarray) -> np.ndarray:
    """Logarithms of the Birnbaum-Tingey terms ``C(n, j) (1 - x - j/n)^(n-j) (x + j/n)^(j-1)`` at ``j``.

    ``j <= n(1 - x) < n``; the term at ``j = n(1 - x)`` (``a = 0``) is zero (log ``-inf``).
    """
    t = j / n
    a = (1.0 - x) - t
    with np.errstate(divide="ignore", invalid="ignore"):
        logt = np.log(a)
        logt *= n - j
        t += x
        np.log(t, out=t)
        t *= j - 1
        logt += t
    logt += _log_binomials(n, j)
    logt[a <= 0] = -np.inf
    return logt


#: terms more than this far (in log) below the largest are left out of the Smirnov sum: with at most
#: ``n <= 1e6`` of them that changes the sum by a relative ``< 1e6 * e^-60 < 1e-20``.
SMIRNOV_LOG_MARGIN = 60.0


def smirnov_sf(n: int, x: float) -> float:
    """One-sided exact Smirnov ``P(D_n^+ >= x)`` by the Birnbaum-Tingey sum, evaluated where it matters.

    ``x * sum_{j=0}^{J} C(n, j) (1 - x - j/n)^(n-j) (x + j/n)^(j-1)`` with ``J = floor(n(1-x))``: the same
    formula as ``scipy.special.smirnov``, which loops over all ``J`` terms in C (~0.5 s at n = 500,000 here).
    Almost all of them are negligible, so we only evaluate the terms that can matter, with a proof:

    Let ``f(j)`` be the log of the term, extended to real ``j`` in ``(0, n(1-x))`` (log-gamma for the
    binomial coefficient). Its second derivative is bounded above:
    ``-psi'(j+1) - psi'(n-j+1) < 0`` (binomial part); with ``u = n(1-x) - j`` the middle factor
    contributes ``(u - nx) / u^2 <= 1 / (4nx)``; the last one ``1/(nx+j) + (nx+1)/(nx+j)^2 <=
    2/(nx) + 1/(nx)^2``. So ``f'' <= K`` everywhere, and on any interval of length ``s`` with finite
    ends ``f`` exceeds its chord by at most ``K s^2 / 8``. We evaluate ``f`` on a coarse grid of stride
    ``s`` (chosen so that ``K s^2 / 8 <= 4``), keep every coarse interval whose upper bound
    ``max(f(ends)) + K s^2 / 8`` comes within :data:`SMIRNOV_LOG_MARGIN` of the largest term, and sum
    every term of the kept intervals exactly. Each term left out is below ``e^-60`` times the largest,
    so the sum changes by a relative ``< 1e-20``; only the summation order differs from a full loop.
    When ``nx`` is small the stride is 1 and every term is evaluated. Measured against
    ``scipy.special.smirnov``: relative difference <= 1.1e-9 for n <= 1,000,000 (log-gamma rounding,
    absolute <= 2e-11 on the p-value), as before the windowing.
    """
    jmax = int(np.floor(n * (1 - x)))
    nx = n * x
    curvature = 2.0 / nx + 1.0 / nx**2 + 1.0 / (4.0 * nx)
    stride = max(1, int(math.sqrt(32.0 / curvature)))
    if stride < 8 or jmax < 64:
        j = np.arange(0, jmax + 1, dtype=np.float64)
    else:
        # coarse grid; j = jmax may be a zero term (log -inf), so jmax - 1 is a grid point of its own
        coarse = np.unique(np.concatenate((np.arange(0, jmax, stride), [jmax - 1, jmax]))).astype(np.float64)
        fc = _smirnov_log_terms(n, x, coarse)
        top = float(fc.max())
        if not math.isfinite(top):
            return 0.0
        width = np.diff(coarse)
        bound = np.maximum(fc[:-1], fc[1:]) + curvature * width**2 / 8
        keep = bound >= top - SMIRNOV_LOG_MARGIN
        # runs of consecutive kept intervals -> one range of j each, ends included
        change = np.diff(np.concatenate(([0], keep.astype(np.int8), [0])))
        first, past = np.flatnonzero(change == 1), np.flatnonzero(change == -1)
        j = _ranges(coarse[first].astype(np.int64), coarse[past].astype(np.int64) + 1).astype(np.float64)
    logt = _smirnov_log_terms(n, x, j)
    top = float(logt.max())
    if not math.isfinite(top):
        return 0.0
    return float(x * math.exp(top) * np.exp(logt - top).sum())


def kstwo_sf(d: float, n: float) -> float:
    """``scipy.stats.kstwo.sf(d, n)`` with scipy's own branch selection (``_kolmogn``, cdf=False).

    Only the branch that scipy evaluates with the O(n) scalar exact Smirnov sum
    (``2.2 <= n d^2 < 370``, ``d < 0.5``, ``1 < n d < n - 1``) is computed here, by :func:`smirnov_sf`,
    and only for ``n`` in :data:`SMIRNOV_VECTOR_RANGE` (above it scipy switches to an asymptotic
    formula itself, below it scipy is fast). Every other case calls scipy.
    """
    n_int = int(n)
    lo, hi = SMIRNOV_VECTOR_RANGE
    if n_int == n and lo <= n_int <= hi and 0.0 < d < 0.5:
        t = n_int * d
        if 1.0 < t < n_int - 1 and 2.2 <= t * d < 370.0:
            return float(np.clip(2 * smirnov_sf(n_int, d), 0.0, 1.0))
    if n_int == n and n_int > PELZ_GOOD_MIN_N and 0.0 < d < 0.5 and 1.0 < n_int * d < n_int - 1:
        # scipy's own branches for this range (``_kolmogn``, cdf=False), without importing scipy.stats
        nxsquared = n_int * d * d
        if nxsquared >= 370.0:
            return 0.0
        if nxsquared >= 2.2:
            smirnov = lazy_import("scipy.special").smirnov

            return float(np.clip(2 * smirnov(n_int, d), 0.0, 1.0))
        return float(np.clip(1.0 - _pelz_good_cdf(n_int, d), 0.0, 1.0))
    distributions = lazy_import("scipy.stats").distributions

    return float(distributions.kstwo.sf(d, n))


#: above this ``n`` scipy's ``kstwo`` uses the Pelz-Good approximation below ``n d^2 = 2.2`` (no Durbin matrix).
PELZ_GOOD_MIN_N = 100_000
_PI_SQUARED, _PI_FOUR, _PI_SIX = np.pi**2, np.pi**4, np.pi**6
_SQRT2PI, _SQRT3 = np.sqrt(2 * np.pi), np.sqrt(3)


def _pelz_good_cdf(n: int, x: float) -> float:  # long: a verbatim port, kept whole to stay bit-identical
    """Pelz-Good approximation of ``P(D_n <= x)``: scipy's ``scipy.stats._ksstats._kolmogn_PelzGood``
    (BSD-3-Clause, Copyright (c) 2001-2002 Enthought, Inc. and 2003-2024 SciPy Developers), same
    operations in the same order, so the same float result; tested against ``kstwo.sf`` to 1e-12.
    """
    z = np.sqrt(n) * x
    zsquared, zthree, zfour, zsix = z**2, z**3, z**4, z**6
    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < -708:  # z ~ 0.0417
        return 0.0
    q = np.exp(qlog)
    k1a = -zsquared
    k1b = _PI_SQUARED / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16
    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z**8
    k0to3 = np.zeros(4)
    maxk = int(np.ceil(16 * z / np.pi))
    for k in range(maxk, 0, -1):  # Horner scheme over the odd integers
        m = 2 * k - 1
        msquared, mfour, msix = m**2, m**4, m**6
        qpower = np.power(q, 8 * k)
        coeffs = np.array(
            [
                1.0,
                k1a + k1b * msquared,
                k2a + k2b * msquared + k2c * mfour,
                k3a + k3b * msquared + k3c * mfour + k3d * msix,
            ]
        )
        k0to3 *= qpower
        k0to3 += coeffs
    k0to3 *= q
    k0to3 *= _SQRT2PI
    k0to3 /= np.array([z, 6 * zfour, 72 * z**7, 6480 * z**10])
    q = np.exp(-_PI_SQUARED / 2 / zsquared)
    ks = np.arange(maxk, 0, -1)
    ksquared = ks**2
    sqrt3z = _SQRT3 * z
    kspi = np.pi * ks
    qpwers = q**ksquared
    k2extra = np.sum(ksquared * qpwers)
    k2extra *= _PI_SQUARED * _SQRT2PI / (-36 * zthree)
    k0to3[2] += k2extra
    k3extra = np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwers)
    k3extra *= _PI_SQUARED * _SQRT2PI / (216 * zsix)
    k0to3[3] += k3extra
    powers_of_n = np.power(n * 1.0, np.arange(len(k0to3)) / 2.0)
    k0to3 /= powers_of_n
    return float(sum(k0to3))


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, e)`` for each pair (vectorised)."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return offsets + np.arange(total)


def _ranks_at(sorted_arr: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values, #{a < value}, #{a <= value})`` at positions ``idx`` of a sorted array ``a``.

    Positions give the ranks directly (``i`` and ``i + 1``) unless the value is tied with a neighbour;
    only tied values are searched.
    """
    size = sorted_arr.size
    vals = sorted_arr[idx]
    lt = idx.astype(np.int64, copy=True)
    le = lt + 1
    tied_lo = (lt > 0) & (sorted_arr[np.maximum(lt - 1, 0)] == vals)
    tied_hi = (le < size) & (sorted_arr[np.minimum(le, size - 1)] == vals)
    if tied_lo.any():
        lt[tied_lo] = np.searchsorted(sorted_arr, vals[tied_lo], "left")
    if tied_hi.any():
        le[tied_hi] = np.searchsorted(sorted_arr, vals[tied_hi], "right")
    return vals, lt, le


def _ranks_of(sorted_arr: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(#{a < v}, #{a <= v})`` for each ``v``: one search; a second only for values present in ``a``."""
    size = sorted_arr.size
    lt = np.searchsorted(sorted_arr, vals, "left")
    le = lt.copy()
    present = (lt < size) & (sorted_arr[np.minimum(lt, size - 1)] == vals)
    if present.any():
        le[present] = np.searchsorted(sorted_arr, vals[present], "right")
    return lt, le


def ks_statistic_from_counts(
    r_lt: np.ndarray, r_le: np.ndarray, n: int, c_lt: np.ndarray, c_le: np.ndarray, m: int
) -> float:
    """Exact two-sided KS statistic from counts at the **distinct reference values** ``u_i``.

    ``r_lt`` / ``r_le``: ``#R < u_i`` / ``#R <= u_i``; ``c_lt`` / ``c_le``: the same counts of the current
    sample. Between two consecutive reference values ``F_ref`` is constant and ``F_cur`` only grows, so
    over the current values there ``F_ref - F_cur`` is largest at the lower reference value itself and
    ``F_cur - F_ref`` largest just before the upper one (the pair ``(#R < u_{i+1}, #C < u_{i+1})``, which
    is the ECDFs' value at the last data point below ``u_{i+1}``); below the smallest reference value
    ``F_ref = 0`` and above the largest ``F_ref = 1`` add nothing. So ``D`` is the largest of these
    ``2d`` differences, each the same float expression scipy evaluates at that data point: the
    statistic is bit-identical to ``scipy.stats.ks_2samp``. The counts are additive over partitions
    of the current window.
    """
    at = np.concatenate((r_le / n - c_le / m, r_lt / n - c_lt / m))
    return max(float(at.max()), float(-at.min()), 0.0)


def ks_statistic_sorted(ref: np.ndarray, cur: np.ndarray) -> float:
    """Exact two-sided KS statistic of two **sorted**, non-empty, NaN-free arrays (scipy-identical)."""
    n, m = ref.size, cur.size
    n_knots = min(n, max(64, n // 64))
    pos = (np.arange(n_knots, dtype=np.int64) * (n - 1)) // max(n_knots - 1, 1)
    if pos.size > 1:  # distinct knot values (ref is sorted): first position of each
        at = ref[pos]
        pos = pos[np.concatenate(([True], at[1:] != at[:-1]))]
    knots, r_lt, r_le = _ranks_at(ref, pos)
    c_lt, c_le = _ranks_of(cur, knots)
    at_knots = np.concatenate((r_le / n - c_le / m, r_lt / n - c_lt / m))
    d = max(float(at_knots.max()), float(-at_knots.min()), 0.0)
    # current values strictly between knot j and j+1 are cur[c_le[j]:c_lt[j+1]]
    starts, stops = c_le[:-1], c_lt[1:]
    upper = np.maximum(r_lt[1:] / n - starts / m, stops / m - r_le[:-1] / n)
    cand = (stops > starts) & (upper >= d - 1e-12)
    # below the minimum / above the maximum of the reference the ranks are exact: values there are
    # dominated by the knot evaluations (see module docstring), nothing to add.
    idx = _ranges(starts[cand], stops[cand])
    if idx.size:
        v, cv_lt, cv_le = _ranks_at(cur, idx)
        rv_lt, rv_le = _ranks_of(ref, v)
        a_le = rv_le / n - cv_le / m
        a_lt = rv_lt / n - cv_lt / m
        d = max(d, float(a_le.max()), float(-a_le.min()), float(a_lt.max()), float(-a_lt.min()))
    return d


def ks_from_grid(
    knots: np.ndarray, lt: np.ndarray, le: np.ndarray, n: int, cur: np.ndarray
) -> tuple[float, float, float]:
    """KS statistic bounds from a quantile grid: ``(D_estimate, D_lo, D_hi)`` with ``D_lo <= D <= D_hi``.

    ``cur`` is sorted. At a knot both ECDFs are known exactly. Strictly between knots ``j`` and ``j+1``
    the reference count lies in ``[le_j, lt_{j+1}]`` while the current count only grows, so over the
    current values in that gap the bounds are extreme at its first value (``#C < c = #C <= q_j``) and
    its last (``#C <= c = #C < q_{j+1}``): the bounds need ``O(K log m)`` work, not ``O(m)``.
    Values below the minimum / above the maximum have exact reference counts and are dominated by the
    knot evaluations.
    """
    c_lt = np.searchsorted(cur, knots, "left")
    c_le = np.searchsorted(cur, knots, "right")
    return ks_from_grid_counts(lt, le, n, c_lt, c_le, cur.size)


def ks_from_grid_counts(
    lt: np.ndarray, le: np.ndarray, n: int, c_lt: np.ndarray, c_le: np.ndarray, m: int
) -> tuple[float, float, float]:
    """:func:`ks_from_grid` given the current counts ``#C < knot`` / ``#C <= knot`` (additive over partitions)."""
    at_knots = float(np.maximum(np.abs(le / n - c_le / m), np.abs(lt / n - c_lt / m)).max())
    d_lo = d_hi = d_mid = max(at_knots, 0.0)
    gap = c_lt[1:] > c_le[:-1]  # gaps holding current values
    if gap.any():
        first, last = c_le[:-1][gap] / m, c_lt[1:][gap] / m
        r_lo, r_hi = le[:-1][gap] / n, lt[1:][gap] / n
        d_hi = max(d_hi, float(np.maximum(r_hi - first, last - r_lo).max()))
        d_lo = max(d_lo, float(np.maximum(r_lo - first, last - r_hi).max()))
        mid = (r_lo + r_hi) / 2
        d_mid = max(d_mid, float(np.maximum(np.abs(mid - first), np.abs(last - mid)).max()))
    return min(max(d_mid, d_lo), d_hi), d_lo, d_hi


def psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Population stability index with a sample-size-aware p-value.

    ``PSI = sum (c_i - r_i) ln(c_i / r_i)`` on proportions smoothed by +0.5 per bin. Under H0,
    ``PSI / (1/n + 1/m)`` is approximately chi-square with ``B - 1`` degrees of freedom (Yurdakul 2018),
    which makes a fixed PSI cut-off size-aware.
    """
    n, m = float(ref_counts.sum()), float(cur_counts.sum())
    bins = ref_counts.size
    if bins < 2 or n == 0 or m == 0:
        return 0.0, 1.0
    r = (ref_counts + 0.5) / (n + 0.5 * bins)
    c = (cur_counts + 0.5) / (m + 0.5 * bins)
    psi = float(np.sum((c - r) * np.log(c / r)))
    return psi, chi2_sf(bins - 1, psi / (1.0 / n + 1.0 / m))


def chi2_sf(df: int, x: float) -> float:
    """``P(X >= x)`` for ``X`` chi-square with ``df`` (a positive integer) degrees of freedom.

    What ``scipy.special.chdtrc(df, x)`` computes, by the closed forms of the regularised upper
    incomplete gamma function ``Q(df/2, x/2)`` at integer and half-integer arguments, so a drift run
    needs no scipy import (~0.2 s of every whole process):

    * ``df`` even, ``a = df/2``: ``Q(a, y) = e^-y sum_{i<a} y^i / i!``;
    * ``df`` odd, ``a = k + 1/2``: ``Q(a, y) = erfc(sqrt(y)) + e^-y sum_{i=1..k} y^(i-1/2) / Gamma(i+1/2)``.

    Every term is positive (no cancellation) and summed in log space (no underflow of ``e^-y``), so the
    result is accurate to a relative few ``1e-15`` per term; tested against scipy to ``1e-12``.
    """
    if df < 1 or df != int(df):
        raise ValueError(f"degrees of freedom must be a positive integer, got {df!r}")
    if math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    y = x / 2.0
    log_y = math.log(y)
    if df % 2 == 0:
        head = 0.0
        logs = [i * log_y - math.lgamma(i + 1.0) for i in range(df // 2)]
    else:
        head = math.erfc(math.sqrt(y))
        logs = [(i - 0.5) * log_y - math.lgamma(i + 0.5) for i in range(1, (df - 1) // 2 + 1)]
    if not logs:
        return min(1.0, head)
    top = max(logs)
    total = math.fsum(math.exp(t - top) for t in logs)
    return min(1.0, head + math.exp(top - y + math.log(total)))


def rel_entr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise relative entropy, ``scipy.special.rel_entr``'s definition: ``x log(x/y)`` for
    ``x, y > 0``; ``0`` for ``x = 0, y >= 0``; ``inf`` otherwise; NaN in, NaN out."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = x * np.log(x / y)
    out = np.where((x > 0) & (y > 0), value, np.where((x == 0) & (y >= 0), 0.0, np.inf))
    return np.where(np.isnan(x) | np.isnan(y), np.nan, out)


def js_distance(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two histograms."""
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return 0.0
    # scipy.spatial.distance.jensenshannon(p, q, base=2), step by step (importing scipy.spatial costs ~0.3 s)
    p = ref_counts.astype(float)
    q = cur_counts.astype(float)
    p = p / np.sum(p, axis=0, keepdims=True)
    q = q / np.sum(q, axis=0, keepdims=True)
    m = (p + q) / 2.0
    js = np.sum(rel_entr(p, m), axis=0, keepdims=False) + np.sum(rel_entr(q, m), axis=0, keepdims=False)
    js /= np.log(2)
    value = float(np.sqrt(js / 2.0))
    return 0.0 if math.isnan(value) else value


def chi2_from_counts(ref: dict[str, int], cur: dict[str, int]) -> dict[str, Any]:
    """Chi-square test of homogeneity on category counts, plus PSI and JS on the same categories."""
    chi2_contingency = lazy_import("scipy.stats").chi2_contingency

    cats = sorted(k for k in set(ref) | set(cur) if ref.get(k, 0) + cur.get(k, 0) > 0)
    r = np.array([ref.get(c, 0) for c in cats], dtype=float)
    c = np.array([cur.get(k, 0) for k in cats], dtype=float)
    new = [k for k in cats if k not in ref]
    if len(cats) < 2:
        stat, p = 0.0, 1.0
    else:
        res = chi2_contingency(np.vstack([r, c]), correction=False)
        stat, p = float(res.statistic), float(res.pvalue)
    psi, psi_p = psi_from_counts(r, c)
    return {"statistic": stat, "p_value": p, "psi": psi, "psi_p_value": psi_p, "js": js_distance(r, c), "new": new}


def wasserstein_normalised(ref_quantiles: np.ndarray, cur_sorted: np.ndarray, scale: float) -> float | None:
    """Wasserstein-1 distance estimated on 1,000 quantile midpoints, divided by the reference std."""
    if cur_sorted.size == 0 or not scale or not math.isfinite(scale):
        return None
    k = ref_quantiles.size
    u = (np.arange(k) + 0.5) / k
    q = cur_sorted[np.minimum((u * cur_sorted.size).astype(np.int64), cur_sorted.size - 1)]
    return float(np.mean(np.abs(q - ref_quantiles)) / scale)


def two_proportion_pvalue(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of a two-proportion z-test (1.0 when undefined)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    # 2 * norm.sf(z) = erfc(z / sqrt(2)) (scipy.stats.norm.sf is ndtr(-z) = erfc(z / sqrt 2) / 2)
    return float(math.erfc(abs(x1 / n1 - x2 / n2) / se / math.sqrt(2)))


def adjust_pvalues(pvalues: list[float], method: str) -> list[float]:
    """Benjamini-Hochberg (``bh``), Bonferroni or no (``none``) multiple-testing correction."""
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0 or method == "none":
        return p.tolist()
    if method == "bonferroni":
        return np.minimum(p * p.size, 1.0).tolist()
    if method == "bh":
        order = np.argsort(p)
        ranked = p[order] * p.size / np.arange(1, p.size + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        out = np.empty_like(p)
        out[order] = np.minimum(ranked, 1.0)
        return out.tolist()
    raise ValueError(f"unknown correction {method!r}")
