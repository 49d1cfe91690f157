"""Lesion-level image-quality metrics of Javadi et al. 2024 ("Evaluation Metrics"), one image pair
at a time.

Every metric comes in two forms: ``metric(...) -> float`` (NaN where it is undefined) and
``metric_with_reason(...) -> MetricResult`` which also says why a value is NaN. Undefined cases
(an empty mask or box, a lesion at the image border, a flat profile, no non-zero gradient
products) never raise; malformed input (wrong shapes, a box outside the image) raises
:class:`advmri.errors.DataError`.

Conventions: images are 2-D float arrays on one intensity scale ([0, 1] in this project), masks
are boolean, ``bbox = (r0, c0, r1, c1)`` is half-open (rows ``r0 <= r < r1``, columns
``c0 <= c < c1``) as in ``samples.csv``. Distances are in pixels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.metrics import structural_similarity

from advmri.errors import DataError
from advmri.metrics.edges import EMPTY_MASK, edge_segments, sample_profiles
from advmri.metrics.sigmoid import fit_sigmoids

BBox = tuple[int, int, int, int]

EMPTY_BOX = "empty_box"
BOX_TOO_SMALL = "box_too_small"
NO_GRADIENT_PRODUCTS = "no_gradient_products"
NO_VALID_PROFILE = "no_valid_profile"


@dataclass(frozen=True)
class MetricResult:
    """A metric's value and, where it is NaN, why.

    Attributes
    ----------
    value : float
        The metric; NaN where undefined.
    reason : str
        ``""`` when ``value`` is finite, else a short code: ``"empty_box"``, ``"box_too_small"``,
        ``"no_gradient_products"``, ``"empty_mask"``, or for the profile metrics the most frequent
        reason among the 8 directions (see ``profile_reasons``).
    profiles_used : int
        For sharpness and ECE: how many of the 8 profiles entered the value (fitted ones for
        sharpness); 0 for the box metrics.
    profile_reasons : tuple of str
        For sharpness and ECE: one entry per direction (0, 45, ..., 315 degrees), ``""`` where
        used, else why not (:data:`advmri.metrics.edges.REASONS` or the fitter's
        ``"flat_profile"``, ``"fit_not_converged"``, ``"fit_at_bound"``).
    """

    value: float
    reason: str = ""
    profiles_used: int = 0
    profile_reasons: tuple[str, ...] = ()


def _pair(enhanced: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(enhanced, dtype=np.float64)
    b = np.asarray(truth, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise DataError(
            f"enhanced and truth must be 2-D images of one shape, got {a.shape} and {b.shape}"
        )
    return a, b


def _box(bbox: BBox, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """Slices of a half-open box; None for an empty one; DataError for one outside the image."""
    r0, c0, r1, c1 = (int(v) for v in bbox)
    if min(r0, c0) < 0 or r1 > shape[0] or c1 > shape[1]:
        raise DataError(f"bbox {tuple(bbox)} lies outside the image of shape {shape}")
    if r1 <= r0 or c1 <= c0:
        return None
    return slice(r0, r1), slice(c0, c1)


def _mode_reason(reasons) -> str:
    """The most frequent non-empty reason (first seen wins ties)."""
    counts = Counter(r for r in reasons if r)
    return counts.most_common(1)[0][0] if counts else ""


# --- box metrics ------------------------------------------------------------------------------


def mie_with_reason(enhanced: np.ndarray, truth: np.ndarray, bbox: BBox) -> MetricResult:
    """:func:`mie` with the reason for a NaN (``"empty_box"``)."""
    a, b = _pair(enhanced, truth)
    box = _box(bbox, a.shape)
    if box is None:
        return MetricResult(np.nan, EMPTY_BOX)
    return MetricResult(float(np.mean(np.abs(a[box] - b[box]))))


def mie(enhanced: np.ndarray, truth: np.ndarray, bbox: BBox) -> float:
    """Mean intensity error inside the lesion's bounding box.

    Parameters
    ----------
    enhanced, truth : (H, W) float
        Images on the same intensity scale ([0, 1] in this project).
    bbox : (r0, c0, r1, c1)
        Half-open box, as in ``samples.csv``.

    Returns
    -------
    float
        ``mean(|enhanced - truth|)`` over the box, in intensity units; NaN for an empty box.

    Notes
    -----
    Javadi et al. 2024, MIE. Smaller is better; 0 for identical images.
    """
    return mie_with_reason(enhanced, truth, bbox).value


def ssim_in_box_with_reason(
    enhanced: np.ndarray, truth: np.ndarray, bbox: BBox, max_window: int = 7
) -> MetricResult:
    """:func:`ssim_in_box` with the reason for a NaN (``"empty_box"``, ``"box_too_small"``)."""
    a, b = _pair(enhanced, truth)
    box = _box(bbox, a.shape)
    if box is None:
        return MetricResult(np.nan, EMPTY_BOX)
    crop_a, crop_b = a[box], b[box]
    window = min(int(max_window), *crop_a.shape)
    window -= 1 - window % 2  # largest odd size not above the limit
    if window < 3:
        return MetricResult(np.nan, BOX_TOO_SMALL)
    value = structural_similarity(crop_a, crop_b, win_size=window, data_range=1.0)
    return MetricResult(float(value))


def ssim_in_box(enhanced: np.ndarray, truth: np.ndarray, bbox: BBox, max_window: int = 7) -> float:
    """Structural similarity of the lesion's bounding box.

    Parameters
    ----------
    enhanced, truth : (H, W) float
        Images in [0, 1].
    bbox : (r0, c0, r1, c1)
        Half-open box; SSIM is computed on the two crops.
    max_window : int
        Largest (odd) side of the square SSIM window; the window is the largest odd size
        ``<= max_window`` that fits the box (7 for boxes of 7 x 7 and more).

    Returns
    -------
    float
        Mean SSIM over the crop (``skimage.metrics.structural_similarity``: uniform window,
        ``data_range=1``, K1 = 0.01, K2 = 0.03, sample covariance); dimensionless, at most 1 (for
        identical crops). NaN for an empty box or one narrower than 3 pixels.
    """
    return ssim_in_box_with_reason(enhanced, truth, bbox, max_window).value


def sobel_gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised 3 x 3 Sobel derivatives ``(d/dx, d/dy)`` of a whole image.

    ``d/dx`` is along columns, ``d/dy`` along rows: ``scipy.ndimage.sobel`` (kernel
    ``[1, 2, 1]^T [-1, 0, 1]``) divided by 8, so a ramp of slope g intensity/pixel gives g
    (units: intensity per pixel). Multiply by 8 for the unnormalised values of OpenCV's
    ``cv2.Sobel(ksize=3)``. Borders replicate the edge pixel (``mode="nearest"``).
    """
    image = np.asarray(image, dtype=np.float64)
    return (
        ndimage.sobel(image, axis=1, mode="nearest") / 8.0,
        ndimage.sobel(image, axis=0, mode="nearest") / 8.0,
    )


