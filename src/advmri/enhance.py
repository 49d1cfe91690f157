"""Enhance users' own scans: every axial slice of a NIfTI volume through a trained generator.

The networks of the study were trained on axial slices of 208 rows x 176 columns (anterior up,
patient left on the left, 1 mm pixels), LQ inputs in [0, 1]: the MNI152 1 mm template's 233 x 197
slices centre-cropped, OASIS T88 slices (208 x 176) as they are, never shrunk
(:func:`advmri.data.anatomy.center_crop_or_pad`). :func:`enhance_volume` brings any 3-D volume to
that picture and back:

1. **Orientation.** The voxel axes are permuted and flipped to the closest RAS+ order
   (``nibabel.orientations.io_orientation`` / ``apply_orientation``, what ``nib.as_closest_canonical``
   does, without resampling; an oblique volume is sliced along the voxel axis closest to
   inferior-superior). Each axial slice (RAS z) becomes an image exactly as in training
   (:func:`advmri.data.anatomy.axial_slab`): rows = anterior -> posterior, columns = left -> right.
   The result is put back in the input's own voxel order.
2. **Pixel size.** The in-plane voxel sizes come from the affine (``nibabel.affines.voxel_sizes``,
   permuted as step 1 permutes the axes; flips do not change them): rows step along A-P, columns
   along L-R. An axis of ``n`` pixels of ``s`` mm is resampled to ``round(n * s / pixel_mm)`` pixels
   (``pixel_mm`` = :data:`PIXEL_MM`, training's 1 mm), unless ``s`` is within
   :data:`PIXEL_TOLERANCE` of ``pixel_mm``: linear interpolation between pixel centres with the
   slice's outer edges kept in place, preceded when shrinking by a Gaussian of ``(s / pixel_mm - 1)
   / 2`` pixels against aliasing, edge pixels repeated beyond the border (what
   ``skimage.transform.resize(order=1, mode="edge", anti_aliasing=True)`` computes). Each axis is
   resampled on its own, so anisotropic pixels become square. The spacing between slices is not
   changed: every axial slice is enhanced independently of its neighbours.
3. **Field of view.** The resampled slice is centre-cropped or zero-padded to 208 x 176 exactly as
   :func:`~advmri.data.anatomy.center_crop_or_pad` does for training. Only that central
   208 mm x 176 mm field of view (at 1 mm pixels) is enhanced: on the way back the enhanced field
   of view is resampled to the input's pixels (the same interpolation, with the Gaussian when the input's
   pixels are the larger), and input voxels whose centres fall outside it are copied from the input
   unchanged (in the LQ volume of ``--degrade`` too). A volume at 1 mm whose slices fit in
   208 x 176 is padded and cropped back exactly.
4. **Intensities.** Training scaled every HQ and LQ slice min-max to [0, 1]
   (:func:`advmri.data.kspace.normalize_unit`): its background, 0, is the minimum, its brightest
   tissue 1. A scan is scaled once for the whole volume, ``(x - low) / (high - low)``, with robust
   limits (:func:`intensity_limits`): ``low`` = the 0.5th percentile of all finite voxels (the
   background level: 0 for a skull-stripped or zero-background scan, so dark tissue keeps its
   contrast against the background as in training), ``high`` = the 99.5th percentile of the finite
   non-zero voxels (the brightest tissue, set neither by a few hot voxels - vessels, fat, a spike -
   nor by how much empty background the field of view holds). Per volume, not per slice: the
   training slices were all mid-brain, and a per-slice min-max would stretch the noise of nearly
   empty end slices to full contrast. The network input is then clipped to [0, 1], the only range
   the network has seen, so voxels beyond the limits enter as 0 or 1 and their enhanced values
   saturate near the limits; percentiles ``(0, 100)`` give a plain min-max that clips nothing. The
   network's output is mapped back with the same ``low`` and ``high``, unclipped. Non-finite voxels
   enter as ``low`` and come back unchanged.
5. **Output.** float32 data with the input's shape, affine and header (dtype, scaling and
   ``cal_min``/``cal_max`` reset).

``--degrade`` (:func:`degrade_volume`) first makes the LQ version of a HQ volume with the dataset's
degradation (:func:`advmri.data.kspace.degrade`: central k-space band, complex Gaussian noise,
magnitude, nearest-neighbour resize) on the grid, slice by slice from one generator seeded with
``seed``; the final min-max rescale is over the whole volume instead of each slice, for the reason
of step 4. Its settings come from the network file (:func:`degradation_settings`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import yaml
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import apply_orientation, ornt_transform
from nibabel.spatialimages import HeaderDataError

from advmri.data.geometry import (
    GRID_SHAPE,
    PIXEL_MM,
    RAS,
    GeometryError,
    SliceMap,
    axial_stack,
    check_pixel_mm,
    ras_frame,
)
from advmri.data.kspace import band_shape, normalize_unit, truncate_kspace, upsample_nearest
from advmri.errors import AdvmriError, ConfigError, DataError
from advmri.models import RANDOM_FLAG, UNet, inference, load_generator
from advmri.models.io import NonFiniteWeightsError

#: Percentiles of the intensity limits: low over all finite voxels, high over the non-zero ones.
INTENSITY_PERCENTILES: tuple[float, float] = (0.5, 99.5)
#: Seed of ``--degrade``'s noise.
DEFAULT_SEED = 2024
#: config.yaml's ``synthesis.noise_std`` default, for network files that do not record theirs.
DEFAULT_NOISE_STD = 0.04
#: config.yaml's ``synthesis.kspace_fraction`` default, for network files that do not record theirs.
DEFAULT_KSPACE_FRACTION = 0.125
#: Extensions :func:`enhance_file` writes (any letter case).
NIFTI_SUFFIXES = (".nii.gz", ".nii")


class EnhanceError(GeometryError):
    """A scan, network file or setting that ``advmri enhance`` cannot use; one line."""


# --- slices on the grid ---------------------------------------------------------------------------


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


def _volume_array(image: nib.spatialimages.SpatialImage, name: str) -> np.ndarray:
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
            f"{name}: cannot read its voxels ({type(error).__name__}: {_first_line(error)})"
        ) from error
    return data.reshape(shape)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


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
    data = _volume_array(image, name)
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
    original = _volume_array(like, "the volume")
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
            f"{_first_line(error)}); convert the scan to NIfTI first"
        ) from error
    result.set_data_dtype(np.float32)
    result.header.set_slope_inter(1.0, 0.0)
    result.header["cal_min"] = 0
    result.header["cal_max"] = 0
    return result


# --- the network ----------------------------------------------------------------------------------


def resolve_device(name: str = "auto") -> torch.device:
    """``--device``: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``
    (:func:`advmri.models.inference.resolve_device`); EnhanceError for CUDA absent."""
    try:
        return inference.resolve_device(name, "--device")
    except ConfigError as error:
        raise EnhanceError(str(error)) from error


def check_network(generator: torch.nn.Module, name: str = "the network") -> None:
    """Raise EnhanceError unless ``generator`` is a 1-in, 1-out UNet that takes the 208 x 176 grid."""
    module = getattr(generator, "_orig_mod", generator)
    if not isinstance(module, UNet):
        raise EnhanceError(f"{name} is a {type(module).__name__}, not an advmri UNet generator")
    if (module.in_channels, module.out_channels) != (1, 1):
        raise EnhanceError(
            f"{name} maps {module.in_channels} channel(s) to {module.out_channels}; "
            "enhance needs a 1-channel to 1-channel generator"
        )
    try:
        module.check_size(*GRID_SHAPE)
    except AdvmriError as error:
        raise EnhanceError(
            f"{name} cannot take the {GRID_SHAPE[0]} x {GRID_SHAPE[1]} grid: {error}"
        ) from error


#: The file of a network's folder (``results/networks/<cell>/``) that holds the generator.
GENERATOR_FILE = "generator.pt"
_NETWORK_HINT = f"expected a network's folder, results/networks/<cell>/, holding {GENERATOR_FILE}"


def network_file(path: str | Path) -> Path:
    """``--network``'s generator file: ``path/generator.pt`` for a folder, else ``path`` itself.

    Raises
    ------
    EnhanceError
        A folder without ``generator.pt``, or nothing at ``path``.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / GENERATOR_FILE).is_file():
            raise EnhanceError(
                f"--network: {path} is a folder without {GENERATOR_FILE} (its training has not "
                f"finished, or a failed rerun removed it); {_NETWORK_HINT}"
            )
        return path / GENERATOR_FILE
    if not path.exists():
        raise EnhanceError(f"--network: {path} does not exist; {_NETWORK_HINT}")
    return path


