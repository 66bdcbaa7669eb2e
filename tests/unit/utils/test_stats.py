from __future__ import annotations

import numpy as np
import pytest

from airflow_aisec.utils.stats import percentile


@pytest.mark.parametrize("values", [[5.0], [1.0, 2.0], [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]])
@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_percentile_matches_numpy_linear(values, q):
    assert percentile(sorted(values), q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_none():
    assert percentile([], 95) is None


def test_robust_range_is_q1_q3_widened_by_k_iqr():
    from airflow_aisec.utils.stats import robust_range

    assert robust_range(1.0, 3.0, 1.5) == (-2.0, 6.0)
    assert robust_range(2.0, 2.0, 3.0) == (2.0, 2.0)  # no observed range: a constant stays a point


def test_robust_range_falls_back_on_the_observed_range_when_iqr_is_zero():
    from airflow_aisec.utils.stats import robust_range

    assert robust_range(5.0, 5.0, 2.0, observed=(4.0, 7.0), median=5.0) == (-2.0, 13.0)
    low, high = robust_range(5.0, 5.0, 2.0, observed=(5.0, 5.0), median=5.0)
    assert low < 5.0 < high and high - low == pytest.approx(4 * 5.0 * 1e-6)
    low, high = robust_range(0.0, 0.0, 1.0, observed=(0.0, 0.0))
    assert (low, high) == (-1e-9, 1e-9)
    assert robust_range(1.0, 3.0, 1.0, observed=(-100.0, 100.0)) == (-1.0, 5.0)  # IQR > 0: observed unused
