"""The vectorised studentized range tail equals scipy's adaptive integration."""

import numpy as np
import pytest
from scipy.stats import studentized_range

from advmri.stats.ptukey import studentized_range_sf


@pytest.mark.parametrize("k", [2, 6, 18, 36])
@pytest.mark.parametrize("df", [3.0, 12.5, 121.0, 4000.0, 150000.0])
def test_studentized_range_sf_matches_scipy(k, df):
    q = np.array([0.3, 1.5, 3.0, 4.5, 6.0])
    np.testing.assert_allclose(
        studentized_range_sf(q, k, df), studentized_range.sf(q, k, df), atol=1e-8
    )


def test_one_df_per_q_is_the_same_as_one_call_per_df():
    q = np.array([2.0, 3.0, 4.0])
    df = np.array([20.0, 200.0, 2000.0])
    together = studentized_range_sf(q, 18, df)
    apart = [studentized_range_sf(q[i : i + 1], 18, df[i])[0] for i in range(3)]
    np.testing.assert_allclose(together, apart, rtol=0, atol=1e-15)


def test_nan_input_gives_nan_and_q_zero_gives_one():
    out = studentized_range_sf(np.array([np.nan, 0.0]), 5, 30.0)
    assert np.isnan(out[0]) and out[1] == pytest.approx(1.0)
