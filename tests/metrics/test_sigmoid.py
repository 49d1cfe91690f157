"""The batched sigmoid fitter against exact profiles and scipy's curve_fit."""

import numpy as np
import pytest
from scipy.optimize import curve_fit

from advmri.errors import DataError
from advmri.metrics.sigmoid import (
    FIT_AT_BOUND,
    FIT_NOT_CONVERGED,
    FLAT_PROFILE,
    fit_sigmoids,
    initial_guess,
    sigmoid,
)

from fabricate import PROFILE_X as X
from fabricate import well_posed_profiles


@pytest.mark.parametrize("s", [0.5, 1.0, 1.7, 3.0, -1.2])
@pytest.mark.parametrize("a0", [-0.8, 0.0, 0.37])
def test_fit_recovers_growth_rate_of_exact_logistic_to_1e6(s, a0):
    profile = sigmoid(X, a0, 0.15, 0.6, s)
    fit = fit_sigmoids(X, profile[None, :])
    assert fit.ok[0]
    assert fit.slope[0] == pytest.approx(abs(s), rel=1e-6)
    # the curve itself is recovered whichever sign convention the fit lands on
    np.testing.assert_allclose(sigmoid(X, *fit.params[0]), profile, atol=1e-9)


def test_batched_fit_equals_curve_fit_profile_by_profile():
    profiles = well_posed_profiles(300)
    fit = fit_sigmoids(X, profiles)
    assert fit.ok.all()
    start = initial_guess(X, profiles)
    for i in range(len(profiles)):
        ref, _ = curve_fit(
            sigmoid, X, profiles[i], p0=start[i], ftol=1e-14, xtol=1e-14, gtol=1e-14, maxfev=20000
        )
        assert abs(fit.params[i, 3]) == pytest.approx(abs(ref[3]), rel=1e-6)
        np.testing.assert_allclose(sigmoid(X, *fit.params[i]), sigmoid(X, *ref), atol=1e-7)


def test_fit_of_a_profile_does_not_depend_on_its_batch():
    profiles = well_posed_profiles(200, seed=3)
    together = fit_sigmoids(X, profiles)
    alone = fit_sigmoids(X, profiles[17:18])
    np.testing.assert_array_equal(together.params[17], alone.params[0])


def test_flat_profile_is_not_fitted_and_says_why():
    fit = fit_sigmoids(X, np.full((1, X.size), 0.4))
    assert not fit.ok[0]
    assert fit.reason[0] == FLAT_PROFILE
    assert np.isnan(fit.slope[0])


def test_straight_line_without_edge_gives_nan_not_a_slope():
    # The least-squares sigmoid of a line has S -> 0 and a2 -> infinity: no edge to measure.
    fit = fit_sigmoids(X, (0.3 + 0.05 * X)[None, :])
    assert fit.reason[0] in (FIT_AT_BOUND, FIT_NOT_CONVERGED)
    assert np.isnan(fit.slope[0])


def test_edge_beyond_the_segment_is_reported_at_a_bound():
    # the midpoint a0 = 6 lies outside the segment [-2.5, 2.5]: a0 ends on its bound
    fit = fit_sigmoids(X, sigmoid(X, 6.0, 0.1, 0.7, 2.0)[None, :])
    assert fit.reason[0] == FIT_AT_BOUND
    assert np.isnan(fit.slope[0])


def test_non_finite_profile_gives_nan_without_raising():
    profile = sigmoid(X, 0.0, 0.0, 1.0, 1.0)
    profile[3] = np.nan
    fit = fit_sigmoids(X, profile[None, :])
    assert not fit.ok[0] and np.isnan(fit.slope[0])


def test_profiles_not_matching_positions_are_a_data_error():
    with pytest.raises(DataError, match="at least 5"):
        fit_sigmoids(X, np.zeros((3, X.size - 1)))
