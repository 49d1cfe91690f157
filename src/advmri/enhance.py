"""Enhance users' own scans: every axial slice of a NIfTI volume through a trained generator.

The networks of the study were trained on axial slices of 208 rows x 176 columns (anterior up,
patient left on the left, ~1 mm pixels), LQ inputs in [0, 1]. :func:`enhance_volume` brings any 3-D
volume to that picture and back:

1. **Orientation.** The voxel axes are permuted and flipped to the closest RAS+ order
   (``nibabel.orientations.io_orientation`` / ``apply_orientation``, what ``nib.as_closest_canonical``
   does, without resampling; an oblique volume is sliced along the voxel axis closest to
   inferior-superior). Each axial slice (RAS z) becomes an image exactly as in training
   (:func:`advmri.data.anatomy.axial_slab`): rows = anterior -> posterior, columns = left -> right.
   The result is put back in the input's own voxel order.
2. **Grid.** A slice of ``H x W`` pixels that fits in 208 x 176 is centred and zero-padded as
   :func:`advmri.data.anatomy.center_crop_or_pad` pads, and cropped back exactly. A larger slice is
   first shrunk by one uniform factor ``s = min(208 / H, 176 / W)`` (pixel aspect kept; bilinear,
   ``skimage.transform.resize(order=1, mode="edge")`` with Gaussian anti-aliasing) and then padded;
   on the way back the enhanced slice is enlarged by bilinear interpolation to ``H x W``. A slice
   side below :data:`MIN_SIDE` pixels (before or after shrinking) or a shrink beyond
   :data:`MAX_SHRINK` is refused. Voxel sizes are not used: pixels are taken as square.
3. **Intensities.** One min-max scaling for the whole volume, ``(x - min) / (max - min)`` over its
   finite voxels (:func:`advmri.data.kspace.normalize_unit` applied to the volume), so the volume
   lies in [0, 1] like the training data and near-empty end slices stay dark instead of being
   stretched to full range as a per-slice scaling would. The network's output is mapped back with
   the same ``min`` and ``max``, unclipped. Non-finite voxels enter as ``min`` and come back
   unchanged.
4. **Output.** float32 data with the input's shape, affine and header (dtype updated).

``--degrade`` (:func:`degrade_volume`) first makes the LQ version of a HQ volume with the dataset's
degradation (:func:`advmri.data.kspace.degrade`: central k-space band, complex Gaussian noise,
magnitude, nearest-neighbour resize) on the grid, slice by slice from one generator seeded with
``seed``; the final min-max rescale is over the whole volume instead of each slice, for the reason
of step 3.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import yaml
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform
from skimage.transform import resize
from tqdm import tqdm

from advmri.config import deep_update
from advmri.data.anatomy import IMAGE_SHAPE
from advmri.data.kspace import band_shape, normalize_unit, truncate_kspace, upsample_nearest
from advmri.errors import AdvmriError, DataError
from advmri.models import RANDOM_FLAG, UNet, load_generator

#: Rows x columns the networks were trained on (anterior up, patient left on the left).
GRID_SHAPE: tuple[int, int] = IMAGE_SHAPE
#: Smallest slice side, in pixels, before or after fitting to the grid.
MIN_SIDE = 16
#: Largest uniform shrink factor a slice may need to fit the grid (1 / s).
MAX_SHRINK = 4.0
#: Seed of ``--degrade``'s noise.
DEFAULT_SEED = 2024
#: The study configuration whose ``synthesis`` section ``--degrade`` falls back on.
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
#: Extensions :func:`enhance_file` writes.
NIFTI_SUFFIXES = (".nii.gz", ".nii")

_RAS = axcodes2ornt("RAS")


class EnhanceError(DataError):
    """A scan, network file or setting that ``advmri enhance`` cannot use; one line."""


# --- slices on the grid ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceMap:
    """Where an ``H x W`` axial slice sits on the network's grid.

    Attributes
    ----------
    shape : (H, W)
        The slice as read: rows anterior -> posterior, columns left -> right.
    fitted : (h, w)
        The slice after the uniform shrink (``== shape`` when it fits as is).
    offset : (r0, c0)
        Top-left corner of the fitted slice on the grid (centred as ``center_crop_or_pad``).
    grid : (rows, cols)
        The grid, :data:`GRID_SHAPE`.
    """

    shape: tuple[int, int]
    fitted: tuple[int, int]
    offset: tuple[int, int]
    grid: tuple[int, int] = GRID_SHAPE

    @property
    def resampled(self) -> bool:
        """True when the slice is shrunk (interpolated) rather than only padded."""
        return self.fitted != self.shape

    @property
    def scale(self) -> float:
        """Uniform scale factor from the slice to the grid (1.0 when only padded)."""
        return min(f / s for f, s in zip(self.fitted, self.shape, strict=True))

    def describe(self) -> str:
        """One phrase for logs: ``233 x 197 shrunk x0.893 (bilinear) onto 208 x 176``."""
        h, w = self.shape
        rows, cols = self.grid
        if self.resampled:
            padded = ", zero-padded" if self.fitted != self.grid else ""
            return f"{h} x {w} shrunk x{self.scale:.3g} (bilinear{padded}) onto {rows} x {cols}"
        if self.shape == self.grid:
            return f"{h} x {w} as is"
        return f"{h} x {w} zero-padded onto {rows} x {cols}"

    @classmethod
    def plan(cls, shape: tuple[int, int], grid: tuple[int, int] = GRID_SHAPE) -> SliceMap:
        """The map of an ``H x W`` slice onto ``grid``.

        Raises
        ------
        EnhanceError
            A side below :data:`MIN_SIDE` (before or after the shrink) or a shrink by more than
            :data:`MAX_SHRINK`.
        """
        h, w = (int(n) for n in shape)
        rows, cols = grid
        what = f"axial slices of {h} x {w} pixels (rows A-P x columns L-R)"
        if min(h, w) < MIN_SIDE:
            raise EnhanceError(
                f"{what} cannot map onto the {rows} x {cols} grid: a side is below {MIN_SIDE} "
                "pixels (is the volume a stack of sagittal or coronal slices with few of them?)"
            )
        scale = min(rows / h, cols / w, 1.0)
        if scale < 1 / MAX_SHRINK:
            raise EnhanceError(
                f"{what} cannot map onto the {rows} x {cols} grid: they would need shrinking "
                f"by {1 / scale:.3g}x, more than {MAX_SHRINK:g}x; resample the scan to about 1 mm "
                "pixels first"
            )
        fitted = (min(rows, round(h * scale)), min(cols, round(w * scale)))
        if min(fitted) < MIN_SIDE:
            raise EnhanceError(
                f"{what} cannot map onto the {rows} x {cols} grid: their aspect ratio leaves a "
                f"side of {min(fitted)} pixels after fitting, below {MIN_SIDE}"
            )
        offset = ((rows - fitted[0]) // 2, (cols - fitted[1]) // 2)
        return cls(shape=(h, w), fitted=fitted, offset=offset, grid=(rows, cols))

    def to_grid(self, slices: np.ndarray) -> np.ndarray:
        """``(N, H, W)`` slices -> ``(N, rows, cols)`` float32 on the grid, zeros around them."""
        out = np.zeros((slices.shape[0], *self.grid), dtype=np.float32)
        r0, c0 = self.offset
        h, w = self.fitted
        for k, image in enumerate(slices):
            if self.resampled:
                image = resize(
                    image,
                    self.fitted,
                    order=1,
                    mode="edge",
                    anti_aliasing=True,
                    preserve_range=True,
                )
            out[k, r0 : r0 + h, c0 : c0 + w] = image
        return out

    def from_grid(self, slices: np.ndarray) -> np.ndarray:
        """``(N, rows, cols)`` grid slices -> ``(N, H, W)``: the inverse of :meth:`to_grid`.

        Exact for padded slices; for shrunk ones a bilinear enlargement of the fitted region.
        """
        r0, c0 = self.offset
        h, w = self.fitted
        inner = slices[:, r0 : r0 + h, c0 : c0 + w]
        if not self.resampled:
            return np.array(inner, dtype=np.float32)
        out = np.empty((slices.shape[0], *self.shape), dtype=np.float32)
        for k, image in enumerate(inner):
            out[k] = resize(
                image, self.shape, order=1, mode="edge", anti_aliasing=False, preserve_range=True
            )
        return out


@dataclass(frozen=True)
class GridVolume:
    """A volume's axial slices on the grid, with what :func:`grid_to_volume` needs to undo it.

    Attributes
    ----------
    slices : (Z, 208, 176) float32
        Axial slices inferior -> superior, intensities scaled to [0, 1] over the volume.
    slice_map : SliceMap
        How each slice sits on the grid.
    low, high : float
        Minimum and maximum of the volume's finite voxels (the scaling undone on the way back).
    shape : tuple
        The input's data shape (3-D, or 4-D with a trailing 1).
    orientation : (3, 2) array
        ``io_orientation`` of the input's affine: its voxel axes in terms of RAS.
    nonfinite : bool array or None
        Where the input holds NaN or inf (input voxel order); None when nowhere.
    """

    slices: np.ndarray
    slice_map: SliceMap
    low: float
    high: float
    shape: tuple[int, ...]
    orientation: np.ndarray
    nonfinite: np.ndarray | None

    @property
    def span(self) -> float:
        """``high - low``, or 1 for a constant volume (so the scaling stays invertible)."""
        return self.high - self.low if self.high > self.low else 1.0


def _volume_array(image: nib.spatialimages.SpatialImage, name: str) -> np.ndarray:
    """The image's voxels as a float64 3-D array; a trailing axis of length 1 is dropped."""
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
        data = image.get_fdata(dtype=np.float64)
    except Exception as error:  # truncated files, unsupported dtypes: many types, one meaning
        raise EnhanceError(
            f"{name}: cannot read its voxels ({type(error).__name__}: {_first_line(error)})"
        ) from error
    return data.reshape(shape)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def volume_to_grid(image: nib.spatialimages.SpatialImage, name: str = "the volume") -> GridVolume:
    """The axial slices of ``image`` on the network's grid, oriented and scaled as in training.

    Parameters
    ----------
    image : nibabel image
        A 3-D volume (or 4-D with one volume), any voxel order.
    name : str
        How error messages call the volume (its path).

    Returns
    -------
    GridVolume
        ``slices[k]`` is RAS axial slice ``k`` (0 = inferior) as rows anterior -> posterior,
        columns left -> right, zero-padded (shrunk first if too large) onto 208 x 176, in [0, 1].

    Raises
    ------
    EnhanceError
        Not 3-D, unreadable voxels, an affine without orientation, no finite voxel, or slices
        that cannot map onto the grid (:meth:`SliceMap.plan`).
    """
    data = _volume_array(image, name)
    orientation = io_orientation(image.affine)
    if np.isnan(orientation).any():
        raise EnhanceError(
            f"{name}: its affine has no usable orientation (a zero or singular matrix); "
            "set the qform/sform first"
        )
    finite = np.isfinite(data)
    if not finite.any():
        raise EnhanceError(f"{name} has no finite voxel")
    low, high = float(data[finite].min()), float(data[finite].max())
    nonfinite = None if finite.all() else ~finite
    span = high - low if high > low else 1.0
    scaled = np.where(finite, (data - low) / span, 0.0)
    ras = apply_orientation(scaled, orientation)  # (X, Y, Z), RAS+
    # slice z, voxel (x, y) -> image (row, col): rows = y reversed (anterior up), cols = x
    # (patient left first), exactly as advmri.data.anatomy.axial_slab
    stack = ras[:, ::-1, :].transpose(2, 1, 0)
    try:
        slice_map = SliceMap.plan(stack.shape[1:])
    except EnhanceError as error:
        raise EnhanceError(f"{name}: {error}") from error
    return GridVolume(
        slices=slice_map.to_grid(stack),
        slice_map=slice_map,
        low=low,
        high=high,
        shape=tuple(image.shape),
        orientation=orientation,
        nonfinite=nonfinite,
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
        The input volume: its affine and header are kept.

    Returns
    -------
    nibabel.Nifti1Image
        float32 data of ``like``'s shape, ``slices * (high - low) + low`` (unclipped), NaN/inf
        voxels of the input unchanged; NIfTI-2 input gives NIfTI-2, anything else NIfTI-1 with
        the header converted.
    """
    slices = np.asarray(slices, dtype=np.float32)
    if slices.shape != grid.slices.shape:
        raise ValueError(f"expected grid slices of shape {grid.slices.shape}, got {slices.shape}")
    stack = grid.slice_map.from_grid(slices)
    ras = stack.transpose(2, 1, 0)[:, ::-1, :]
    data = apply_orientation(ras, ornt_transform(_RAS, grid.orientation))
    data = (data.astype(np.float64) * grid.span + grid.low).astype(np.float32)
    if grid.nonfinite is not None:
        original = _volume_array(like, "the volume")
        data[grid.nonfinite] = original[grid.nonfinite]
    data = data.reshape(grid.shape)
    klass = type(like) if isinstance(like, nib.Nifti1Image) else nib.Nifti1Image
    out = klass(data, like.affine, header=like.header)
    out.set_data_dtype(np.float32)
    out.header.set_slope_inter(1.0, 0.0)
    return out


# --- the network ----------------------------------------------------------------------------------


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``; EnhanceError for CUDA absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise EnhanceError("--device cuda: no CUDA device is available; use --device cpu")
        return torch.device("cuda")
    raise EnhanceError(f"device {name!r} is not one of auto, cpu, cuda")


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


def load_network(path: str | Path, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """The generator stored at ``path`` (eval mode, on ``device``) and its metadata.

    Raises
    ------
    EnhanceError
        Missing file, not an advmri generator file (a checkpoint, another torch file, text), or a
        network that cannot take the 208 x 176 grid.
    """
    try:
        model, metadata = load_generator(path, device=device)
    except DataError as error:
        raise EnhanceError(
            f"--network: {error} (expected results/networks/<cell>/generator.pt)"
        ) from error
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
    slices: np.ndarray, generator: torch.nn.Module, batch_size: int = 8, progress: bool = False
) -> np.ndarray:
    """Run ``generator`` over ``(N, 208, 176)`` grid slices in batches; float32, same shape.

    The slices go to the generator's device; ``progress`` shows a tqdm bar on stderr.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise EnhanceError(f"--batch-size {batch_size!r} must be an integer >= 1")
    check_network(generator)
    batch_size = int(batch_size)
    device = next(generator.parameters()).device
    generator.eval()
    out = np.empty(slices.shape, dtype=np.float32)
    with (
        torch.inference_mode(),
        tqdm(
            total=len(slices), desc="enhance", unit="slice", disable=not progress, file=sys.stderr
        ) as bar,
    ):
        for start in range(0, len(slices), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(slices[start : start + batch_size]))
            result = generator(batch.to(device=device, dtype=torch.float32).unsqueeze(1))
            out[start : start + len(batch)] = result[:, 0].float().cpu().numpy()
            bar.update(len(batch))
    return out


# --- degradation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DegradationSettings:
    """The dataset's degradation: ``synthesis.noise_std`` and ``synthesis.kspace_fraction``."""

    noise_std: float
    kspace_fraction: float
    source: str

    def describe(self) -> str:
        return (
            f"noise_std {self.noise_std:g}, kspace_fraction {self.kspace_fraction:g} "
            f"from {self.source}"
        )


def degradation_settings(
    metadata: dict | None = None, config: str | Path | None = None
) -> DegradationSettings:
    """``--degrade``'s settings: the network file's, else ``config.yaml`` (with ``config`` over it).

    Parameters
    ----------
    metadata : dict, optional
        A generator file's metadata; used when ``metadata["settings"]["synthesis"]`` holds both
        ``noise_std`` and ``kspace_fraction``.
    config : path, optional
        A study config merged over the repository's ``config.yaml`` key by key (as
        ``--configfile``), for networks trained under other synthesis settings.

    Raises
    ------
    EnhanceError
        A config file missing or unreadable, or a value out of range.
    """
    synthesis = ((metadata or {}).get("settings") or {}).get("synthesis") or {}
    if config is None and {"noise_std", "kspace_fraction"} <= set(synthesis):
        source = "the network file"
    else:
        merged: dict = {}
        paths = [DEFAULT_CONFIG] + ([Path(config)] if config is not None else [])
        for path in paths:
            try:
                with open(path) as handle:
                    deep_update(merged, yaml.safe_load(handle) or {})
            except (OSError, yaml.YAMLError) as error:
                raise EnhanceError(
                    f"cannot read the synthesis settings for --degrade from {path} "
                    f"({type(error).__name__}); pass --config with synthesis.noise_std and "
                    "synthesis.kspace_fraction"
                ) from error
        synthesis = merged.get("synthesis") or {}
        source = " + ".join(str(p) for p in paths)
    try:
        noise_std = float(synthesis["noise_std"])
        fraction = float(synthesis["kspace_fraction"])
    except (KeyError, TypeError, ValueError) as error:
        raise EnhanceError(
            f"{source}: synthesis.noise_std and synthesis.kspace_fraction must both be numbers"
        ) from error
    if not noise_std >= 0:
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
    magnitude = np.empty(hq.shape, dtype=np.float64)
    for k, image in enumerate(hq):
        low = truncate_kspace(image.astype(np.float64), kspace_fraction)
        low = (
            low + rng.normal(0.0, noise_std, low.shape) + 1j * rng.normal(0.0, noise_std, low.shape)
        )
        magnitude[k] = upsample_nearest(np.abs(low), factor)
    return normalize_unit(magnitude).astype(np.float32)


def degrade_volume(
    image: nib.spatialimages.SpatialImage,
    noise_std: float,
    kspace_fraction: float,
    seed: int = DEFAULT_SEED,
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

    Returns
    -------
    nibabel.Nifti1Image
        float32 LQ volume with ``image``'s shape, affine and header, on its intensity scale.
    """
    grid = volume_to_grid(image)
    lq = degrade_slices(grid.slices, noise_std, kspace_fraction, np.random.default_rng(seed))
    return grid_to_volume(lq, grid, image)


def enhance_volume(
    image: nib.spatialimages.SpatialImage,
    generator: torch.nn.Module,
    batch_size: int = 8,
    progress: bool = False,
) -> nib.Nifti1Image:
    """Every axial slice of ``image`` enhanced by ``generator``, back in ``image``'s geometry.

    Parameters
    ----------
    image : nibabel image
        A 3-D volume (a 4-D one with a single volume is accepted), any orientation and size
        whose axial slices map onto the grid (:class:`SliceMap`).
    generator : UNet
        From :func:`load_network`; runs on its own device.
    batch_size : int
        Slices per forward pass.
    progress : bool
        A tqdm bar on stderr.

    Returns
    -------
    nibabel.Nifti1Image
        float32, ``image``'s shape, affine and header, ``image``'s intensity scale (see the
        module's notes for orientation, resampling and scaling).

    Raises
    ------
    EnhanceError
        The volume is not 3-D, its slices cannot map onto the grid, or the network cannot take
        the grid.
    """
    grid = volume_to_grid(image)
    enhanced = enhance_slices(grid.slices, generator, batch_size=batch_size, progress=progress)
    return grid_to_volume(enhanced, grid, image)


# --- files ----------------------------------------------------------------------------------------


def load_volume(path: str | Path) -> nib.spatialimages.SpatialImage:
    """Read the scan at ``path`` with nibabel, voxels included, checking it is one 3-D volume.

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


def default_degraded_path(output: str | Path) -> Path:
    """``OUT`` with ``_lq`` before its suffix: ``brain_enhanced.nii.gz`` -> ``brain_enhanced_lq.nii.gz``."""
    output = Path(output)
    for suffix in NIFTI_SUFFIXES:
        if output.name.endswith(suffix):
            return output.with_name(output.name[: -len(suffix)] + "_lq" + suffix)
    return output.with_name(output.name + "_lq")


def _check_output(path: Path, what: str) -> None:
    if not path.name.endswith(NIFTI_SUFFIXES):
        raise EnhanceError(f"{what} {path} must end in .nii or .nii.gz")


def _save(image: nib.Nifti1Image, path: Path) -> None:
    """Write atomically: a hidden file with the same extension, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        nib.save(image, tmp)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise EnhanceError(f"cannot write {path} ({type(error).__name__}: {error})") from error


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

    def describe(self) -> str:
        """One line for the command line."""
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
) -> EnhanceResult:
    """``advmri enhance``: read a scan, (degrade it,) enhance it, write the result(s).

    Parameters
    ----------
    input_path : path
        A 3-D NIfTI (anything nibabel reads as one 3-D volume).
    output_path : path
        The enhanced volume, ``.nii`` or ``.nii.gz``: float32, input's shape, affine and header.
    network : path
        ``results/networks/<cell>/generator.pt`` (or ``pretrain``).
    degrade : bool
        Treat the input as HQ: enhance its LQ version (:func:`degrade_volume`) instead, and write
        that too.
    degraded_path : path, optional
        Where the LQ volume goes; default :func:`default_degraded_path` of ``output_path``.
    seed : int
        Seed of the degradation's noise.
    device : {"auto", "cpu", "cuda"}
        ``auto`` = CUDA when available.
    batch_size : int
        Slices per forward pass.
    config : path, optional
        Study config for the degradation settings (:func:`degradation_settings`).
    progress : bool
        A tqdm bar on stderr.
    warn : callable, optional
        Called with each warning line (:func:`network_warnings`) before the work starts.

    Raises
    ------
    EnhanceError
        Any bad input, network file, setting or output path; one line.
    """
    started = time.perf_counter()
    input_path, output_path = Path(input_path), Path(output_path)
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
    grid = volume_to_grid(
        image, str(input_path)
    )  # a bad geometry is refused before the network loads
    torch_device = resolve_device(device)
    generator, metadata = load_network(network, device=torch_device)
    for line in network_warnings(metadata, str(network)):
        if warn is not None:
            warn(line)
    settings = degradation_settings(metadata, config) if degrade else None

    inputs = grid.slices
    if settings is not None:
        rng = np.random.default_rng(seed)
        inputs = degrade_slices(grid.slices, settings.noise_std, settings.kspace_fraction, rng)
    enhanced = enhance_slices(inputs, generator, batch_size=batch_size, progress=progress)
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
