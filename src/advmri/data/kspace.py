"""Low-resolution, low-SNR images from high-quality ones (study §2).

The degradation keeps the central ``fraction x fraction`` of k-space (208 x 176 -> 26 x 22 at 1/8),
which is what a scanner acquiring fewer phase and frequency encodes records, adds complex Gaussian
noise (thermal noise is white in k-space), and takes the magnitude. The network sees the low-resolution
magnitude image resized back to the full grid by nearest neighbour, so each LQ pixel is a block.
"""

from __future__ import annotations

import math

import numpy as np


def band_shape(shape: tuple[int, int], fraction: float) -> tuple[int, int]:
    """Rows x columns of the kept k-space band; each must divide the image's side exactly.

    Raises
    ------
    ValueError
        ``fraction`` of a side is not a whole number of lines, or the lines do not divide the
        side (the nearest-neighbour resize back to the grid enlarges each pixel by a whole factor).
    """
    band = []
    for side in shape:
        kept = side * fraction
        lines = round(kept) if math.isfinite(kept) else 0
        if not math.isfinite(kept) or abs(kept - lines) > 1e-9 or lines < 1:
            raise ValueError(
                f"k-space fraction {fraction} keeps {kept:g} of {side} lines, not a whole number; "
                f"{divisor_fractions(shape)}"
            )
        if side % lines:
            raise ValueError(
                f"k-space fraction {fraction} keeps {lines} of {side} lines, which do not divide "
                f"the side (the nearest-neighbour resize needs a whole factor); "
                f"{divisor_fractions(shape)}"
            )
        band.append(lines)
    return band[0], band[1]


def divisor_fractions(shape: tuple[int, ...]) -> str:
    """The fractions that give whole, dividing bands of ``shape``: ``for 208 x 176 use 1/n, ...``."""
    common = math.gcd(*(int(side) for side in shape))
    divisors = [n for n in range(1, common + 1) if common % n == 0]
    size = " x ".join(str(int(side)) for side in shape)
    return f"for {size} use 1/n with n one of {', '.join(map(str, divisors))}"


def _band_slices(shape: tuple[int, int], band: tuple[int, int]) -> tuple[slice, slice]:
    # After fftshift the zero frequency sits at index side // 2; the band is centred on it the
    # same way, so an even band keeps the -band/2 ... band/2 - 1 frequencies.
    return tuple(  # type: ignore[return-value]
        slice(side // 2 - kept // 2, side // 2 - kept // 2 + kept)
        for side, kept in zip(shape, band, strict=True)
    )


def crop_kspace(kspace_centered: np.ndarray, band: tuple[int, int]) -> np.ndarray:
    """The central ``band`` of a centred (fftshifted) k-space array."""
    return kspace_centered[_band_slices(kspace_centered.shape, band)]


def truncate_kspace(image: np.ndarray, fraction: float) -> np.ndarray:
    """Complex low-resolution image from the central ``fraction`` of ``image``'s k-space.

    Scaled by the ratio of pixel counts so that intensities keep their scale: an image whose spectrum
    lies inside the band comes back as its own samples on the coarse grid (every ``1/fraction``-th
    pixel).
    """
    band = band_shape(image.shape, fraction)
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    low = crop_kspace(spectrum, band)
    scale = (band[0] * band[1]) / (image.shape[0] * image.shape[1])
    return np.fft.ifft2(np.fft.ifftshift(low)) * scale


def lowpass(image: np.ndarray, fraction: float) -> np.ndarray:
    """Full-size complex image with every k-space line outside the central band zeroed."""
    band = band_shape(image.shape, fraction)
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    kept = np.zeros_like(spectrum)
    slices = _band_slices(image.shape, band)
    kept[slices] = spectrum[slices]
    return np.fft.ifft2(np.fft.ifftshift(kept))


def upsample_nearest(image: np.ndarray, factor: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour enlargement by whole factors: each pixel becomes a factor[0] x factor[1] block."""
    return np.repeat(np.repeat(image, factor[0], axis=0), factor[1], axis=1)


def normalize_unit(image: np.ndarray) -> np.ndarray:
    """Min-max scaling to [0, 1]; a constant image maps to zeros."""
    low, high = float(image.min()), float(image.max())
    if high - low <= 0:
        return np.zeros_like(image)
    return (image - low) / (high - low)


def degrade(
    hq: np.ndarray, fraction: float, noise_std: float, rng: np.random.Generator
) -> np.ndarray:
    """The network input made from a HQ image in [0, 1] (study §2).

    Keeps the central ``fraction`` of k-space, adds complex Gaussian noise to the acquired samples,
    takes the magnitude (so the background carries Rician noise, as in a real magnitude image),
    resizes back by nearest neighbour and rescales to [0, 1].

    ``noise_std`` is the standard deviation of the real and of the imaginary part of the noise in the
    low-resolution image, in units of the HQ intensity. White noise added to the full-resolution image
    before truncation has the same distribution after it (with a standard deviation ``1/fraction``
    times larger), so this is study §2's "add noise, then truncate" with the noise level stated where
    it is seen. Returns float32 with ``hq``'s shape, constant on ``1/fraction``-sized blocks.
    """
    return normalize_unit(degraded_magnitude(hq, fraction, noise_std, rng)).astype(np.float32)


def degraded_magnitude(
    hq: np.ndarray, fraction: float, noise_std: float, rng: np.random.Generator
) -> np.ndarray:
    """:func:`degrade` before its final rescale: the noisy low-resolution magnitude on ``hq``'s grid.

    The central ``fraction`` of k-space, complex Gaussian noise of standard deviation
    ``noise_std`` (real part drawn from ``rng`` first, then the imaginary part), the magnitude,
    nearest-neighbour enlargement back to ``hq``'s shape. In HQ intensity units, float64.
    ``advmri enhance --degrade`` rescales a whole volume of these at once instead of each slice.
    """
    low = truncate_kspace(hq, fraction)
    low = low + rng.normal(0.0, noise_std, low.shape) + 1j * rng.normal(0.0, noise_std, low.shape)
    factor = (hq.shape[0] // low.shape[0], hq.shape[1] // low.shape[1])
    return upsample_nearest(np.abs(low), factor)