def _gradient_error_from(
    grads_a: tuple[np.ndarray, np.ndarray], grads_b: tuple[np.ndarray, np.ndarray], box
) -> MetricResult:
    if box is None:
        return MetricResult(np.nan, EMPTY_BOX)
    parts = []
    for da, db in zip(grads_a, grads_b, strict=True):
        da, db = da[box], db[box]
        count = np.count_nonzero(da * db)
        if count == 0:
            return MetricResult(np.nan, NO_GRADIENT_PRODUCTS)
        parts.append(np.abs(da - db).sum() / count)
    return MetricResult(float(0.5 * (parts[0] + parts[1])))


def gradient_error_with_reason(enhanced: np.ndarray, truth: np.ndarray, bbox: BBox) -> MetricResult:
    """:func:`gradient_error` with the reason for a NaN (``"empty_box"``,
    ``"no_gradient_products"``)."""
    a, b = _pair(enhanced, truth)
    return _gradient_error_from(sobel_gradients(a), sobel_gradients(b), _box(bbox, a.shape))


def gradient_error(enhanced: np.ndarray, truth: np.ndarray, bbox: BBox) -> float:
    """Gradient error (GE) inside the lesion's bounding box, after FLIP's edge term.

    ``GE = (GE_x + GE_y) / 2`` with ``GE_a = sum_box |dA/da - dB/da| / N_a``, where ``N_a`` is the
    number of box pixels at which the product ``dA/da * dB/da`` is non-zero.

    Parameters
    ----------
    enhanced, truth : (H, W) float
        Images A (enhanced) and B (ground truth) on one intensity scale.
    bbox : (r0, c0, r1, c1)
        Half-open box.

    Returns
    -------
    float
        GE in intensity per pixel (see :func:`sobel_gradients` for the Sobel scaling); 0 for
        identical images with some gradient in both directions; NaN for an empty box or when
        ``N_x`` or ``N_y`` is 0 (e.g. a flat image).

    Notes
    -----
    Derivatives are taken on the whole images, then restricted to the box, so box pixels see
    their true neighbours. Smaller is better. Note that the normalisation by ``N_a`` rather
    than the box's pixel count makes GE the mean error over pixels where both images have an
    edge response, so an image without one (a flat region) is not rewarded.
    """
    return gradient_error_with_reason(enhanced, truth, bbox).value


