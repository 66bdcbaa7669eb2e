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
