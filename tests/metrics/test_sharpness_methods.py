"""Sharpness by the paper's literal fit and by the robust method: recovery, noise, NaN, agreement."""

import numpy as np
import pytest
from scipy.optimize import curve_fit
from scipy.special import expit

from advmri.config import validate_config
from advmri.errors import ConfigError, DataError
from advmri.metrics.evaluate import MetricSettings
from advmri.metrics.lesion import (
    EDGE_WIDER_THAN_PROFILE,
    TOO_FEW_PROFILES,
    edge_contrast_error,
    fit_profile_slopes,
    sharpness,
    sharpness_profiles,
    sharpness_with_reason,
)
from advmri.metrics.sigmoid import fit_sigmoids, initial_guess, sigmoid

from fabricate import logistic_lesion

CONTRAST = 0.4
SHAPES = {
    "disc r=8": {"radii": (8.0, 8.0)},
    "disc r=14": {"radii": (14.0, 14.0)},
    "ellipse 8x14": {"radii": (8.0, 14.0), "angle_deg": 30.0},
}


def median_over_noise(s: float, shape: dict, method: str, noise: float, draws: int) -> float:
    """Median sharpness over ``draws`` noise draws of ``noise`` x the edge contrast."""
    image, mask = logistic_lesion(s, contrast=CONTRAST, **shape)
    rng = np.random.default_rng(7)
    values = [
        sharpness(image + rng.normal(0.0, noise * CONTRAST, image.shape), mask, method=method)
        for _ in range(draws)
    ]
    return float(np.nanmedian(values))


@pytest.mark.parametrize("method", ["robust", "paper"])
@pytest.mark.parametrize("s", [0.3, 0.6, 1.2])
@pytest.mark.parametrize("radius", [8.0, 12.0, 14.0])
def test_noise_free_logistic_disc_gives_its_growth_rate_within_1_percent(method, s, radius):
    image, mask = logistic_lesion(s, (radius, radius), contrast=CONTRAST)
    result = sharpness_with_reason(image, mask, method=method)
    assert result.profiles_used == 8
    assert result.value == pytest.approx(s, rel=0.01)


@pytest.mark.parametrize("s", [0.3, 0.6, 1.2])
@pytest.mark.parametrize("angle", [0.0, 30.0, 75.0])
def test_noise_free_logistic_ellipse_gives_its_growth_rate_within_1_percent_robust(s, angle):
    # along the normal: the paper's rays cross the diagonals of an ellipse obliquely (S cos alpha)
    image, mask = logistic_lesion(s, (8.0, 14.0), angle_deg=angle, contrast=CONTRAST)
    assert sharpness(image, mask, method="robust") == pytest.approx(s, rel=0.01)


@pytest.mark.parametrize("s", [0.3, 0.6, 1.2])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_robust_sharpness_at_5_percent_noise_is_within_15_percent_of_the_truth(s, shape):
    median = median_over_noise(s, SHAPES[shape], "robust", noise=0.05, draws=9)
    assert median == pytest.approx(s, rel=0.15)


def test_paper_sharpness_at_5_percent_noise_is_inflated_far_beyond_15_percent():
    # the claim the robust method fixes: noise makes the 5-pixel fit of a blurry edge "sharper"
    median = median_over_noise(0.3, SHAPES["disc r=8"], "paper", noise=0.05, draws=9)
    assert median > 1.5 * 0.3


def test_fewer_fitted_profiles_than_min_profiles_give_nan_with_reason():
    # a disc cut by the left border: the rays to the left leave the image inside the lesion
    image, mask = logistic_lesion(1.0, (9.0, 9.0), centre=(40.0, 4.0), contrast=CONTRAST)
    loose = sharpness_with_reason(image, mask, min_profiles=1)
    assert 0 < loose.profiles_used < 8 and np.isfinite(loose.value)
    strict = sharpness_with_reason(image, mask, min_profiles=loose.profiles_used + 1)
    assert np.isnan(strict.value)
    assert strict.reason == TOO_FEW_PROFILES
    assert strict.profiles_used == loose.profiles_used
    assert "lesion_at_border" in strict.profile_reasons


