"""Lesion metrics on analytic images and edge cases."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.special import expit

from advmri.errors import DataError
from advmri.metrics import (
    edge_contrast_error,
    edge_contrast_error_with_reason,
    gradient_error,
    gradient_error_with_reason,
    mie,
    mie_with_reason,
    sharpness,
    sharpness_with_reason,
    ssim_in_box,
    ssim_in_box_with_reason,
)

H, W = 64, 60
ROWS, COLS = np.mgrid[0:H, 0:W]


def logistic_disc(s: float, centre=(31.3, 28.7), radius=9.3) -> tuple[np.ndarray, np.ndarray]:
    """A bright disc whose radial profile is exactly logistic with growth rate s (1/pixel)."""
    dist = np.hypot(ROWS - centre[0], COLS - centre[1])
    return 0.2 + 0.6 * expit(s * (radius - dist)), dist < radius


def textured(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random((H, W)), 2.0)


@pytest.mark.parametrize("s", [0.5, 0.8, 1.0, 1.5])
@pytest.mark.parametrize("centre", [(31.0, 29.0), (31.3, 28.7), (30.77, 29.41)])
def test_sharpness_of_logistic_disc_edge_is_its_growth_rate_within_2_percent(s, centre):
    image, mask = logistic_disc(s, centre)
    result = sharpness_with_reason(image, mask)
    assert result.profiles_used == 8
    assert result.value == pytest.approx(s, rel=0.02)


def test_bilinear_sampling_biases_sharpness_low_more_than_cubic():
    image, mask = logistic_disc(1.5)
    cubic = sharpness(image, mask, interpolation_order=3)
    linear = sharpness(image, mask, interpolation_order=1)
    assert abs(cubic - 1.5) < abs(linear - 1.5)
    assert linear < 1.5


def test_more_gaussian_blur_gives_smaller_sharpness():
    mask = np.hypot(ROWS - 31.3, COLS - 28.6) < 10
    values = [
        sharpness(ndimage.gaussian_filter(mask.astype(float), sigma), mask)
        for sigma in (0.7, 1.0, 1.5, 2.0, 3.0)
    ]
    assert all(np.isfinite(values))
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_identical_images_give_zero_errors_and_ssim_one():
    image = textured()
    _, mask = logistic_disc(1.0)
    box = (20, 18, 42, 40)
    assert gradient_error(image, image, box) == 0.0
    assert mie(image, image, box) == 0.0
    assert edge_contrast_error(image, image, mask) == 0.0
    assert ssim_in_box(image, image, box) == pytest.approx(1.0, abs=1e-12)


def test_gradient_error_matches_hand_computed_ramps():
    # truth = 0.1 (r + c), enhanced = 0.2 (r + c) on 5 x 5. Normalised Sobel: slope g inside,
    # g / 2 on the first and last column (row) where the border pixel is replicated.
    # d/dx differs by 0.1 at 15 pixels and 0.05 at 10, all 25 products are non-zero:
    # GE_x = (15 * 0.1 + 10 * 0.05) / 25 = 0.08, GE_y likewise, GE = 0.08.
    r, c = np.mgrid[0:5, 0:5]
    truth, enhanced = 0.1 * (r + c), 0.2 * (r + c)
    assert gradient_error(enhanced, truth, (0, 0, 5, 5)) == pytest.approx(0.08, abs=1e-12)
    # restricted to the interior 3 x 3 box: only the 0.1 differences remain
    assert gradient_error(enhanced, truth, (1, 1, 4, 4)) == pytest.approx(0.1, abs=1e-12)


def test_gradient_error_counts_only_non_zero_gradient_products():
    # enhanced is flat in its left half: products are zero there, so N_x counts the right half
    r, c = np.mgrid[0:6, 0:8].astype(float)
    truth = 0.1 * (r + c)
    enhanced = truth.copy()
    enhanced[:, :4] = 0.0
    box = (1, 5, 5, 7)  # right of the flat part and its Sobel footprint: identical there
    assert gradient_error(enhanced, truth, box) == 0.0
    # a box reaching into the flat part: its zero-product pixels are left out of N
    grad_x = ndimage.sobel(enhanced, axis=1, mode="nearest") / 8
    grad_y = ndimage.sobel(enhanced, axis=0, mode="nearest") / 8
    ref_x, ref_y = (ndimage.sobel(truth, axis=a, mode="nearest") / 8 for a in (1, 0))
    sl = (slice(1, 5), slice(2, 7))
    expected = 0.5 * sum(
        np.abs(g[sl] - t[sl]).sum() / np.count_nonzero(g[sl] * t[sl])
        for g, t in ((grad_x, ref_x), (grad_y, ref_y))
    )
    assert gradient_error(enhanced, truth, (1, 2, 5, 7)) == pytest.approx(expected)
    assert np.count_nonzero(grad_y[sl] * ref_y[sl]) < grad_y[sl].size


def test_mie_and_ssim_use_only_the_box():
    truth = textured(1)
    enhanced = truth.copy()
    enhanced[:10] += 0.5  # changes far outside the box do not count
    box = (30, 30, 45, 50)
    assert mie(enhanced, truth, box) == 0.0
    assert ssim_in_box(enhanced, truth, box) == pytest.approx(1.0)
    enhanced[35, 35] += 0.3
    assert mie(enhanced, truth, box) == pytest.approx(0.3 / (15 * 20))


def test_ssim_window_shrinks_to_fit_a_small_box():
    truth = textured(2)
    enhanced = truth + 0.02 * textured(3)
    assert np.isfinite(ssim_in_box(enhanced, truth, (10, 10, 14, 30)))  # 4 rows: window 3
    result = ssim_in_box_with_reason(enhanced, truth, (10, 10, 12, 30))  # 2 rows: none fits
    assert np.isnan(result.value) and result.reason == "box_too_small"


def test_edge_contrast_error_is_mean_absolute_difference_of_profile_sums():
    image, mask = logistic_disc(1.0)
    # a constant offset d changes every profile's L1 norm by N * d (values stay positive)
    result = edge_contrast_error_with_reason(image + 0.05, image, mask)
    assert result.profiles_used == 8
    assert result.value == pytest.approx(0.05, rel=1e-9)


# --- edge cases: NaN with a reason, never an exception ----------------------------------------


def test_empty_mask_gives_nan_sharpness_and_ece_with_reason():
    image = textured()
    empty = np.zeros((H, W), dtype=bool)
    for result in (
        sharpness_with_reason(image, empty),
        edge_contrast_error_with_reason(image, image, empty),
    ):
        assert np.isnan(result.value)
        assert result.reason == "empty_mask"
        assert result.profiles_used == 0


def test_lesion_touching_the_border_loses_only_the_directions_that_leave_the_image():
    image, mask = logistic_disc(1.0, centre=(31.0, 3.0), radius=9.3)  # cut by the left border
    result = sharpness_with_reason(image, mask)
    assert "lesion_at_border" in result.profile_reasons
    assert 0 < result.profiles_used < 8
    assert np.isfinite(result.value)


def test_lesion_filling_the_image_gives_nan_with_border_reason():
    result = sharpness_with_reason(textured(), np.ones((H, W), dtype=bool))
    assert np.isnan(result.value)
    assert result.reason == "lesion_at_border"


def test_segment_leaving_the_image_gives_nan_with_reason():
    # a lesion 1 pixel from the border: the edge is inside, the 5-pixel segment is not
    mask = np.zeros((H, W), dtype=bool)
    mask[1:4, 1:4] = True
    image = ndimage.gaussian_filter(mask.astype(float), 0.8)
    result = sharpness_with_reason(image, mask)
    assert "segment_outside_image" in result.profile_reasons
    ece = edge_contrast_error_with_reason(image, image, mask)
    assert ece.profiles_used == result.profile_reasons.count("") + sum(
        r.startswith("fit") or r == "flat_profile" for r in result.profile_reasons
    )


def test_flat_image_gives_nan_sharpness_with_flat_profile_reason():
    _, mask = logistic_disc(1.0)
    result = sharpness_with_reason(np.full((H, W), 0.3), mask)
    assert np.isnan(result.value)
    assert result.reason == "flat_profile"
    assert set(result.profile_reasons) == {"flat_profile"}


def test_flat_images_give_nan_gradient_error_with_reason():
    flat = np.full((H, W), 0.5)
    result = gradient_error_with_reason(flat, textured(), (10, 10, 20, 20))
    assert np.isnan(result.value)
    assert result.reason == "no_gradient_products"


def test_empty_box_gives_nan_box_metrics_with_reason():
    image = textured()
    for fn in (mie_with_reason, gradient_error_with_reason, ssim_in_box_with_reason):
        result = fn(image, image, (10, 10, 10, 20))
        assert np.isnan(result.value) and result.reason == "empty_box"


def test_box_outside_the_image_is_a_data_error():
    image = textured()
    with pytest.raises(DataError, match="outside the image"):
        mie(image, image, (0, 0, H + 1, 5))


def test_images_of_different_shapes_are_a_data_error():
    with pytest.raises(DataError, match="one shape"):
        mie(np.zeros((5, 5)), np.zeros((5, 6)), (0, 0, 2, 2))
