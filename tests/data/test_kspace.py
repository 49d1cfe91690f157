import numpy as np
import pytest

from advmri.data.kspace import band_shape, degrade, lowpass, truncate_kspace

SHAPE = (208, 176)


def bandlimited_image(rng: np.random.Generator, band=(26, 22)) -> np.ndarray:
    """A real image whose spectrum lies strictly inside the central band (Nyquist lines excluded)."""
    spectrum = np.zeros(SHAPE, dtype=complex)
    kr, kc = band[0] // 2 - 1, band[1] // 2 - 1
    for fr in range(-kr, kr + 1):
        for fc in range(-kc, kc + 1):
            spectrum[fr % SHAPE[0], fc % SHAPE[1]] = rng.normal() + 1j * rng.normal()
    return np.fft.ifft2(spectrum).real  # .real keeps it band-limited (conjugate mirror is inside)


def test_band_of_one_eighth_is_26_by_22():
    assert band_shape(SHAPE, 0.125) == (26, 22)


def test_fraction_that_does_not_divide_the_image_is_refused():
    with pytest.raises(ValueError, match="not a whole number"):
        band_shape(SHAPE, 0.3)


def test_image_inside_the_band_passes_the_crop_unchanged():
    image = bandlimited_image(np.random.default_rng(0))
    np.testing.assert_allclose(lowpass(image, 0.125).real, image, atol=1e-12)
    low = truncate_kspace(image, 0.125)
    assert low.shape == (26, 22)
    # the coarse image is the band-limited image sampled every 8th pixel, intensities kept
    np.testing.assert_allclose(low.real, image[::8, ::8], atol=1e-12)
    np.testing.assert_allclose(low.imag, 0, atol=1e-12)


def test_energy_outside_the_band_is_gone():
    image = np.random.default_rng(1).normal(size=SHAPE)
    spectrum = np.fft.fftshift(np.fft.fft2(lowpass(image, 0.125)))
    outside = np.ones(SHAPE, dtype=bool)
    outside[104 - 13 : 104 + 13, 88 - 11 : 88 + 11] = False
    assert np.abs(spectrum[outside]).max() < 1e-9
    assert np.abs(spectrum[~outside]).max() > 1  # the band itself is kept


def test_lq_is_constant_on_8x8_blocks_and_in_unit_range():
    hq = np.random.default_rng(2).uniform(size=SHAPE).astype(np.float32)
    lq = degrade(hq, 0.125, 0.05, np.random.default_rng(3))
    assert lq.shape == SHAPE and lq.dtype == np.float32
    blocks = lq.reshape(26, 8, 22, 8)
    assert np.all(blocks == blocks[:, :1, :, :1])
    assert lq.min() == 0.0 and lq.max() == 1.0


def test_noise_level_sets_the_difference_from_the_noiseless_degradation():
    hq = bandlimited_image(np.random.default_rng(4))
    hq = (hq - hq.min()) / (hq.max() - hq.min())
    quiet = degrade(hq, 0.125, 0.0, np.random.default_rng(5))
    noisy = degrade(hq, 0.125, 0.05, np.random.default_rng(5))
    assert np.abs(noisy - quiet).mean() > 0.01
