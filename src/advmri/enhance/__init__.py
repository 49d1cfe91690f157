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
degradation (:func:`advmri.data.kspace.degraded_magnitude`: central k-space band, complex Gaussian
noise, magnitude, nearest-neighbour resize) on the grid, slice by slice from one generator seeded
with ``seed``; the final min-max rescale is over the whole volume instead of each slice, for the
reason of step 4. Its settings come from the network file (:func:`degradation_settings`).

Modules:

- :mod:`advmri.enhance.volume`: steps 1-4, a volume's slices on the grid and back
  (:func:`volume_to_grid`, :func:`grid_to_volume`, :func:`intensity_limits`); the voxel-grid
  geometry is :mod:`advmri.data.geometry`'s.
- :mod:`advmri.enhance.network`: the generator of a network's folder, checked, run over grid
  slices with :mod:`advmri.models.inference` (:func:`load_network`, :func:`enhance_slices`).
- :mod:`advmri.enhance.degradation`: ``--degrade`` and where its settings come from.
- :mod:`advmri.enhance.files`: reading the scan, writing NIfTI files atomically.
- :mod:`advmri.enhance.command`: :func:`enhance_volume` and the command, :func:`enhance_file`.
"""

from advmri.data.geometry import PIXEL_MM
from advmri.enhance.command import EnhanceResult, enhance_file, enhance_volume
from advmri.enhance.degradation import (
    DEFAULT_KSPACE_FRACTION,
    DEFAULT_NOISE_STD,
    DEFAULT_SEED,
    DegradationSettings,
    check_seed,
    degradation_settings,
    degrade_slices,
    degrade_volume,
)
from advmri.enhance.errors import EnhanceError
from advmri.enhance.files import NIFTI_SUFFIXES, default_degraded_path, load_volume
from advmri.enhance.network import (
    GENERATOR_FILE,
    check_network,
    enhance_slices,
    load_network,
    network_file,
    network_warnings,
    resolve_device,
)
from advmri.enhance.volume import (
    INTENSITY_PERCENTILES,
    GridVolume,
    check_percentiles,
    grid_to_volume,
    intensity_limits,
    no_signal_warning,
    volume_to_grid,
)

__all__ = [
    "DEFAULT_KSPACE_FRACTION",
    "DEFAULT_NOISE_STD",
    "DEFAULT_SEED",
    "GENERATOR_FILE",
    "INTENSITY_PERCENTILES",
    "NIFTI_SUFFIXES",
    "PIXEL_MM",
    "DegradationSettings",
    "EnhanceError",
    "EnhanceResult",
    "GridVolume",
    "check_network",
    "check_percentiles",
    "check_seed",
    "default_degraded_path",
    "degradation_settings",
    "degrade_slices",
    "degrade_volume",
    "enhance_file",
    "enhance_slices",
    "enhance_volume",
    "grid_to_volume",
    "intensity_limits",
    "load_network",
    "load_volume",
    "network_file",
    "network_warnings",
    "no_signal_warning",
    "resolve_device",
    "volume_to_grid",
]
