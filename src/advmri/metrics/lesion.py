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
from advmri.metrics.edges import (
    DIRECTIONS_DEG,
    EMPTY_MASK,
    edge_segments,
    normal_profiles,
    sample_profiles,
)
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


#: Sharpness methods: ``robust`` (this project's default) and ``paper`` (the literal fit).
ROBUST = "robust"
PAPER = "paper"
METHODS = (ROBUST, PAPER)
#: A fitted robust profile whose edge is wider than the profile shows (see :func:`sharpness`).
EDGE_WIDER_THAN_PROFILE = "edge_wider_than_profile"
#: Fewer than ``min_profiles`` profiles were fitted.
TOO_FEW_PROFILES = "too_few_profiles"
#: Default of ``min_profiles`` (see :func:`sharpness`).
MIN_PROFILES = 4
#: The robust fit's extent criterion: ``S`` times the distance from the fitted edge to each end
#: of the profile is at least this, i.e. the profile reaches past the logistic's 18 % and 82 %
#: points on both sides (``ln(0.82 / 0.18) = 1.5``).
MIN_EXTENT = 1.5
#: Parallel lines (1 pixel apart) averaged into each robust profile.
BAND = 1
#: The robust profile runs this many times as far outside the lesion as inside.
OUTER_RATIO = 2.0


@dataclass(frozen=True)
class SharpnessProfiles:
    """The 8 profiles one sharpness method fits, on positions shared by every image.

    Attributes
    ----------
    x : (N,) float
        Fit positions: pixels along the 5-pixel segment (``paper``), or the dimensionless
        ``u`` in [-1, 1] of :class:`advmri.metrics.edges.NormalProfiles` (``robust``).
    profiles : (8, N) float
        Intensities; NaN rows where not ``valid``.
    scale : (8,) float
        Pixels per unit of ``x`` per profile (1 for ``paper``, the half-length for ``robust``).
    valid : (8,) bool
    reason : (8,) object
        ``""`` where valid, else why not (:data:`advmri.metrics.edges.REASONS`, ``"no_edge_normal"``).
    """

    x: np.ndarray
    profiles: np.ndarray
    scale: np.ndarray
    valid: np.ndarray
    reason: np.ndarray


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise DataError(f"sharpness method {method!r} is not one of {list(METHODS)}")
    return method


def sharpness_profiles(
    image: np.ndarray,
    lesion_mask: np.ndarray,
    *,
    method: str = ROBUST,
    segment_length: float = 5.0,
    samples_per_segment: int = 21,
    interpolation_order: int = 3,
    segments=None,
) -> SharpnessProfiles:
    """The profiles :func:`sharpness` fits (``segments``: the mask's :func:`edge_segments`, if
    already found). The robust profiles have ``samples_per_segment`` samples too."""
    _check_method(method)
    image = np.asarray(image, dtype=np.float64)
    mask = np.asarray(lesion_mask)
    if image.shape != mask.shape:
        raise DataError(f"image {image.shape} and lesion mask {mask.shape} differ in shape")
    seg = (
        segments
        if segments is not None
        else edge_segments(mask, segment_length, samples_per_segment)
    )
    if method == PAPER:
        profiles = sample_profiles(image, seg, interpolation_order)
        return SharpnessProfiles(
            seg.offsets, profiles, np.ones(len(seg.valid)), seg.valid, seg.reason.copy()
        )
    normal = normal_profiles(
        mask,
        seg,
        samples=samples_per_segment,
        min_half_length=segment_length / 2,
        band=BAND,
        outer_ratio=OUTER_RATIO,
    )
    profiles = sample_profiles(image, normal, interpolation_order)
    return SharpnessProfiles(
        normal.u, profiles, normal.half_length, normal.valid, normal.reason.copy()
    )


def fit_profile_slopes(
    x: np.ndarray, profiles: np.ndarray, scale: np.ndarray, method: str = ROBUST
) -> tuple[np.ndarray, np.ndarray]:
    """Growth rates ``|S|`` (1/pixel) of a batch of sharpness profiles and why any is NaN.

    ``profiles`` (P, N) on the shared positions ``x`` with ``scale`` (P,) pixels per unit of
    ``x`` (:class:`SharpnessProfiles`); one :func:`advmri.metrics.sigmoid.fit_sigmoids` call. Returns
    ``slopes`` (P,) and ``reasons`` (P,) (``""`` where the slope is finite; the fitter's reasons,
    and for ``robust`` ``"edge_wider_than_profile"``).
    """
    _check_method(method)
    scale = np.asarray(scale, dtype=np.float64)
    if method == PAPER:
        fit = fit_sigmoids(x, profiles)
        return fit.slope, fit.reason.copy()
    fit = fit_sigmoids(x, profiles, max_slope=50.0 * scale)
    slope = fit.slope / scale
    reason = fit.reason.copy()
    # S times the distance from the edge to each end of the profile, dimensionless
    a0 = fit.params[:, 0]
    extent = fit.slope * np.minimum(a0 - x[0], x[-1] - a0)
    wide = fit.ok & ~(extent >= MIN_EXTENT)
    reason[wide] = EDGE_WIDER_THAN_PROFILE
    slope[wide] = np.nan
    return slope, reason


