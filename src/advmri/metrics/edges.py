"""The 8 radial line segments across a lesion's edge on which sharpness and ECE are measured.

Geometry (Javadi et al. 2024 after Ahmad et al. 2015; the paper does not say how an edge point is
found, the definition here is this project's):

- Coordinates are (row, column) in pixels, pixel ``(i, j)`` centred on the integer point and
  covering ``[i - 0.5, i + 0.5) x [j - 0.5, j + 0.5)`` (the convention of
  ``scipy.ndimage.map_coordinates``).
- ``c`` is the lesion mask's centre of mass (``scipy.ndimage.center_of_mass``).
- Direction ``theta`` in {0, 45, ..., 315} degrees is measured from the +column axis towards
  the top of the displayed image: unit vector ``(d_row, d_col) = (-sin theta, cos theta)``.
- The **edge point in direction theta** is where the ray ``c + t (d_row, d_col)``, ``t >= 0``,
  first leaves the mask: the ray is walked in steps of ``step`` pixels (default 0.05), each
  point classified by the mask pixel containing it; the edge point is the midpoint between the
  last point inside and the first point outside, i.e. the crossing of the mask's pixel boundary
  to within ``step / 2``. If ``c`` itself lies outside the mask (a non-convex lesion), the ray
  must first enter the mask and then leave it.
- The **segment** is ``segment_length`` pixels long, centred on the edge point, along theta;
  it is sampled at ``samples`` equally spaced points with signed offsets ``x`` from
  ``-segment_length / 2`` (inside the lesion) to ``+segment_length / 2`` (outside).

A direction yields no segment (NaN profile) for one of the reasons in :data:`REASONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from advmri.errors import DataError

DIRECTIONS_DEG = np.arange(0, 360, 45)

EMPTY_MASK = "empty_mask"
LESION_AT_BORDER = "lesion_at_border"
NO_EDGE = "no_edge_in_direction"
SEGMENT_OUTSIDE = "segment_outside_image"

#: Why a direction has no segment: the mask is empty; the ray reaches the image border while
#: still inside the mask; the ray never meets the mask; the segment leaves the image.
REASONS = (EMPTY_MASK, LESION_AT_BORDER, NO_EDGE, SEGMENT_OUTSIDE)


@dataclass(frozen=True)
class EdgeSegments:
    """The 8 segments of one lesion.

    Attributes
    ----------
    centre : (2,) float
        Centre of mass (row, col) of the mask; NaN for an empty mask.
    edge_points : (8, 2) float
        Edge point (row, col) per direction; NaN where none was found.
    offsets : (N,) float
        Signed distance (pixels) of each sample from the edge point, negative inside the lesion.
    coords : (8, N, 2) float
        Sample positions (row, col); NaN rows where ``valid`` is False.
    valid : (8,) bool
        True where the segment exists and lies inside the image.
    reason : (8,) object
        ``""`` where valid, else one of :data:`REASONS`.
    """

    centre: np.ndarray
    edge_points: np.ndarray
    offsets: np.ndarray
    coords: np.ndarray
    valid: np.ndarray
    reason: np.ndarray


def directions() -> np.ndarray:
    """Unit vectors (8, 2) as (d_row, d_col) for 0, 45, ..., 315 degrees (see module doc)."""
    theta = np.deg2rad(DIRECTIONS_DEG)
    unit = np.stack([-np.sin(theta), np.cos(theta)], axis=1)
    return np.where(np.abs(unit) < 1e-12, 0.0, unit)  # exact zeros on the axes


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise DataError(f"lesion mask must be a 2-D array, got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def edge_segments(
    lesion_mask: np.ndarray,
    segment_length: float = 5.0,
    samples: int = 21,
    step: float = 0.05,
) -> EdgeSegments:
    """Find the 8 edge points of a lesion and the segments across them (see module doc).

    Parameters
    ----------
    lesion_mask : (H, W) bool
        The lesion; several components are treated as one lesion (one centre of mass).
    segment_length : float
        Length of each segment in pixels (the paper's 5 units).
    samples : int
        Samples per segment, at least 5 (the 4-parameter fit needs more points than
        parameters).
    step : float
        Ray-walking step in pixels; the edge point is exact to ``step / 2``.

    Returns
    -------
    EdgeSegments
        Never raises for a valid 2-D mask: an empty mask, a lesion at the image border or a
        segment leaving the image give invalid directions with their reason.
    """
    mask = _check_mask(lesion_mask)
    if samples < 5:
        raise DataError(f"samples per segment must be at least 5, got {samples}")
    if not segment_length > 0:
        raise DataError(f"segment length must be positive, got {segment_length}")
    height, width = mask.shape
    offsets = np.linspace(-segment_length / 2, segment_length / 2, samples)
    n_dir = len(DIRECTIONS_DEG)
    edge_points = np.full((n_dir, 2), np.nan)
    coords = np.full((n_dir, samples, 2), np.nan)
    reason = np.full(n_dir, "", dtype=object)
    if not mask.any():
        reason[:] = EMPTY_MASK
        return EdgeSegments(
            np.full(2, np.nan), edge_points, offsets, coords, np.zeros(n_dir, bool), reason
        )

    centre = np.asarray(ndimage.center_of_mass(mask), dtype=np.float64)
    rows, cols = np.nonzero(mask)
    # The ray has left the mask for good once it is farther from c than every mask pixel's
    # farthest corner; one more pixel ensures the first outside point is reached.
    reach = np.sqrt(
        ((np.abs(rows - centre[0]) + 0.5) ** 2 + (np.abs(cols - centre[1]) + 0.5) ** 2).max()
    )
    t = np.arange(0.0, reach + 1.0 + step, step)
    unit = directions()
    pts = centre[None, None, :] + t[None, :, None] * unit[:, None, :]  # (8, T, 2)
    pix = np.floor(pts + 0.5).astype(np.int64)
    in_image = (
        (pix[..., 0] >= 0) & (pix[..., 0] < height) & (pix[..., 1] >= 0) & (pix[..., 1] < width)
    )
    inside = np.zeros(in_image.shape, dtype=bool)
    inside[in_image] = mask[pix[..., 0][in_image], pix[..., 1][in_image]]

    for d in range(n_dir):
        ins, img = inside[d], in_image[d]
        entered = np.flatnonzero(ins)
        if entered.size == 0:
            reason[d] = NO_EDGE
            continue
        # The walk goes past the mask's reach, so it always ends outside the mask.
        first_out = entered[0] + np.flatnonzero(~ins[entered[0] :])[0]
        if not img[first_out]:  # left the image while inside the mask
            reason[d] = LESION_AT_BORDER
            continue
        edge = 0.5 * (pts[d, first_out - 1] + pts[d, first_out])
        edge_points[d] = edge
        seg = edge[None, :] + offsets[:, None] * unit[d][None, :]
        if (
            (seg < -1e-9).any()
            or (seg[:, 0] > height - 1 + 1e-9).any()
            or (seg[:, 1] > width - 1 + 1e-9).any()
        ):
            reason[d] = SEGMENT_OUTSIDE
            continue
        coords[d] = seg
    return EdgeSegments(centre, edge_points, offsets, coords, reason == "", reason)


def sample_profiles(
    image: np.ndarray, segments: EdgeSegments | NormalProfiles, order: int = 3
) -> np.ndarray:
    """Intensity profiles (8, N) of ``image`` along ``segments``; NaN rows for invalid ones.

    Sampling is spline interpolation of the given ``order`` (3: cubic, the default; 1:
    bilinear) by ``scipy.ndimage.map_coordinates`` on the whole image (so the spline's
    prefilter sees the true neighbourhood), in the image's intensity units.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise DataError(f"image must be a 2-D array, got shape {image.shape}")
    if not 0 <= order <= 5:
        raise DataError(f"interpolation order must be 0-5, got {order}")
    coords = segments.coords
    n_dir, n = coords.shape[0], coords.shape[-2]
    out = np.full((n_dir, n), np.nan)
    if segments.valid.any():
        pts = coords[segments.valid].reshape(-1, 2).T
        values = ndimage.map_coordinates(image, pts, order=order, mode="nearest")
        # a band of parallel lines (coords (8, B, N, 2)) gives the mean profile of its lines
        out[segments.valid] = values.reshape(-1, int(np.prod(coords.shape[1:-1])) // n, n).mean(1)
    return out


#: Why a direction has no long (robust-method) profile besides :data:`REASONS`.
NO_NORMAL = "no_edge_normal"
#: The depth of a lesion along its inward normal is the largest distance-transform value on it
#: less this margin (pixels; see :func:`normal_profiles`).
DEPTH_MARGIN = 0.5


@dataclass(frozen=True)
class NormalProfiles:
    """Long profiles across a lesion's edge along its normal (the robust sharpness method).

    Attributes
    ----------
    u : (N,) float
        Shared sample positions in ``[-1, outer_ratio]``; sample ``k`` of direction ``d`` lies
        ``u[k] * half_length[d]`` pixels from the edge point along the outward normal.
    half_length : (8,) float
        The profile's inward length ``L`` in pixels (it runs from ``-L`` to ``outer_ratio * L``);
        NaN where not ``valid``.
    normals : (8, 2) float
        Outward unit normal (d_row, d_col) at each edge point; NaN where there is none.
    coords : (8, band, N, 2) float
        Sample positions (row, col) of each line of the band; NaN where not ``valid``.
    valid : (8,) bool
        True where the profile exists and lies inside the image.
    reason : (8,) object
        ``""`` where valid, else one of :data:`REASONS` or ``"no_edge_normal"``.
    """

    u: np.ndarray
    half_length: np.ndarray
    normals: np.ndarray
    coords: np.ndarray
    valid: np.ndarray
    reason: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        """(8, N) signed distances (pixels) of the samples from the edge point, negative inside."""
        return self.u[None, :] * self.half_length[:, None]


def normal_profiles(
    lesion_mask: np.ndarray,
    segments: EdgeSegments,
    *,
    samples: int = 21,
    min_half_length: float = 2.5,
    reach: float = 12.0,
    normal_sigma: float = 1.5,
    step: float = 0.25,
    band: int = 1,
    outer_ratio: float = 1.0,
) -> NormalProfiles:
    """Long profiles through the 8 edge points of ``segments``, along the mask's edge normal.

    Geometry (this project's definition, argued in :func:`advmri.metrics.lesion.sharpness`):

    - The **normal** at an edge point is minus the gradient of the mask smoothed by a Gaussian
      of ``normal_sigma`` pixels (linear interpolation at the point), normalised; where it
      vanishes or points into the lesion side of the ray (dot product with the ray direction
      at most 0), the direction has no profile (``"no_edge_normal"``).
    - The **depth** of the lesion at the edge point is how far the inward normal runs before it
      crosses the lesion's medial axis: the largest value of the mask's Euclidean distance
      transform (sampled linearly every ``step`` pixels up to ``reach`` along the inward normal),
      less 0.5 pixel (:data:`DEPTH_MARGIN`). Up to the axis a point ``t`` inside lies ``t`` from
      the edge, past it the opposite edge is nearer, so the largest distance on the normal is
      the axis's depth; the transform, measured to background pixel centres, reads about
      half a pixel more. Samples past the axis would belong to the opposite edge and fold the profile.
    - The profile runs ``L = clip(depth, min_half_length, reach)`` pixels inwards and
      ``outer_ratio * L`` outwards into the surrounding tissue (one fixed ratio, so all profiles
      share the positions ``u`` up to their scale ``L``), shortened where the outward part would
      re-enter the mask or any part leave the image. It is sampled at ``samples`` equally spaced
      points; with ``band > 1`` it is the mean of ``band`` parallel lines 1 pixel apart.
    - A profile shorter than ``min_half_length`` on either side is invalid with the reason of
      what stopped it (``"segment_outside_image"``; re-entering the mask shortens it only down to
      ``min_half_length``).

    Parameters
    ----------
    lesion_mask : (H, W) bool
        The lesion mask the segments were found on.
    segments : EdgeSegments
        From :func:`edge_segments` (their edge points and validity are reused).
    samples : int
        Samples per profile (at least 5).
    min_half_length, reach : float
        Bounds on the inward length ``L`` in pixels.
    band : int
        Parallel lines averaged per profile (1: the line alone; more lines lower the noise but
        bias curved edges).
    outer_ratio : float
        Outward length over inward length.
    normal_sigma : float
        Smoothing (pixels) of the mask before its gradient is taken.
    step : float
        Walking step (pixels) for the depth and the re-entry search.

    Returns
    -------
    NormalProfiles
        Never raises for a valid mask; a direction invalid in ``segments`` is invalid here with
        the same reason, except that a 5-pixel segment leaving the image is re-examined.
    """
    mask = _check_mask(lesion_mask)
    if samples < 5:
        raise DataError(f"samples per profile must be at least 5, got {samples}")
    height, width = mask.shape
    n_dir = len(DIRECTIONS_DEG)
    u = np.linspace(-1.0, outer_ratio, samples)
    half = np.full(n_dir, np.nan)
    normals = np.full((n_dir, 2), np.nan)
    coords = np.full((n_dir, band, samples, 2), np.nan)
    reason = segments.reason.copy()
    has_point = np.isfinite(segments.edge_points).all(axis=1)
    reason[has_point] = ""
    if not has_point.any():
        return NormalProfiles(u, half, normals, coords, np.zeros(n_dir, bool), reason)

    points = segments.edge_points[has_point]
    smooth = ndimage.gaussian_filter(mask.astype(np.float64), normal_sigma)
    grads = np.stack([ndimage.sobel(smooth, axis=a, mode="nearest") / 8.0 for a in (0, 1)])
    grad = np.stack(
        [ndimage.map_coordinates(g, points.T, order=1, mode="nearest") for g in grads], axis=1
    )
    norm = np.hypot(grad[:, 0], grad[:, 1])
    outward = -grad / np.where(norm > 0, norm, 1.0)[:, None]
    ray = directions()[has_point]
    good = (norm > 1e-6) & ((outward * ray).sum(axis=1) > 0)

    # depth: where the distance transform peaks along the inward normal
    edt = ndimage.distance_transform_edt(mask)
    t = np.arange(0.0, reach + step / 2, step)
    inward = points[:, None, :] - t[None, :, None] * outward[:, None, :]  # (K, T, 2)
    inside_img = (
        (inward[..., 0] >= 0)
        & (inward[..., 0] <= height - 1)
        & (inward[..., 1] >= 0)
        & (inward[..., 1] <= width - 1)
    )
    depth_values = ndimage.map_coordinates(
        edt, inward.reshape(-1, 2).T, order=1, mode="nearest"
    ).reshape(inward.shape[:2])
    depth_values = np.where(inside_img, depth_values, -1.0)
    # Up to the medial axis a point t inside lies t from the edge; past it the distance falls.
    # So the axis lies as deep as the largest distance met along the normal. The transform,
    # measured to background pixel centres, reads 0-1 pixel more than the distance to the edge,
    # hence the margin.
    depth = depth_values.max(axis=1) - DEPTH_MARGIN

    # outward: stop before the line re-enters the mask
    t_out = np.arange(0.0, outer_ratio * reach + step / 2, step)
    outer = points[:, None, :] + t_out[None, :, None] * outward[:, None, :]
    pix = np.floor(outer + 0.5).astype(np.int64)
    in_image = (
        (pix[..., 0] >= 0) & (pix[..., 0] < height) & (pix[..., 1] >= 0) & (pix[..., 1] < width)
    )
    hit = np.zeros(in_image.shape, dtype=bool)
    hit[in_image] = mask[pix[..., 0][in_image], pix[..., 1][in_image]]
    hit[:, t_out < 1.0] = False  # the edge point's own neighbourhood
    reenter = np.where(hit.any(axis=1), t_out[np.argmax(hit, axis=1)] - 1.0, np.inf)

    # room: how far every line of the band may go either way and stay inside the image
    tangent = np.stack([-outward[:, 1], outward[:, 0]], axis=1)
    shifts = np.arange(band) - (band - 1) / 2.0  # pixels along the tangent
    limits = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for h in shifts:
            start = points + h * tangent
            for sign in (1.0, -1.0):
                vec = sign * outward
                for axis, size in ((0, height - 1), (1, width - 1)):
                    dist = np.where(
                        vec[:, axis] > 0,
                        (size - start[:, axis]) / vec[:, axis],
                        np.where(vec[:, axis] < 0, -start[:, axis] / vec[:, axis], np.inf),
                    )
                    dist = np.where(np.isfinite(dist), dist, np.inf)
                    limits.append(dist / outer_ratio if sign > 0 else dist)
    room = np.min(np.stack(limits), axis=0)

    length = np.minimum(
        np.clip(depth, min_half_length, reach),
        np.maximum(reenter / outer_ratio, min_half_length),
    )
    length = np.minimum(length, room)
    k_reason = np.full(points.shape[0], "", dtype=object)
    k_reason[~good] = NO_NORMAL
    k_reason[good & (length < min_half_length - 1e-9)] = SEGMENT_OUTSIDE
    ok = k_reason == ""
    sel = np.flatnonzero(has_point)
    reason[sel] = k_reason
    normals[sel[good]] = outward[good]
    half[sel[ok]] = length[ok]
    line = (u[None, :, None] * length[ok][:, None, None]) * outward[ok][:, None, :]  # (K, N, 2)
    across = shifts[None, :, None] * tangent[ok][:, None, :]  # (K, B, 2)
    coords[sel[ok]] = points[ok][:, None, None, :] + across[:, :, None, :] + line[:, None, :, :]
    valid = reason == ""
    return NormalProfiles(u, half, normals, coords, valid, reason)
