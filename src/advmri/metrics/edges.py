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


def sample_profiles(image: np.ndarray, segments: EdgeSegments, order: int = 3) -> np.ndarray:
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
    out = np.full(segments.coords.shape[:2], np.nan)
    if segments.valid.any():
        pts = segments.coords[segments.valid].reshape(-1, 2).T
        values = ndimage.map_coordinates(image, pts, order=order, mode="nearest")
        out[segments.valid] = values.reshape(-1, segments.coords.shape[1])
    return out