def test_edge_wider_than_the_robust_profile_is_nan_not_a_slope():
    # S = 0.1 on a disc of radius 6: the 18-82 % transition is 30 px wide, the profile 13 px
    image, mask = logistic_lesion(0.1, (6.0, 6.0), contrast=CONTRAST)
    result = sharpness_with_reason(image, mask, method="robust")
    assert np.isnan(result.value)
    assert EDGE_WIDER_THAN_PROFILE in result.profile_reasons


def jacobian(x, a0, a1, a2, s):
    """The model's analytic Jacobian: curve_fit's finite differences stop short of the optimum
    on steep, sparsely sampled edges (by up to 1e-5 in S)."""
    sig = expit(s * (x - a0))
    g = a2 * sig * (1.0 - sig)
    return np.stack([-s * g, np.ones_like(x), sig, g * (x - a0)], axis=1)


def test_robust_fit_equals_curve_fit_on_the_long_profiles():
    rng = np.random.default_rng(3)
    batch, scales = [], []
    for s, radii in [(0.3, (12.0, 12.0)), (0.6, (8.0, 14.0)), (1.2, (10.0, 13.0))]:
        image, mask = logistic_lesion(s, radii, angle_deg=20.0, contrast=CONTRAST)
        prof = sharpness_profiles(image + rng.normal(0, 0.01, image.shape), mask)
        batch.append(prof.profiles[prof.valid])
        scales.append(prof.scale[prof.valid])
    profiles, scale = np.concatenate(batch), np.concatenate(scales)
    u = prof.x
    slopes, reasons = fit_profile_slopes(u, profiles, scale, "robust")
    assert (reasons == "").all()
    start = initial_guess(u, profiles)
    for i in range(len(profiles)):
        # the same least-squares problem in pixels: x = u L
        x = u * scale[i]
        p0 = start[i] * [scale[i], 1, 1, 1 / scale[i]]
        ref, _ = curve_fit(
            sigmoid,
            x,
            profiles[i],
            p0=p0,
            jac=jacobian,
            ftol=1e-15,
            xtol=1e-15,
            gtol=1e-15,
            maxfev=20000,
        )
        assert slopes[i] == pytest.approx(abs(ref[3]), rel=1e-6)


def test_robust_fit_of_a_profile_does_not_depend_on_its_batch():
    image, mask = logistic_lesion(0.6, (9.0, 12.0), angle_deg=10.0, contrast=CONTRAST)
    prof = sharpness_profiles(image, mask)
    together = fit_sigmoids(prof.x, prof.profiles, max_slope=50 * prof.scale)
    alone = fit_sigmoids(prof.x, prof.profiles[3:4], max_slope=50 * prof.scale[3:4])
    np.testing.assert_array_equal(together.params[3], alone.params[0])


def test_edge_contrast_error_is_the_same_whatever_the_sharpness_method():
    # ECE has no method argument: it always reads the paper's 5-pixel segments
    image, mask = logistic_lesion(0.6, (10.0, 10.0), contrast=CONTRAST)
    blurred, _ = logistic_lesion(0.4, (10.0, 10.0), contrast=CONTRAST)
    assert edge_contrast_error(blurred, image, mask) > 0
    assert sharpness(blurred, mask, method="paper") != sharpness(blurred, mask, method="robust")


def test_unknown_method_is_a_data_error():
    image, mask = logistic_lesion(0.6, contrast=CONTRAST)
    with pytest.raises(DataError, match="'robus' is not one of"):
        sharpness(image, mask, method="robus")


def test_schema_refuses_an_unknown_sharpness_method(study_config):
    study_config["metrics"]["sharpness"]["method"] = "robus"
    with pytest.raises(
        ConfigError,
        match=r"metrics\.sharpness\.method = 'robus' is not one of \['robust', 'paper'\]",
    ):
        validate_config(study_config)


@pytest.mark.parametrize("value", [0, 9])
def test_schema_refuses_min_profiles_outside_1_to_8(study_config, value):
    study_config["metrics"]["sharpness"]["min_profiles"] = value
    with pytest.raises(ConfigError, match=r"metrics\.sharpness\.min_profiles"):
        validate_config(study_config)


def test_config_default_is_the_robust_method_and_reaches_the_metric_settings(study_config):
    settings = MetricSettings.from_config(study_config["metrics"])
    assert settings.sharpness_method == "robust"
    assert 1 <= settings.min_profiles <= 8
    study_config["metrics"]["sharpness"]["method"] = "paper"
    assert MetricSettings.from_config(study_config["metrics"]).sharpness_method == "paper"