def load_network(path: str | Path, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """The generator of ``path`` (eval mode, on ``device``) and its metadata.

    Parameters
    ----------
    path : path
        A network's folder, ``results/networks/<cell>/`` (or ``pretrain``), holding
        ``generator.pt``; that file itself is accepted too.

    Raises
    ------
    EnhanceError
        Missing folder or file, not an advmri generator file (a checkpoint, another torch file,
        text), weights holding NaN or inf, or a network that cannot take the 208 x 176 grid.
    """
    path = network_file(path)
    try:
        model, metadata = load_generator(path, device=device)
    except NonFiniteWeightsError as error:
        raise EnhanceError(f"--network: {error}") from error
    except DataError as error:
        raise EnhanceError(f"--network: {error} ({_NETWORK_HINT})") from error
    check_network(model, str(path))
    return model, metadata  # type: ignore[return-value]


def network_warnings(metadata: dict, name: str = "the network") -> list[str]:
    """Lines to show the user before enhancing: a network trained with a random VGG19, say.

    Returns
    -------
    list of str
        Empty for a network trained with ImageNet (or file) VGG weights or without VGG loss.
    """
    notes = [str(metadata.get("warning") or ""), str(metadata.get("perceptual_weights") or "")]
    if any(RANDOM_FLAG in note or "random VGG19" in note for note in notes):
        return [
            f"{name} was trained with a randomly initialised VGG19 ({RANDOM_FLAG}): a pipeline "
            "check, its enhancement is not the paper's"
        ]
    return []


def enhance_slices(
    slices: np.ndarray,
    generator: torch.nn.Module,
    batch_size: int = 8,
    progress: bool = False,
    name: str = "the network",
) -> np.ndarray:
    """Run ``generator`` over ``(N, 208, 176)`` grid slices in batches; float32, same shape.

    The slices go to the generator's device in fixed-order batches
    (:func:`advmri.models.inference.run_network`: ``torch.inference_mode``, cuDNN's deterministic
    algorithms without autotuning), so a scan gives one result on a given device. ``progress``
    shows a tqdm bar, only when stderr is a terminal.

    Raises
    ------
    EnhanceError
        The output holds NaN or inf (``name`` names the network): nothing comes back that is not
        a number.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise EnhanceError(f"--batch-size {batch_size!r} must be an integer >= 1")
    check_network(generator)
    out = inference.run_network(
        generator, slices, int(batch_size), progress="enhance" if progress else None
    )
    bad = inference.nonfinite_images(out)
    if bad.size:
        raise EnhanceError(
            f"{name} gave NaN or infinite values on {bad.size} of {len(out)} axial slices (the "
            f"first: slice {bad[0]}); nothing was written"
        )
    return out


# --- degradation ----------------------------------------------------------------------------------


#: :attr:`DegradationSettings.source` of settings read from the generator file.
NETWORK_SOURCE = "the network file"
#: :attr:`DegradationSettings.source` of the packaged defaults.
DEFAULTS_SOURCE = "advmri's defaults (config.yaml's synthesis section)"
_SYNTHESIS_KEYS = ("noise_std", "kspace_fraction")


@dataclass(frozen=True)
class DegradationSettings:
    """The dataset's degradation: ``synthesis.noise_std`` and ``synthesis.kspace_fraction``."""

    noise_std: float
    kspace_fraction: float
    source: str

    @property
    def from_network(self) -> bool:
        """True when the network file recorded the settings it was trained with."""
        return self.source == NETWORK_SOURCE

    def describe(self) -> str:
        return (
            f"noise_std {self.noise_std:g}, kspace_fraction {self.kspace_fraction:g} "
            f"from {self.source}"
        )


def degradation_settings(
    metadata: dict | None = None, config: str | Path | None = None
) -> DegradationSettings:
    """``--degrade``'s settings, from the first of these that has them.

    1. The network file: ``metadata["synthesis"]`` with ``noise_std`` and ``kspace_fraction``,
       which training records (files written before it did lack it).
    2. ``config``, a study config given by the user (``--config``): its ``synthesis.noise_std``
       and ``synthesis.kspace_fraction``, a key it lacks taken from 3.
    3. The packaged defaults :data:`DEFAULT_NOISE_STD` and :data:`DEFAULT_KSPACE_FRACTION`
       (config.yaml's).

    Parameters
    ----------
    metadata : dict, optional
        A generator file's metadata (:func:`load_network`).
    config : path, optional
        A YAML file with a ``synthesis`` section; not read when the network file has the settings.

    Returns
    -------
    DegradationSettings
        With ``source`` saying which of the three was used.

    Raises
    ------
    EnhanceError
        A config file missing or unreadable, or a value out of range.
    """
    synthesis = (metadata or {}).get("synthesis")
    if isinstance(synthesis, dict) and all(key in synthesis for key in _SYNTHESIS_KEYS):
        source = NETWORK_SOURCE
    elif config is not None:
        try:
            with open(config) as handle:
                loaded = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as error:
            raise EnhanceError(
                f"--config {config}: cannot read it ({type(error).__name__}: "
                f"{_first_line(error)}); it should be a YAML file with synthesis.noise_std and "
                "synthesis.kspace_fraction"
            ) from error
        given = loaded.get("synthesis") if isinstance(loaded, dict) else None
        given = given if isinstance(given, dict) else {}
        synthesis = {
            "noise_std": given.get("noise_std", DEFAULT_NOISE_STD),
            "kspace_fraction": given.get("kspace_fraction", DEFAULT_KSPACE_FRACTION),
        }
        complete = all(key in given for key in _SYNTHESIS_KEYS)
        source = str(config) if complete else f"{config} over {DEFAULTS_SOURCE}"
    else:
        synthesis = {"noise_std": DEFAULT_NOISE_STD, "kspace_fraction": DEFAULT_KSPACE_FRACTION}
        source = DEFAULTS_SOURCE
    try:
        noise_std = float(synthesis["noise_std"])
        fraction = float(synthesis["kspace_fraction"])
    except (TypeError, ValueError) as error:
        raise EnhanceError(
            f"{source}: synthesis.noise_std and synthesis.kspace_fraction must both be numbers"
        ) from error
    if not noise_std >= 0 or not math.isfinite(noise_std):
        raise EnhanceError(f"{source}: synthesis.noise_std = {noise_std} must be at least 0")
    if not 0 < fraction <= 1:
        raise EnhanceError(f"{source}: synthesis.kspace_fraction = {fraction} must be in (0, 1]")
    try:
        band_shape(GRID_SHAPE, fraction)
    except ValueError as error:
        raise EnhanceError(f"{source}: synthesis.kspace_fraction: {error}") from error
    return DegradationSettings(noise_std=noise_std, kspace_fraction=fraction, source=source)


def degrade_slices(
    hq: np.ndarray, noise_std: float, kspace_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """LQ versions of ``(N, 208, 176)`` HQ grid slices in [0, 1]: :func:`~advmri.data.kspace.degrade`'s steps.

    Per slice, in order: the central ``kspace_fraction`` of k-space, complex Gaussian noise of
    standard deviation ``noise_std`` (real and imaginary part, HQ units) drawn from ``rng``, the
    magnitude, nearest-neighbour enlargement back to the grid. The final min-max rescale to [0, 1]
    is over all slices together rather than each slice (see the module's notes). float32.
    """
    try:
        band = band_shape(hq.shape[1:], kspace_fraction)
    except ValueError as error:
        raise EnhanceError(f"--degrade: {error}") from error
    factor = (hq.shape[1] // band[0], hq.shape[2] // band[1])
    magnitude = np.empty(hq.shape, dtype=np.float32)
    for k, image in enumerate(hq):
        low = truncate_kspace(image.astype(np.float64), kspace_fraction)
        low = (
            low + rng.normal(0.0, noise_std, low.shape) + 1j * rng.normal(0.0, noise_std, low.shape)
        )
        magnitude[k] = upsample_nearest(np.abs(low), factor)
    return normalize_unit(magnitude).astype(np.float32, copy=False)


def degrade_volume(
    image: nib.spatialimages.SpatialImage,
    noise_std: float,
    kspace_fraction: float,
    seed: int = DEFAULT_SEED,
    pixel_mm: float = PIXEL_MM,
    intensity_percentiles: Sequence[float] = INTENSITY_PERCENTILES,
) -> nib.Nifti1Image:
    """The LQ version of a HQ volume, as the dataset makes LQ inputs, on the input's voxel grid.

    Parameters
    ----------
    image : nibabel image
        HQ 3-D volume, any orientation (see :func:`volume_to_grid`).
    noise_std, kspace_fraction : float
        The config's ``synthesis.noise_std`` (in units of the volume's intensity range) and
        ``synthesis.kspace_fraction``; see :func:`degradation_settings`.
    seed : int
        Seeds one ``numpy.random.default_rng``; slices draw their noise from it in order
        (inferior -> superior), so a seed gives one LQ volume.
    pixel_mm, intensity_percentiles
        As :func:`volume_to_grid`.

    Returns
    -------
    nibabel.Nifti1Image
        float32 LQ volume with ``image``'s shape, affine and header, on its intensity scale; the
        voxels outside the field of view are the input's.
    """
    check_seed(seed)
    grid = volume_to_grid(image, pixel_mm=pixel_mm, intensity_percentiles=intensity_percentiles)
    lq = degrade_slices(grid.slices, noise_std, kspace_fraction, np.random.default_rng(seed))
    return grid_to_volume(lq, grid, image)


def check_seed(seed: int) -> int:
    """``--seed`` as an int; EnhanceError unless a whole number >= 0 (what ``default_rng`` takes)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise EnhanceError(
            f"--seed {seed!r} must be a whole number >= 0 (numpy's default_rng takes no "
            f"negative seed); the default is {DEFAULT_SEED}"
        )
    return int(seed)


def enhance_volume(
    image: nib.spatialimages.SpatialImage,
    generator: torch.nn.Module,
    batch_size: int = 8,
    progress: bool = False,
    pixel_mm: float = PIXEL_MM,
    intensity_percentiles: Sequence[float] = INTENSITY_PERCENTILES,
) -> nib.Nifti1Image:
    """Every axial slice of ``image`` enhanced by ``generator``, back in ``image``'s geometry.

    Parameters
    ----------
    image : nibabel image
        A 3-D volume (a 4-D one with a single volume is accepted), any orientation, in-plane
        voxel sizes up to :data:`MAX_VOXEL_MM`.
    generator : UNet
        From :func:`load_network`; runs on its own device.
    batch_size : int
        Slices per forward pass.
    progress : bool
        A tqdm bar on stderr (when it is a terminal).
    pixel_mm : float
        The networks' pixel size; slices are resampled to it (:func:`volume_to_grid`).
    intensity_percentiles : (p_low, p_high)
        Of the volume's intensity limits (:func:`intensity_limits`).

    Returns
    -------
    nibabel.Nifti1Image
        float32, ``image``'s shape, affine and header, ``image``'s intensity scale; only the
        central 208 x 176 mm of each slice enhanced, the rest copied (see the module's notes).

    Raises
    ------
    EnhanceError
        The volume is not 3-D, has an unusable affine or voxel size, its slices are too small,
        the network cannot take the grid, or its output holds NaN or inf.

    Warns
    -----
    UserWarning
        A volume without signal (every finite voxel equal: all zero, constant) is returned
        unchanged instead (:func:`no_signal_warning`).
    """
    grid = volume_to_grid(image, pixel_mm=pixel_mm, intensity_percentiles=intensity_percentiles)
    if not grid.high > grid.low:
        warnings.warn(no_signal_warning("the volume", grid), stacklevel=2)
        return grid_to_volume(np.zeros_like(grid.slices), grid, image)
    enhanced = enhance_slices(grid.slices, generator, batch_size=batch_size, progress=progress)
    return grid_to_volume(enhanced, grid, image)


def no_signal_warning(name: str, grid: GridVolume, degrade: bool = False) -> str:
    """The warning for a volume without signal (every finite voxel equal), passed through."""
    what = "it (and its LQ version) are" if degrade else "it is"
    return (
        f"{name} has no signal (every finite voxel is {grid.low:g}): {what} written unchanged, "
        "not enhanced (a network would turn nothing into something)"
    )


# --- files ----------------------------------------------------------------------------------------


def load_volume(path: str | Path) -> nib.spatialimages.SpatialImage:
    """Read the scan at ``path`` with nibabel, voxels included (float32), checking it is one 3-D volume.

    Raises
    ------
    EnhanceError
        Missing, unreadable (not an image nibabel knows, truncated), or not 3-D.
    """
    path = Path(path)
    if not path.exists():
        raise EnhanceError(f"input scan {path} does not exist")
    if not path.is_file():
        raise EnhanceError(f"input scan {path} is not a file")
    try:
        image = nib.load(path)
    except Exception as error:  # ImageFileError, OSError, gzip errors, ...
        raise EnhanceError(
            f"input scan {path} is not an image nibabel can read "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from error
    _volume_array(image, str(path))  # checks the shape, reads (and caches) the voxels
    return image


def _nifti_suffix(path: Path) -> str | None:
    """The NIfTI extension ``path`` ends in, as written (``.nii``, ``.NII.GZ``, ...), or None."""
    lower = path.name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return path.name[-len(suffix) :]
    return None


def default_degraded_path(output: str | Path) -> Path:
    """``OUT`` with ``_lq`` before its suffix: ``brain_enhanced.nii.gz`` -> ``brain_enhanced_lq.nii.gz``."""
    output = Path(output)
    suffix = _nifti_suffix(output)
    if suffix is not None:
        return output.with_name(output.name[: -len(suffix)] + "_lq" + suffix)
    return output.with_name(output.name + "_lq")


def _check_output(path: Path, what: str) -> None:
    if _nifti_suffix(path) is None:
        raise EnhanceError(f"{what} {path} must end in .nii or .nii.gz")


def _save(image: nib.Nifti1Image, path: Path) -> None:
    """Write atomically: a hidden file with the same extension, then a rename.

    Raises
    ------
    EnhanceError
        The folder or file cannot be written, or nibabel cannot encode the image (a header it
        refuses); the hidden file is removed and ``path`` is left as it was.
    """
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(image, tmp)
        os.replace(tmp, path)
    except (OSError, ImageFileError, HeaderDataError, ValueError) as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise EnhanceError(
            f"cannot write {path} ({type(error).__name__}: {_first_line(error)}); "
            "nothing was written there"
        ) from error


@dataclass(frozen=True)
class EnhanceResult:
    """What :func:`enhance_file` did."""

    output: Path
    degraded: Path | None
    slices: int
    slice_map: SliceMap
    device: str
    degradation: DegradationSettings | None
    seconds: float
    unchanged: bool = False

    def describe(self) -> str:
        """One line for the command line."""
        if self.unchanged:
            also = f" and {self.degraded}" if self.degraded is not None else ""
            return f"wrote {self.output}{also} unchanged (the input has no signal; not enhanced)"
        text = (
            f"wrote {self.output} ({self.slices} axial slices of {self.slice_map.describe()}; "
            f"{self.device}; {self.seconds:.1f} s)"
        )
        if self.degraded is not None and self.degradation is not None:
            text += f"; LQ input {self.degraded} ({self.degradation.describe()})"
        return text


def enhance_file(
    input_path: str | Path,
    output_path: str | Path,
    network: str | Path,
    degrade: bool = False,
    degraded_path: str | Path | None = None,
    seed: int = DEFAULT_SEED,
    device: str = "auto",
    batch_size: int = 8,
    config: str | Path | None = None,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
    pixel_mm: float = PIXEL_MM,
    intensity_percentiles: Sequence[float] = INTENSITY_PERCENTILES,
) -> EnhanceResult:
    """``advmri enhance``: read a scan, (degrade it,) enhance it, write the result(s).

    Parameters
    ----------
    input_path : path
        A 3-D NIfTI (anything nibabel reads as one 3-D volume).
    output_path : path
        The enhanced volume, ``.nii`` or ``.nii.gz`` (any case): float32, input's shape, affine
        and header.
    network : path
        A network's folder, ``results/networks/<cell>/`` (or ``pretrain``), holding
        ``generator.pt``; the file itself is accepted too (:func:`network_file`).
    degrade : bool
        Treat the input as HQ: enhance its LQ version (:func:`degrade_volume`) instead, and write
        that too.
    degraded_path : path, optional
        Where the LQ volume goes; default :func:`default_degraded_path` of ``output_path``.
    seed : int
        Seed of the degradation's noise, >= 0.
    device : {"auto", "cpu", "cuda"}
        ``auto`` = CUDA when available.
    batch_size : int
        Slices per forward pass.
    config : path, optional
        A study config whose ``synthesis`` settings ``degrade`` uses when the network file has
        none (:func:`degradation_settings`).
    progress : bool
        A tqdm bar on stderr (when it is a terminal).
    warn : callable, optional
        Called with each warning line (:func:`network_warnings`; where ``degrade``'s settings
        come from when the network file lacks them) before the work starts.
    pixel_mm : float
        The pixel size slices are resampled to (the networks': 1 mm).
    intensity_percentiles : (p_low, p_high)
        Of the volume's intensity limits (:func:`intensity_limits`).

    Raises
    ------
    EnhanceError
        Any bad input, network file, setting or output path, or a network output holding NaN or
        inf; one line. An input without signal (every finite voxel equal) is no error: ``warn``
        says so and the volume is written unchanged (``EnhanceResult.unchanged``).
    """
    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
    seed = check_seed(seed)
    check_pixel_mm(pixel_mm)
    check_percentiles(intensity_percentiles)
    if degraded_path is not None and not degrade:
        raise EnhanceError("--degraded-out is only written with --degrade")
    _check_output(output_path, "output")
    targets = [output_path]
    if degrade:
        degraded_path = Path(degraded_path or default_degraded_path(output_path))
        _check_output(degraded_path, "--degraded-out")
        targets.append(degraded_path)
    if len({p.resolve() for p in targets}) < len(targets):
        raise EnhanceError(f"the enhanced and the LQ volume would both be written to {output_path}")
    if input_path.exists() and any(p.resolve() == input_path.resolve() for p in targets):
        raise EnhanceError(f"{input_path} would overwrite the input scan; choose another output")

    image = load_volume(input_path)
    # a bad geometry is refused before the network loads
    grid = volume_to_grid(image, str(input_path), pixel_mm, intensity_percentiles)
    torch_device = resolve_device(device)
    generator, metadata = load_network(network, device=torch_device)
    lines = network_warnings(metadata, str(network))
    settings = degradation_settings(metadata, config) if degrade else None
    if settings is not None and not settings.from_network:
        lines.append(
            f"{network} records no synthesis settings (written before training recorded them); "
            f"--degrade uses {settings.describe()}"
        )
    elif settings is not None and config is not None:
        lines.append(
            f"--config {config} is not used: {network} records the synthesis settings it was "
            f"trained with ({settings.describe()})"
        )
    flat = not grid.high > grid.low
    if flat:
        lines.append(no_signal_warning(str(input_path), grid, degrade))
    for line in lines:
        if warn is not None:
            warn(line)

    if flat:  # a network maps nothing to something: pass the volume through instead
        unchanged = grid_to_volume(np.zeros_like(grid.slices), grid, image)
        _save(unchanged, output_path)
        if settings is not None:
            _save(unchanged, degraded_path)
        return EnhanceResult(
            output=output_path,
            degraded=degraded_path if degrade else None,
            slices=len(grid.slices),
            slice_map=grid.slice_map,
            device=str(torch_device),
            degradation=settings,
            seconds=time.perf_counter() - started,
            unchanged=True,
        )

    inputs = grid.slices
    if settings is not None:
        rng = np.random.default_rng(seed)
        inputs = degrade_slices(grid.slices, settings.noise_std, settings.kspace_fraction, rng)
    enhanced = enhance_slices(
        inputs, generator, batch_size=batch_size, progress=progress, name=str(network)
    )
    _save(grid_to_volume(enhanced, grid, image), output_path)
    if settings is not None:
        _save(grid_to_volume(inputs, grid, image), degraded_path)
    return EnhanceResult(
        output=output_path,
        degraded=degraded_path if degrade else None,
        slices=len(inputs),
        slice_map=grid.slice_map,
        device=str(torch_device),
        degradation=settings,
        seconds=time.perf_counter() - started,
    )
