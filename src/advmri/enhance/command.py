"""``advmri enhance``: a volume (or a scan file) through a generator, back in its own geometry."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from advmri.data.geometry import PIXEL_MM, SliceMap, check_pixel_mm
from advmri.enhance.degradation import (
    DEFAULT_SEED,
    DegradationSettings,
    check_seed,
    degradation_settings,
    degrade_slices,
)
from advmri.enhance.errors import EnhanceError
from advmri.enhance.files import check_output, default_degraded_path, load_volume, save_volume
from advmri.enhance.network import (
    enhance_slices,
    load_network,
    network_warnings,
    resolve_device,
)
from advmri.enhance.volume import (
    INTENSITY_PERCENTILES,
    check_percentiles,
    grid_to_volume,
    no_signal_warning,
    volume_to_grid,
)


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
    check_output(output_path, "output")
    targets = [output_path]
    if degrade:
        degraded_path = Path(degraded_path or default_degraded_path(output_path))
        check_output(degraded_path, "--degraded-out")
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
        save_volume(unchanged, output_path)
        if settings is not None:
            save_volume(unchanged, degraded_path)
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
    save_volume(grid_to_volume(enhanced, grid, image), output_path)
    if settings is not None:
        save_volume(grid_to_volume(inputs, grid, image), degraded_path)
    return EnhanceResult(
        output=output_path,
        degraded=degraded_path if degrade else None,
        slices=len(inputs),
        slice_map=grid.slice_map,
        device=str(torch_device),
        degradation=settings,
        seconds=time.perf_counter() - started,
    )