# --- profile metrics --------------------------------------------------------------------------


def sharpness_with_reason(
    image: np.ndarray,
    lesion_mask: np.ndarray,
    *,
    segment_length: float = 5.0,
    samples_per_segment: int = 21,
    interpolation_order: int = 3,
) -> MetricResult:
    """:func:`sharpness` with the number of fitted profiles and each direction's reason."""
    image = np.asarray(image, dtype=np.float64)
    mask = np.asarray(lesion_mask)
    if image.shape != mask.shape:
        raise DataError(f"image {image.shape} and lesion mask {mask.shape} differ in shape")
    seg = edge_segments(mask, segment_length, samples_per_segment)
    profiles = sample_profiles(image, seg, interpolation_order)
    reasons = seg.reason.copy()
    slopes = np.full(len(reasons), np.nan)
    if seg.valid.any():
        fit = fit_sigmoids(seg.offsets, profiles[seg.valid])
        slopes[seg.valid] = fit.slope
        reasons[seg.valid] = fit.reason
    return _sharpness_result(slopes, reasons)


def _sharpness_result(slopes: np.ndarray, reasons: np.ndarray) -> MetricResult:
    used = int(np.isfinite(slopes).sum())
    if used == 0:
        return MetricResult(np.nan, _mode_reason(reasons) or NO_VALID_PROFILE, 0, tuple(reasons))
    return MetricResult(float(np.nanmean(slopes)), "", used, tuple(reasons))


def sharpness(
    image: np.ndarray,
    lesion_mask: np.ndarray,
    *,
    segment_length: float = 5.0,
    samples_per_segment: int = 21,
    interpolation_order: int = 3,
) -> float:
    """Edge sharpness of a lesion: the mean growth rate of sigmoids fitted across its edge.

    For each of the 8 segments of :func:`advmri.metrics.edges.edge_segments` (centre of mass, the
    edge point in each principal direction, a ``segment_length``-pixel segment centred on it),
    the profile of ``image`` sampled by spline interpolation is fitted with
    ``a1 + a2 / (1 + exp(S (a0 - x)))`` (``x`` the signed distance along the segment); the
    result is the mean ``|S|`` over the profiles that could be fitted.

    Parameters
    ----------
    image : (H, W) float
        The image whose edge is measured (the enhanced image).
    lesion_mask : (H, W) bool
        The lesion (of the ground truth), which places the segments.
    segment_length : float
        Segment length in pixels (paper: 5).
    samples_per_segment : int
        Samples per segment (default 21: a step of 0.25 pixel).
    interpolation_order : int
        Spline order of ``scipy.ndimage.map_coordinates`` (default 3, cubic: bilinear sampling
        blurs a steep edge and biases S low by several per cent).

    Returns
    -------
    float
        Mean ``|S|`` in 1/pixel (larger is sharper; a logistic edge of width w between its
        12 % and 88 % points has ``S = 4 / w``). NaN when no profile could be fitted: empty
        mask, all segments leaving the image or the lesion at the border, flat profiles.

    Notes
    -----
    Javadi et al. 2024 after Ahmad et al. 2015. Profiles that were not fitted are left out
    of the mean; :func:`sharpness_with_reason` says how many were used and why others were not.
    """
    return sharpness_with_reason(
        image,
        lesion_mask,
        segment_length=segment_length,
        samples_per_segment=samples_per_segment,
        interpolation_order=interpolation_order,
    ).value


