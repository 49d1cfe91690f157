"""``--degrade``: the LQ version of a HQ volume, made as the dataset makes LQ inputs
(:func:`advmri.data.kspace.degraded_magnitude`), with settings from the network file, a study
config checked against the schema, or the schema's defaults."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml

from advmri.config import schema_default, validate_overlay
from advmri.data.geometry import GRID_SHAPE, PIXEL_MM
from advmri.data.kspace import band_shape, degraded_magnitude, normalize_unit
from advmri.enhance.errors import EnhanceError, first_line
from advmri.enhance.volume import INTENSITY_PERCENTILES, grid_to_volume, volume_to_grid
from advmri.errors import ConfigError

#: Seed of ``--degrade``'s noise.
DEFAULT_SEED = 2024
#: The schema's ``synthesis.noise_std`` default, for network files that do not record theirs.
DEFAULT_NOISE_STD = float(schema_default("synthesis.noise_std"))
#: The schema's ``synthesis.kspace_fraction`` default, for network files that do not record theirs.
DEFAULT_KSPACE_FRACTION = float(schema_default("synthesis.kspace_fraction"))
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
    2. ``config``, a study config given by the user (``--config``), checked against the schema
       (:func:`config_synthesis`): its ``synthesis.noise_std`` and ``synthesis.kspace_fraction``,
       a key it lacks taken from 3.
    3. The schema's defaults :data:`DEFAULT_NOISE_STD` and :data:`DEFAULT_KSPACE_FRACTION`
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
        A config file missing, unreadable or refused by the schema, or a value out of range.
    """
    synthesis = (metadata or {}).get("synthesis")
    if isinstance(synthesis, dict) and all(key in synthesis for key in _SYNTHESIS_KEYS):
        source = NETWORK_SOURCE
    elif config is not None:
        given = config_synthesis(config)
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


def config_synthesis(config: str | Path) -> dict:
    """The ``synthesis`` section of the study config at ``config`` (``--config``), checked against
    the schema as a partial config (:func:`advmri.config.validate_overlay`); ``{}`` when it has none.

    Raises
    ------
    EnhanceError
        The file is missing, not YAML, not a mapping, or has a key the schema does not know or a
        value it refuses (the config's one line, after ``--config PATH:``).
    """
    try:
        with open(config) as handle:
            loaded = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise EnhanceError(
            f"--config {config}: cannot read it ({type(error).__name__}: "
            f"{first_line(error)}); it should be a YAML file with synthesis.noise_std and "
            "synthesis.kspace_fraction"
        ) from error
    loaded = {} if loaded is None else loaded
    if not isinstance(loaded, dict):
        raise EnhanceError(
            f"--config {config}: holds a {type(loaded).__name__}, not a study config (a mapping "
            "with a synthesis section)"
        )
    try:
        validate_overlay(loaded)
    except ConfigError as error:
        raise EnhanceError(f"--config {config}: {error}") from error
    return dict(loaded.get("synthesis") or {})


def degrade_slices(
    hq: np.ndarray, noise_std: float, kspace_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """LQ versions of ``(N, 208, 176)`` HQ grid slices in [0, 1]: :func:`~advmri.data.kspace.degrade`.

    Per slice, in order (:func:`advmri.data.kspace.degraded_magnitude`): the central ``kspace_fraction`` of k-space, complex Gaussian noise of
    standard deviation ``noise_std`` (real and imaginary part, HQ units) drawn from ``rng``, the
    magnitude, nearest-neighbour enlargement back to the grid. The final min-max rescale to [0, 1]
    is over all slices together rather than each slice (see the module's notes). float32.
    """
    try:
        band_shape(hq.shape[1:], kspace_fraction)
    except ValueError as error:
        raise EnhanceError(f"--degrade: {error}") from error
    magnitude = np.empty(hq.shape, dtype=np.float32)
    for k, image in enumerate(hq):
        magnitude[k] = degraded_magnitude(image.astype(np.float64), kspace_fraction, noise_std, rng)
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