def sharpness_with_reason(
    image: np.ndarray,
    lesion_mask: np.ndarray,
    *,
    method: str = ROBUST,
    min_profiles: int = MIN_PROFILES,
    segment_length: float = 5.0,
    samples_per_segment: int = 21,
    interpolation_order: int = 3,
) -> MetricResult:
    """:func:`sharpness` with the number of fitted profiles and each direction's reason."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise DataError(f"image must be 2-D, got shape {image.shape}")
    return sharpness_of_stack(
        image[None],
        np.asarray(lesion_mask)[None],
        method=method,
        min_profiles=min_profiles,
        segment_length=segment_length,
        samples_per_segment=samples_per_segment,
        interpolation_order=interpolation_order,
    )[0]


def sharpness_of_stack(
    images: np.ndarray,
    lesion_masks: np.ndarray,
    *,
    method: str = ROBUST,
    min_profiles: int = MIN_PROFILES,
    segment_length: float = 5.0,
    samples_per_segment: int = 21,
    interpolation_order: int = 3,
) -> list[MetricResult]:
    """:func:`sharpness_with_reason` of every image of a stack, with one fitter call.

    Parameters
    ----------
    images : (n, H, W) float
        The images whose edges are measured.
    lesion_masks : (n, H, W) bool
        Each image's lesion (of the ground truth).
    method, min_profiles, segment_length, samples_per_segment, interpolation_order
        As for :func:`sharpness`.

    Returns
    -------
    list of MetricResult
        One per image, equal to :func:`sharpness_with_reason` of that image alone: all profiles
        are fitted in one :func:`advmri.metrics.sigmoid.fit_sigmoids` batch, whose result for a
        profile does not depend on the others in the batch.
    """
    _check_method(method)
    images = np.asarray(images)
    masks = np.asarray(lesion_masks)
    if images.ndim != 3 or images.shape != masks.shape:
        raise DataError(
            f"images {images.shape} and lesion masks {masks.shape} must be (n, H, W) stacks "
            "of one shape"
        )
    n, n_dir = images.shape[0], len(DIRECTIONS_DEG)
    reasons = np.full((n, n_dir), "", dtype=object)
    slopes = np.full((n, n_dir), np.nan)
    rows, profiles, scales, positions = [], [], [], None
    for i in range(n):
        prof = sharpness_profiles(
            images[i],
            masks[i],
            method=method,
            segment_length=segment_length,
            samples_per_segment=samples_per_segment,
            interpolation_order=interpolation_order,
        )
        reasons[i] = prof.reason
        positions = prof.x
        if prof.valid.any():
            rows.append(np.stack([np.full(prof.valid.sum(), i), np.flatnonzero(prof.valid)], 1))
            profiles.append(prof.profiles[prof.valid])
            scales.append(prof.scale[prof.valid])
    if rows:
        where = np.concatenate(rows)
        slopes[where[:, 0], where[:, 1]], reasons[where[:, 0], where[:, 1]] = fit_profile_slopes(
            positions, np.concatenate(profiles), np.concatenate(scales), method
        )
    return [_sharpness_result(slopes[i], reasons[i], method, min_profiles) for i in range(n)]


def _sharpness_result(
    slopes: np.ndarray, reasons: np.ndarray, method: str = ROBUST, min_profiles: int = MIN_PROFILES
) -> MetricResult:
    used = int(np.isfinite(slopes).sum())
    if used == 0:
        return MetricResult(np.nan, _mode_reason(reasons) or NO_VALID_PROFILE, 0, tuple(reasons))
    if used < min_profiles:
        return MetricResult(np.nan, TOO_FEW_PROFILES, used, tuple(reasons))
    value = np.nanmedian(slopes) if method == ROBUST else np.nanmean(slopes)
    return MetricResult(float(value), "", used, tuple(reasons))


def sharpness(
    image: np.ndarray,
    lesion_mask: np.ndarray,
    *,
    method: str = ROBUST,
    min_profiles: int = MIN_PROFILES,
    segment_length: float = 5.0,
    samples_per_segment: int = 21,
    interpolation_order: int = 3,
) -> float:
    """Edge sharpness of a lesion: the growth rate of sigmoids fitted across its edge.

    Both methods fit ``a1 + a2 / (1 + exp(S (a0 - x)))`` by least squares (``x`` the signed
    distance from the edge point, in pixels) to a profile of ``image`` sampled by spline
    interpolation at each of the 8 edge points of :func:`advmri.metrics.edges.edge_segments`
    (centre of mass, first exit of the ray in each principal direction).

    - ``method="paper"`` (Javadi et al. 2024 after Ahmad et al. 2015, literally): the profile is
      the ``segment_length``-pixel segment along the ray, centred on the edge point; the result
      is the mean ``|S|`` over the fitted profiles.
    - ``method="robust"`` (default): the profile runs along the edge's normal from just short of
      the lesion's medial axis (``L`` pixels inside, at least ``segment_length / 2``, at most 12)
      to ``2 L`` outside (:func:`advmri.metrics.edges.normal_profiles`,
      ``samples_per_segment`` samples); a fit whose edge is wider than the profile shows
      (``S`` times the distance from the fitted edge to either end below 1.5: the 18 %-82 %
      transition not inside it) is NaN (``"edge_wider_than_profile"``); the result is the median
      ``|S|`` over the fitted profiles.

    Parameters
    ----------
    image : (H, W) float
        The image whose edge is measured (the enhanced image).
    lesion_mask : (H, W) bool
        The lesion (of the ground truth), which places the profiles.
    method : {"robust", "paper"}
        Which profile and estimate (above).
    min_profiles : int
        How many of the 8 profiles must be fitted for a value; fewer give NaN
        (``"too_few_profiles"``). Default 4: half the lesion's directions, so one or two
        profiles that happen to fit (through noise, in a blurry image) do not stand for the edge.
    segment_length : float
        Paper segment length in pixels (5); the robust profile's shortest half-length is half of it.
    samples_per_segment : int
        Samples per profile of either method (default 21: a step of 0.25 pixel on the paper segment).
    interpolation_order : int
        Spline order of ``scipy.ndimage.map_coordinates`` (default 3, cubic: bilinear sampling
        blurs a steep edge and biases S low by several per cent).

    Returns
    -------
    float
        ``|S|`` in 1/pixel (larger is sharper; a logistic edge of width w between its 12 % and
        88 % points has ``S = 4 / w``). NaN when fewer than ``min_profiles`` profiles could be
        fitted: empty mask, segments leaving the image, lesion at the border, flat profiles,
        fits at a bound, edges wider than the robust profile.

    Notes
    -----
    Why the robust method. On the paper's 5-pixel segment a blurry edge (``S`` = 0.3/pixel, a
    13-pixel transition) shows only its nearly straight middle: the curve's slope ``a2 S / 4`` is
    measured, but ``a2`` and ``S`` trade off along it, so noise decides ``S``. The fits that noise
    makes steep converge and those it makes flat fail, and the survivors are averaged: at noise
    5 % of the edge contrast the paper's S is inflated 61-471 % for S <= 0.6
    (``benchmarks/sharpness_noise.py``). The robust method removes the degeneracy rather than
    regularising it:

    1. Both shoulders are in the profile. From the medial axis (where the lesion is as bright as
       this edge lets it be) to twice as far into the surrounding tissue, the fit sees the
       curvature of the logistic's two shoulders, which pins ``a1``, ``a2`` and with them ``S``.
       Anchoring the plateaus from fixed interior and exterior samples instead would bias ``S``
       high on small blurry lesions, whose interior never reaches the plateau (radius 8,
       ``S`` = 0.3: the centre is at 92 % of the contrast); fitting them with the rest does not.
       The profile stops short of the medial axis, where the opposite edge would fold it. The
       surrounding tissue has no such limit, and a longer outer part cuts the bias that noise
       leaves on small blurry lesions (radius 8, ``S`` = 0.3, noise 5 %: +10 to +16 % in trials
       with the outer part as long as the inner, +3 % with twice as long); twice and at most 24
       pixels rather than more keeps neighbouring structures out of real images' profiles.
    2. Along the normal. An edge's growth rate is defined across it; a ray crossing it at an
       angle alpha reads ``S cos(alpha)`` (11 % low on the diagonals of an ellipse of radii 8 and
       14). The edge points stay the paper's, so both methods measure the same 8 places.
    3. NaN rather than biased. A fit whose transition does not lie inside the profile cannot
       separate ``a2`` from ``S`` either; it is refused (``"edge_wider_than_profile"``) instead
       of averaged, and fewer than ``min_profiles`` fitted profiles give NaN.
    4. The median over the profiles, so that one profile crossing another structure does not
       move the value.

    The fit is the same 4-parameter model, in the profile's own coordinate ``u = x / L`` so that
    all profiles share sample positions and are fitted in one batch; ``S = S_u / L`` is the
    least-squares optimum in pixels, as ``scipy.optimize.curve_fit`` finds it. Noise-free
    logistic discs and ellipses of radii 8-14 are recovered within 1 % and at noise 5 % of the
    contrast the median over noise draws stays within 15 % for S in {0.3, 0.6, 1.2}
    (``tests/metrics/test_sharpness_methods.py``, ``benchmarks/sharpness_noise.py``).
    Profiles that were not fitted are left out; :func:`sharpness_with_reason` says how many
    were used and why others were not.
    """
    return sharpness_with_reason(
        image,
        lesion_mask,
        method=method,
        min_profiles=min_profiles,
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
    "sharpness_of_stack",
    "sharpness_with_reason",
    "sobel_gradients",
    "ssim_in_box",
    "ssim_in_box_with_reason",
]
