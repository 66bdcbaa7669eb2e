"""KS from a sorted reference vs scipy.stats.ks_2samp; grid bounds; corrections; PSI/JS/chi2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from airflow_aisec.core import stats
from airflow_aisec.core.drift_profile import BuildOptions, profile_numeric


def _sample(rng: np.random.Generator, kind: int, size: int, shift: float) -> np.ndarray:
    if kind == 0:
        return rng.normal(shift, 1, size)
    if kind == 1:  # heavy ties
        return rng.integers(0, 4, size).astype(float) + (shift > 0.2)
    if kind == 2:  # heavy tails
        return rng.standard_cauchy(size) + shift
    if kind == 3:  # rounded: moderate ties
        return np.round(rng.standard_t(2, size) + shift, 1)
    return rng.lognormal(shift, 2, size)


def test_ks_matches_scipy_on_1200_random_cases():
    rng = np.random.default_rng(20261127)
    checked = modes = 0
    for case in range(1200):
        if case % 25 == 0:  # asymptotic regime: one sample above scipy's MAX_AUTO_N
            n, m = int(rng.integers(10_001, 30_000)), int(rng.integers(1, 3_000))
        else:
            n, m = int(rng.integers(1, 120)), int(rng.integers(1, 120))
            if case % 7 == 0:
                m = n  # n == m branch of scipy's exact routine
        kind = case % 5
        a = _sample(rng, kind, n, 0.0)
        b = _sample(rng, kind, m, float(rng.choice([0.0, 0.1, 0.5])))
        if case % 2:
            a, b = b[: max(1, b.size)], a  # swap roles: reference may be the smaller sample
            n, m = a.size, b.size
        expected = sps.ks_2samp(a, b, method="auto")
        d = stats.ks_statistic_sorted(np.sort(a), np.sort(b))
        statistic, pvalue, mode = stats.ks_pvalue(d, a.size, b.size)
        assert statistic == pytest.approx(expected.statistic, abs=1e-12), (case, n, m, kind)
        assert pvalue == pytest.approx(expected.pvalue, abs=1e-9), (case, n, m, kind)
        checked += 1
        modes += mode == "asymp"
    assert checked == 1200
    assert modes >= 40  # both regimes exercised


def test_ks_statistic_is_bit_identical_on_a_large_sample():
    rng = np.random.default_rng(3)
    ref, cur = np.sort(rng.normal(size=200_000)), np.sort(rng.normal(0.01, 1, 150_000))
    assert stats.ks_statistic_sorted(ref, cur) == sps.ks_2samp(ref, cur).statistic


def test_grid_bounds_contain_the_exact_statistic_within_the_certified_error():
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.normal(size=50_000), np.round(rng.normal(size=20_000), 2)])
    col = profile_numeric("x", values, "float", BuildOptions(exact_max=1_000, grid_size=512))
    assert col.meta["storage"] == "grid"
    eps = col.meta["ks_error_bound"]
    assert 0 < eps < 4 / 512
    for shift in (0.0, 0.01, 0.2):
        cur = np.sort(rng.normal(shift, 1, 20_000))
        exact = sps.ks_2samp(values, cur).statistic
        est, lo, hi = stats.ks_from_grid(col.arrays["knots"], col.arrays["lt"], col.arrays["le"], values.size, cur)
        assert lo <= exact + 1e-12
        assert exact <= hi + 1e-12
        assert lo <= est <= hi
        assert hi - lo <= eps + 1e-12


def test_p_value_corrections():
    p = [0.01, 0.04, 0.03, 0.5]
    assert stats.adjust_pvalues(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 1.0])
    assert stats.adjust_pvalues(p, "bh") == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert stats.adjust_pvalues(p, "none") == p
    with pytest.raises(ValueError, match="unknown correction"):
        stats.adjust_pvalues(p, "holm")


def test_psi_js_and_chi2_with_new_categories():
    ref = np.array([100, 100, 100, 100], dtype=float)
    psi, p = stats.psi_from_counts(ref, ref.copy())
    assert psi == pytest.approx(0.0)
    assert p == pytest.approx(1.0)
    psi2, p2 = stats.psi_from_counts(ref, np.array([10, 100, 100, 190], dtype=float))
    assert psi2 > 0.2
    assert p2 < 1e-6
    assert stats.js_distance(ref, ref) == pytest.approx(0.0)
    assert stats.js_distance(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)
    out = stats.chi2_from_counts({"a": 50, "b": 50}, {"a": 40, "b": 40, "zz": 20})
    assert out["new"] == ["zz"]
    assert out["p_value"] < 1e-3
    single = stats.chi2_from_counts({"a": 5}, {"a": 7})
    assert (single["statistic"], single["p_value"]) == (0.0, 1.0)


def test_two_proportion_pvalue_edge_cases():
    assert stats.two_proportion_pvalue(0, 100, 0, 100) == 1.0
    assert stats.two_proportion_pvalue(0, 0, 5, 10) == 1.0
    assert stats.two_proportion_pvalue(0, 1000, 300, 1000) < 1e-10


@pytest.mark.parametrize("n", [20_000, 50_000])
def test_vectorised_smirnov_branch_matches_scipy_kstwo(n):
    from scipy.stats import distributions

    for nx2 in (2.2, 3.0, 8.0, 40.0, 150.0, 369.0):
        d = float(np.sqrt(nx2 / n))
        assert stats.kstwo_sf(d, float(n)) == pytest.approx(float(distributions.kstwo.sf(d, n)), abs=1e-12, rel=1e-9)
    for d in (0.001, 0.5, 0.9):  # other branches are scipy's own
        assert stats.kstwo_sf(d, float(n)) == float(distributions.kstwo.sf(d, n))


def test_windowed_smirnov_sum_matches_scipy_and_the_full_sum(monkeypatch):
    """The Smirnov sum skips provably negligible terms; the result equals scipy's full O(n) loop."""
    import math

    from scipy.special import smirnov

    evaluated = []
    full_terms = stats._smirnov_log_terms

    def counting(n, x, j):
        evaluated.append(j.size)
        return full_terms(n, x, j)

    monkeypatch.setattr(stats, "_smirnov_log_terms", counting)
    for n, nx2 in ((500_000, 216.0), (200_000, 30.0), (20_000, 2.3)):
        x = math.sqrt(nx2 / n)
        jmax = int(n * (1 - x))
        evaluated.clear()
        ours = stats.smirnov_sf(n, x)
        assert ours == pytest.approx(float(smirnov(n, x)), rel=2e-9)
        j = np.arange(0, jmax + 1, dtype=np.float64)
        logt = full_terms(n, x, j)
        every_term = x * math.exp(logt.max()) * math.fsum(np.exp(logt - logt.max()))
        assert ours == pytest.approx(every_term, rel=1e-13)
        if nx2 > 10:
            assert sum(evaluated) < 0.9 * jmax  # the window really left terms out


