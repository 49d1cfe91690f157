"""Voxel grids of the study: where a scan's axial slices fall on the networks' 208 x 176 grid.

The networks of the study were trained on axial slices of 208 rows x 176 columns (anterior up,
patient left on the left, 1 mm pixels). This module holds the geometry that brings any voxel grid
to that picture and back, shared by every reader of users' scans (``advmri enhance``, the NIfTI
anatomy source): the RAS+ orientation of a volume's voxel axes (:func:`ras_frame`), its axial
slices as images (:func:`axial_stack`), and the in-plane resampling to 1 mm pixels with the centre
crop or zero pad onto the grid (:class:`SliceMap`). See :mod:`advmri.enhance` for the conventions
in full (orientation, pixel size, field of view).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from nibabel.affines import voxel_sizes
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation

from advmri.data.anatomy import IMAGE_SHAPE
from advmri.errors import DataError

#: Rows x columns the networks were trained on (anterior up, patient left on the left).
GRID_SHAPE: tuple[int, int] = IMAGE_SHAPE
#: Pixel size of the training slices, mm (MNI152 1 mm template, OASIS T88 atlas space).
PIXEL_MM = 1.0
#: Relative difference from the target pixel size below which an axis is not resampled (1 %).
PIXEL_TOLERANCE = 0.01
#: Largest in-plane voxel size, mm, accepted (the networks see 1 mm pixels).
MAX_VOXEL_MM = 8.0
#: Smallest side, in pixels, of a slice after resampling to the target pixel size.
MIN_SIDE = 16

RAS = axcodes2ornt("RAS")
#: Gaussian kernels reach ``truncate`` standard deviations, as scipy.ndimage's (and skimage's).
_GAUSSIAN_TRUNCATE = 4.0


class GeometryError(DataError):
    """A voxel grid (affine, voxel size, slice size) that cannot be brought onto the grid; one line."""


def interpolation_matrix(n_in: int, coordinates: np.ndarray, sigma: float = 0.0) -> np.ndarray:
    """Linear interpolation of a 1-D signal of ``n_in`` samples, as a matrix.

    Parameters
    ----------
    n_in : int
        Samples of the input signal.
    coordinates : (m,) float array
        Where to interpolate, in input pixel-centre units (0 = centre of the first sample);
        clamped to ``[0, n_in - 1]``, i.e. edge samples repeated beyond the border.
    sigma : float
        Standard deviation, in input pixels, of a Gaussian applied first (the kernel reaching 4
        sigma, edge samples repeated: ``scipy.ndimage.gaussian_filter1d(mode="nearest")``); 0 for
        none.

    Returns
    -------
    (m, n_in) float32 array
        ``M @ x`` is the filtered signal ``x`` interpolated at ``coordinates``; each row sums to 1,
        and a row at a whole coordinate with ``sigma == 0`` picks one sample exactly.
    """
    coordinates = np.clip(np.asarray(coordinates, dtype=np.float64), 0.0, n_in - 1)
    below = np.floor(coordinates).astype(np.intp)
    above = np.minimum(below + 1, n_in - 1)
    weight = coordinates - below
    if sigma > 0:
        radius = int(_GAUSSIAN_TRUNCATE * sigma + 0.5)
        taps = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 * (taps / sigma) ** 2)
        kernel /= kernel.sum()
    else:
        taps, kernel = np.zeros(1, dtype=np.intp), np.ones(1)
    matrix = np.zeros((len(coordinates), n_in))
    rows = np.arange(len(coordinates))[:, None]
    for index, share in ((below, 1.0 - weight), (above, weight)):
        columns = np.clip(index[:, None] + taps[None, :], 0, n_in - 1)
        np.add.at(matrix, (rows, columns), share[:, None] * kernel[None, :])
    return matrix.astype(np.float32)


@dataclass(frozen=True)
class AxisMap:
    """One in-plane axis of a slice (rows or columns) on its way to the grid and back.

    Attributes
    ----------
    size : int
        Pixels along the axis as read.
    mm : float
        Their size (the affine's voxel size along this axis).
    resampled : int
        Pixels after resampling to the target pixel size (``size`` when within tolerance).
    grid : int
        The grid's side along this axis (208 rows or 176 columns).
    """

    size: int
    mm: float
    resampled: int
    grid: int

    @property
    def start(self) -> int:
        """First resampled pixel kept (the centre crop, as ``center_crop_or_pad``); 0 if padded."""
        return max(self.resampled - self.grid, 0) // 2

    @property
    def kept(self) -> int:
        """Resampled pixels inside the field of view."""
        return min(self.resampled, self.grid)

    @property
    def offset(self) -> int:
        """Where the kept pixels start on the grid (the centred zero padding); 0 if cropped."""
        return max(self.grid - self.resampled, 0) // 2

    @property
    def inside(self) -> slice:
        """Input pixels whose centres fall inside the field of view (enhanced; the rest copied)."""
        centres = (np.arange(self.size) + 0.5) * (self.resampled / self.size)
        inside = np.flatnonzero((centres >= self.start) & (centres < self.start + self.kept))
        return slice(int(inside[0]), int(inside[-1]) + 1)

    def forward(self) -> np.ndarray:
        """``(kept, size)`` matrix: input pixels -> the kept resampled pixels."""
        factor = self.size / self.resampled
        centres = np.arange(self.start, self.start + self.kept)
        return interpolation_matrix(
            self.size, (centres + 0.5) * factor - 0.5, sigma=max(0.0, (factor - 1) / 2)
        )

    def backward(self) -> np.ndarray:
        """``(len(inside), kept)`` matrix: the kept resampled pixels -> the inside input pixels."""
        factor = self.resampled / self.size
        inside = self.inside
        centres = np.arange(inside.start, inside.stop)
        return interpolation_matrix(
            self.kept,
            (centres + 0.5) * factor - 0.5 - self.start,
            sigma=max(0.0, (factor - 1) / 2),
        )


@dataclass(frozen=True)
class SliceMap:
    """How an ``H x W`` axial slice of given pixel size maps onto the network's grid.

    ``rows`` runs anterior -> posterior, ``cols`` left -> right (see the module's notes).
    """

    rows: AxisMap
    cols: AxisMap
    pixel_mm: float = PIXEL_MM

    @property
    def shape(self) -> tuple[int, int]:
        """The slice as read, ``(H, W)``."""
        return self.rows.size, self.cols.size

    @property
    def pixel(self) -> tuple[float, float]:
        """Its pixel size, mm: ``(rows, columns)``."""
        return self.rows.mm, self.cols.mm

    @property
    def resampled(self) -> tuple[int, int]:
        """The slice's size at ``pixel_mm`` (``shape`` when no axis is resampled)."""
        return self.rows.resampled, self.cols.resampled

    @property
    def grid(self) -> tuple[int, int]:
        return self.rows.grid, self.cols.grid

    @property
    def inside(self) -> tuple[slice, slice]:
        """Rows and columns of the slice as read that are enhanced; the rest is copied."""
        return self.rows.inside, self.cols.inside

    @property
    def cropped(self) -> bool:
        """True when part of the slice lies outside the field of view (copied, not enhanced)."""
        return any(a.resampled > a.grid for a in (self.rows, self.cols))

    def describe(self) -> str:
        """One phrase for logs: ``233 x 197 px of 1 x 1 mm, centre-cropped to 208 x 176 ...``."""
        h, w = self.shape
        rows, cols = self.grid
        text = f"{h} x {w} px of {self.rows.mm:.3g} x {self.cols.mm:.3g} mm"
        if self.resampled != self.shape:
            text += (
                f", resampled to {self.resampled[0]} x {self.resampled[1]} px of "
                f"{self.pixel_mm:g} mm (linear)"
            )
        padded = any(a.resampled < a.grid for a in (self.rows, self.cols))
        if self.cropped:
            text += f", centre-{'cropped/padded' if padded else 'cropped'} to {rows} x {cols}"
            text += " (outside that the input is copied)"
        elif padded:
            text += f", zero-padded to {rows} x {cols}"
        elif self.resampled == self.shape:
            text += ", as is"
        return text

    @classmethod
    def plan(
        cls,
        shape: tuple[int, int],
        pixel: tuple[float, float],
        pixel_mm: float = PIXEL_MM,
        grid: tuple[int, int] = GRID_SHAPE,
    ) -> SliceMap:
        """The map of an ``H x W`` slice of ``pixel`` = (row, column) mm pixels onto ``grid``.

        Raises
        ------
        GeometryError
            ``pixel_mm`` or a pixel size not finite, not positive or above :data:`MAX_VOXEL_MM`;
            a side below :data:`MIN_SIDE` pixels after resampling.
        """
        check_pixel_mm(pixel_mm)
        h, w = (int(n) for n in shape)
        rmm, cmm = (float(s) for s in pixel)
        what = (
            f"axial slices of {h} x {w} pixels of {rmm:.4g} x {cmm:.4g} mm (rows A-P x columns L-R)"
        )
        if not all(math.isfinite(s) and 0 < s <= MAX_VOXEL_MM for s in (rmm, cmm)):
            raise GeometryError(
                f"{what}: an in-plane voxel size is not a number in (0, {MAX_VOXEL_MM:g}] mm; "
                "check the affine (pixdim, qform/sform) or resample the scan first"
            )
        axes = []
        for size, mm, side in ((h, rmm, grid[0]), (w, cmm, grid[1])):
            if abs(mm / pixel_mm - 1) <= PIXEL_TOLERANCE:
                resampled = size
            else:
                resampled = max(round(size * mm / pixel_mm), 1)
            axes.append(AxisMap(size=size, mm=mm, resampled=resampled, grid=side))
        rows, cols = axes
        if min(rows.resampled, cols.resampled) < MIN_SIDE:
            raise GeometryError(
                f"{what} are {rows.resampled} x {cols.resampled} pixels at {pixel_mm:g} mm, a side "
                f"below {MIN_SIDE}; is the volume a stack of few sagittal or coronal slices, or "
                "are its voxel sizes wrong?"
            )
        return cls(rows=rows, cols=cols, pixel_mm=float(pixel_mm))

    def to_grid(self, slices: np.ndarray, low: float = 0.0, span: float = 1.0) -> np.ndarray:
        """``(N, H, W)`` finite slices -> ``(N, rows, cols)`` float32 network inputs.

        Each slice is resampled to ``pixel_mm``, its field of view scaled ``(x - low) / span``
        and clipped to [0, 1], and centred on a zero grid (a centre crop or zero pad).
        """
        out = np.zeros((slices.shape[0], *self.grid), dtype=np.float32)
        r0, c0 = self.rows.offset, self.cols.offset
        target = out[:, r0 : r0 + self.rows.kept, c0 : c0 + self.cols.kept]
        separable(slices, self.rows.forward(), self.cols.forward(), target)
        target -= np.float32(low)
        target /= np.float32(span)
        np.clip(target, 0.0, 1.0, out=target)
        return out

    def from_grid(self, slices: np.ndarray) -> np.ndarray:
        """``(N, rows, cols)`` grid slices -> their field of view at the input's pixels.

        Returns ``(N, h, w)`` float32 for the input pixels :attr:`inside` the field of view, on
        the grid's intensity scale: the inverse of :meth:`to_grid`'s resampling (exact where no
        axis is resampled).
        """
        r0, c0 = self.rows.offset, self.cols.offset
        window = slices[:, r0 : r0 + self.rows.kept, c0 : c0 + self.cols.kept]
        rows, cols = self.rows.backward(), self.cols.backward()
        out = np.empty((slices.shape[0], rows.shape[0], cols.shape[0]), dtype=np.float32)
        separable(window, rows, cols, out)
        return out


def separable(slices: np.ndarray, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = rows @ slices[k] @ cols.T`` in float32, a few slices at a time.

    Each chunk is made contiguous first so that the products run in BLAS (strided views, as the
    reoriented volume is, would not), without a copy of the whole volume.
    """
    chunk = 16
    for start in range(0, slices.shape[0], chunk):
        block = np.ascontiguousarray(slices[start : start + chunk], dtype=np.float32)
        out[start : start + chunk] = np.matmul(np.matmul(rows, block), cols.T)


def check_pixel_mm(pixel_mm: float) -> None:
    """GeometryError unless ``pixel_mm`` (``--pixel-mm``) is a number in (0, MAX_VOXEL_MM]."""
    real = isinstance(pixel_mm, numbers.Real) and not isinstance(pixel_mm, bool)
    if not (real and 0 < pixel_mm <= MAX_VOXEL_MM):
        raise GeometryError(
            f"--pixel-mm {pixel_mm!r} must be a number in (0, {MAX_VOXEL_MM:g}] mm "
            f"(the networks of the study saw {PIXEL_MM:g} mm pixels)"
        )


def axial_stack(data: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """``(Z, H, W)`` view of a volume's RAS axial slices, as :func:`~advmri.data.anatomy.axial_slab`."""
    ras = apply_orientation(data, orientation)  # (X, Y, Z), RAS+
    # slice z, voxel (x, y) -> image (row, col): rows = y reversed (anterior up), cols = x
    # (patient left first)
    return ras[:, ::-1, :].transpose(2, 1, 0)


def ras_frame(affine: np.ndarray, name: str = "the volume") -> tuple[np.ndarray, np.ndarray]:
    """A volume's voxel axes in RAS terms and its voxel sizes along R, A and S.

    Parameters
    ----------
    affine : (4, 4) array
        The voxel-to-world affine (NIfTI qform/sform).
    name : str
        How error messages call the volume (its path).

    Returns
    -------
    orientation : (3, 2) array
        ``nibabel.orientations.io_orientation`` of the affine (for :func:`axial_stack`).
    ras_mm : (3,) array
        Voxel sizes, mm, along R, A and S (the affine's, permuted as the axes are).

    Raises
    ------
    GeometryError
        NaN or inf in the affine; an affine without orientation (zero or singular).
    """
    affine = np.asarray(affine, dtype=np.float64)
    if not np.isfinite(affine).all():
        raise GeometryError(
            f"{name}: its affine holds NaN or inf values (the header's qform/sform); "
            "set a valid qform/sform first"
        )
    orientation = io_orientation(affine)
    if np.isnan(orientation).any():
        raise GeometryError(
            f"{name}: its affine has no usable orientation (a zero or singular matrix); "
            "set the qform/sform first"
        )
    ras_mm = np.empty(3)
    ras_mm[orientation[:, 0].astype(int)] = voxel_sizes(affine)
    return orientation, ras_mm