def _ece_from_profiles(prof_a: np.ndarray, prof_b: np.ndarray, reasons: np.ndarray) -> MetricResult:
    valid = np.isfinite(prof_a).all(axis=1) & np.isfinite(prof_b).all(axis=1)
    used = int(valid.sum())
    if used == 0:
        return MetricResult(np.nan, _mode_reason(reasons) or NO_VALID_PROFILE, 0, tuple(reasons))
    norm_a = np.abs(prof_a[valid]).sum(axis=1)
    norm_b = np.abs(prof_b[valid]).sum(axis=1)
    value = np.abs(norm_a - norm_b).sum() / (used * prof_a.shape[1])
    return MetricResult(float(value), "", used, tuple(reasons))


def edge_contrast_error_with_reason(
    enhanced: np.ndarray,
    truth: np.ndarray,
    lesion_mask: np.ndarray,
    *,
    segment_length: float = 5.0,
    samples_per_segment: int = 21,
    interpolation_order: int = 3,
) -> MetricResult:
    """:func:`edge_contrast_error` with the number of profiles used and each one's reason."""
    a, b = _pair(enhanced, truth)
    mask = np.asarray(lesion_mask)
    if a.shape != mask.shape:
        raise DataError(f"images {a.shape} and lesion mask {mask.shape} differ in shape")
    seg = edge_segments(mask, segment_length, samples_per_segment)
    return _ece_from_profiles(
        sample_profiles(a, seg, interpolation_order),
        sample_profiles(b, seg, interpolation_order),
        seg.reason,
    )


def edge_contrast_error(
    enhanced: np.ndarray,
    truth: np.ndarray,
    lesion_mask: np.ndarray,
    *,
    segment_length: float = 5.0,
    samples_per_segment: int = 21,
    interpolation_order: int = 3,
) -> float:
    """Edge-contrast error (ECE): how much the intensity mass across the lesion edge differs.

    ``ECE = 1 / (N M) * sum_j | ||P(enhanced, j)||_1 - ||P(truth, j)||_1 |`` over the M segments
    of :func:`advmri.metrics.edges.edge_segments` that lie inside the image (M = 8 normally),
    ``P(X, j)`` the N samples of image X along segment j (same sampling as :func:`sharpness`).

    Parameters
    ----------
    enhanced, truth : (H, W) float
        Images on one intensity scale.
    lesion_mask : (H, W) bool
        The lesion of the ground truth, which places the segments.
    segment_length, samples_per_segment, interpolation_order
        As for :func:`sharpness`.

    Returns
    -------
    float
        ECE in intensity units (a mean absolute difference per sample); 0 for identical
        images. NaN for an empty mask or when no segment lies inside the image.

    Notes
    -----
    Javadi et al. 2024. Smaller is better. No fit is involved, so flat profiles count.
    """
    return edge_contrast_error_with_reason(
        enhanced,
        truth,
        lesion_mask,
        segment_length=segment_length,
        samples_per_segment=samples_per_segment,
        interpolation_order=interpolation_order,
    ).value


__all__ = [
    "BBox",
    "MetricResult",
    "EMPTY_BOX",
    "BOX_TOO_SMALL",
    "EMPTY_MASK",
    "NO_GRADIENT_PRODUCTS",
    "NO_VALID_PROFILE",
    "edge_contrast_error",
    "edge_contrast_error_with_reason",
    "gradient_error",
    "gradient_error_with_reason",
    "mie",
    "mie_with_reason",
    "sharpness",
    "sharpness_with_reason",
    "sobel_gradients",
    "ssim_in_box",
    "ssim_in_box_with_reason",
]