def test_kstwo_sf_without_scipy_stats_is_scipy_identical_above_pelz_good_min_n():
    """Large n, n d^2 < 2.2: the Pelz-Good port gives scipy's float; n d^2 >= 2.2: scipy.special.smirnov."""
    from scipy.stats import kstwo

    from airflow_aisec.core.stats import PELZ_GOOD_MIN_N, kstwo_sf

    for n in (PELZ_GOOD_MIN_N + 1, 500_000, 3_000_000):
        for d in np.geomspace(1e-5, 0.2, 25):
            if n <= 1_000_000 and n * d * d >= 2.2:  # the windowed Smirnov sum (its own test, 2e-11)
                continue
            assert kstwo_sf(float(d), float(n)) == float(kstwo.sf(d, n))


def test_a_large_window_ks_test_does_not_import_scipy_stats():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from airflow_aisec.core.stats import ks_pvalue, psi_from_counts, two_proportion_pvalue, js_distance\n"
        "ks_pvalue(0.001, 1_000_000, 1_000_000); psi_from_counts(np.ones(10), np.ones(10))\n"
        "two_proportion_pvalue(1, 10, 2, 10); js_distance(np.ones(3), np.arange(3.0))\n"
        "print('scipy.stats' in sys.modules, 'scipy.special' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"  # importing scipy.special alone costs ~0.2 s of a process


def test_chi2_sf_matches_scipy_chdtrc():
    from scipy.special import chdtrc

    from airflow_aisec.core.stats import chi2_sf

    worst = 0.0
    for df in [*range(1, 41), 63, 99, 100, 255, 999]:
        for x in [0.0, 1e-300, 1e-12, 1e-3, *np.geomspace(0.01, 5000, 60).tolist(), float(df), df + 0.5]:
            ours, theirs = chi2_sf(df, x), float(chdtrc(df, x))
            if theirs > 1e-290:  # denormals aside
                worst = max(worst, abs(ours - theirs) / theirs)
            else:
                assert ours < 1e-280
    assert worst < 1e-12, worst
    assert chi2_sf(3, math.inf) == 0.0
    assert chi2_sf(3, -1.0) == 1.0
    assert math.isnan(chi2_sf(3, math.nan))
    with pytest.raises(ValueError, match="positive integer"):
        chi2_sf(0, 1.0)


def test_integer_log_gamma_matches_scipy_gammaln():
    from scipy.special import gammaln

    x = np.concatenate([np.arange(1.0, 3000.0), np.geomspace(3000, 2e9, 500).round()])
    np.testing.assert_allclose(stats._lgamma_integers(x), gammaln(x), rtol=1e-15, atol=1e-15)


def test_rel_entr_matches_scipy_including_edges():
    from scipy.special import rel_entr as scipy_rel_entr

    from airflow_aisec.core.stats import rel_entr

    x = np.array([0.0, 0.0, 0.0, 0.5, 0.5, 0.5, -1.0, 1e-300, 3.0, np.nan, 1.0, np.inf])
    y = np.array([0.0, 1.0, -1.0, 0.25, 0.0, -1.0, 1.0, 1.0, 1e-300, 1.0, np.nan, 1.0])
    np.testing.assert_array_equal(rel_entr(x, y), scipy_rel_entr(x, y))
    rng = np.random.default_rng(7)
    p, q = rng.random(1000), rng.random(1000)
    # numpy's vectorised log and the C library's differ by an ulp: near x = y that is a relative 1e-12
    np.testing.assert_allclose(rel_entr(p, q), scipy_rel_entr(p, q), rtol=1e-10, atol=1e-15)
