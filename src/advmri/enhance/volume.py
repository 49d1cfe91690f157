"""A volume's axial slices on the network's grid and back: orientation, pixel size, field of view
and intensity scaling (steps 1-4 of :mod:`advmri.enhance`); the voxel-grid geometry itself is
:mod:`advmri.data.geometry`'s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, ornt_transform
from nibabel.spatialimages import HeaderDataError

from advmri.data.geometry import (
    PIXEL_MM,
    RAS,
    GeometryError,
    SliceMap,
    axial_stack,
    check_pixel_mm,
    ras_frame,
)
from advmri.enhance.errors import EnhanceError, first_line

#: Percentiles of the intensity limits: low over all finite voxels, high over the non-zero ones.
INTENSITY_PERCENTILES: tuple[float, float] = (0.5, 99.5)


def intensity_limits(
    data: np.ndarray, percentiles: Sequence[float] = INTENSITY_PERCENTILES
) -> tuple[float, float]:
    """The ``(low, high)`` intensities a volume's ``[0, 1]`` scaling maps to 0 and 1.

    Parameters
    ----------
    data : array
        The volume; non-finite voxels are ignored.
    percentiles : (p_low, p_high)
        ``low`` is the ``p_low``-th percentile of all finite voxels (the background level), ``high``
        the ``p_high``-th percentile of the finite non-zero voxels (the brightest tissue); see the
        module's notes. ``(0, 100)`` gives the minimum and the maximum (of a volume with a positive
        voxel).

    Returns
    -------
    (float, float)
        ``low <= high``; ``high`` falls back to the maximum when the percentile is not above
        ``low``, and equals ``low`` only for a constant volume.

    Raises
    ------
    EnhanceError
        Percentiles not ``0 <= p_low < p_high <= 100``; no finite voxel.
    """
    p_low, p_high = check_percentiles(percentiles)
    values = data[np.isfinite(data)]
    if values.size == 0:
        raise EnhanceError("no voxel is finite (all are NaN or inf)")
    low = float(np.percentile(values, p_low))
    nonzero = values[values != 0]
    high = float(np.percentile(nonzero, p_high)) if nonzero.size else low
    if not high > low:
        high = float(values.max())
    return low, high


def check_percentiles(percentiles: Sequence[float]) -> tuple[float, float]:
    """``--intensity-percentiles LOW HIGH`` as two floats; EnhanceError unless 0 <= LOW < HIGH <= 100."""
    try:
        p_low, p_high = (float(p) for p in percentiles)
    except (TypeError, ValueError) as error:
        raise EnhanceError(
            f"--intensity-percentiles {percentiles!r} must be two numbers LOW HIGH"
        ) from error
    if not 0 <= p_low < p_high <= 100:
        raise EnhanceError(
            f"--intensity-percentiles {p_low:g} {p_high:g} must satisfy 0 <= LOW < HIGH <= 100 "
            f"(default {INTENSITY_PERCENTILES[0]:g} {INTENSITY_PERCENTILES[1]:g})"
        )
    return p_low, p_high


@dataclass(frozen=True)
class GridVolume:
    """A volume's axial slices on the grid, with what :func:`grid_to_volume` needs to undo it.

    Attributes
    ----------
    slices : (Z, 208, 176) float32
        Axial slices inferior -> superior, in [0, 1] (the volume's scaling, clipped).
    slice_map : SliceMap
        How each slice sits on the grid.
    low, high : float
        The intensity limits (:func:`intensity_limits`), undone on the way back.
    shape : tuple
        The input's data shape (3-D, or 4-D with a trailing 1).
    orientation : (3, 2) array
        ``io_orientation`` of the input's affine: its voxel axes in terms of RAS.
    """

    slices: np.ndarray
    slice_map: SliceMap
    low: float
    high: float
    shape: tuple[int, ...]
    orientation: np.ndarray

    @property
    def span(self) -> float:
        """``high - low``, or 1 for a constant volume (so the scaling stays invertible)."""
        return self.high - self.low if self.high > self.low else 1.0


def volume_array(image: nib.spatialimages.SpatialImage, name: str) -> np.ndarray:
    """The image's voxels as a float32 3-D array (nibabel's cached copy: do not modify it).

    A trailing axis of length 1 is dropped.
    """
    shape = tuple(image.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        extra = f" with {shape[3]} volumes" if len(shape) == 4 else ""
        raise EnhanceError(
            f"{name} is {len(shape)}-D{extra} (shape {tuple(image.shape)}); enhance takes one 3-D "
            "volume (4-D with a single volume is accepted)"
        )
    try:
        data = image.get_fdata(dtype=np.float32)
    except Exception as error:  # truncated files, unsupported dtypes: many types, one meaning
        raise EnhanceError(
            f"{name}: cannot read its voxels ({type(error).__name__}: {first_line(error)})"
        ) from error
    return data.reshape(shape)


def volume_to_grid(
    image: nib.spatialimages.SpatialImage,
    name: str = "the volume",
    pixel_mm: float = PIXEL_MM,
    intensity_percentiles: Sequence[float] = INTENSITY_PERCENTILES,
) -> GridVolume:
    """The axial slices of ``image`` on the network's grid, oriented, sized and scaled as in training.

    Parameters
    ----------
    image : nibabel image
        A 3-D volume (or 4-D with one volume), any voxel order and in-plane voxel size up to
        :data:`MAX_VOXEL_MM`.
    name : str
        How error messages call the volume (its path).
    pixel_mm : float
        The pixel size the slices are resampled to (the networks': 1 mm).
    intensity_percentiles : (p_low, p_high)
        Of the intensity limits (:func:`intensity_limits`).

    Returns
    -------
    GridVolume
        ``slices[k]`` is RAS axial slice ``k`` (0 = inferior) as rows anterior -> posterior,
        columns left -> right, resampled to ``pixel_mm`` pixels, centre-cropped or zero-padded to
        208 x 176, in [0, 1].

    Raises
    ------
    EnhanceError
        Not 3-D, unreadable voxels, an affine with NaN/inf or without orientation, an absurd voxel
        size, slices too small (:meth:`SliceMap.plan`), no finite voxel.
    """
    try:
        check_pixel_mm(pixel_mm)
        orientation, ras_mm = ras_frame(image.affine, name)
    except GeometryError as error:  # one error class for the command's callers
        raise EnhanceError(str(error)) from error
    check_percentiles(intensity_percentiles)
    data = volume_array(image, name)
    stack_shape = axial_stack(data, orientation).shape
    try:
        slice_map = SliceMap.plan(stack_shape[1:], (ras_mm[1], ras_mm[0]), pixel_mm)
        low, high = intensity_limits(data, intensity_percentiles)
    except GeometryError as error:
        raise EnhanceError(f"{name}: {error}") from error
    finite = np.isfinite(data)
    if not finite.all():
        data = np.where(finite, data, np.float32(low))
    del finite
    span = high - low if high > low else 1.0
    return GridVolume(
        slices=slice_map.to_grid(axial_stack(data, orientation), low, span),
        slice_map=slice_map,
        low=low,
        high=high,
        shape=tuple(image.shape),
        orientation=orientation,
    )


def grid_to_volume(
    slices: np.ndarray, grid: GridVolume, like: nib.spatialimages.SpatialImage
) -> nib.Nifti1Image:
    """Slices on the grid back to a volume in ``like``'s voxel order, intensities and header.

    Parameters
    ----------
    slices : (Z, 208, 176) array
        Grid slices on the [0, 1] scale of ``grid.slices`` (the network's output, or LQ slices).
    grid : GridVolume
        :func:`volume_to_grid` of ``like``.
    like : nibabel image
        The input volume: its affine and header are kept, and its voxels outside the field of
        view (and non-finite ones) copied.

    Returns
    -------
    nibabel.Nifti1Image
        float32 data of ``like``'s shape: inside the field of view the slices resampled back to
        the input's pixels, ``* (high - low) + low`` (unclipped); elsewhere, and where the input
        is NaN or inf, the input's voxels. NIfTI-2 input gives NIfTI-2, anything else NIfTI-1 with
        the header converted; ``cal_min``/``cal_max`` reset to 0.
    """
    slices = np.asarray(slices, dtype=np.float32)
    if slices.shape != grid.slices.shape:
        raise ValueError(f"expected grid slices of shape {grid.slices.shape}, got {slices.shape}")
    original = volume_array(like, "the volume")
    out = np.array(axial_stack(original, grid.orientation), dtype=np.float32)  # a copy
    values = grid.slice_map.from_grid(slices)
    values *= np.float32(grid.span)
    values += np.float32(grid.low)
    rows, cols = grid.slice_map.inside
    region = out[:, rows, cols]  # a view into out
    kept = ~np.isfinite(region)
    if kept.any():
        values[kept] = region[kept]
    region[...] = values
    ras = out.transpose(2, 1, 0)[:, ::-1, :]
    data = apply_orientation(ras, ornt_transform(RAS, grid.orientation)).reshape(grid.shape)
    klass = type(like) if isinstance(like, nib.Nifti1Image) else nib.Nifti1Image
    try:
        result = klass(data, like.affine, header=like.header)
    except (HeaderDataError, ValueError) as error:
        raise EnhanceError(
            f"cannot make a NIfTI header from the input's ({type(error).__name__}: "
            f"{first_line(error)}); convert the scan to NIfTI first"
        ) from error
    result.set_data_dtype(np.float32)
    result.header.set_slope_inter(1.0, 0.0)
    result.header["cal_min"] = 0
    result.header["cal_max"] = 0
    return result


def no_signal_warning(name: str, grid: GridVolume, degrade: bool = False) -> str:
    """The warning for a volume without signal (every finite voxel equal), passed through."""
    what = "it (and its LQ version) are" if degrade else "it is"
    return (
        f"{name} has no signal (every finite voxel is {grid.low:g}): {what} written unchanged, "
        "not enhanced (a network would turn nothing into something)"
    )
