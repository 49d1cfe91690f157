"""Reading the scan and writing the results: one 3-D volume in, NIfTI files out, atomically."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import nibabel as nib
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from advmri.enhance.errors import EnhanceError, first_line
from advmri.enhance.volume import volume_array

#: Extensions :func:`advmri.enhance.enhance_file` writes (any letter case).
NIFTI_SUFFIXES = (".nii.gz", ".nii")


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
            f"({type(error).__name__}: {first_line(error)})"
        ) from error
    volume_array(image, str(path))  # checks the shape, reads (and caches) the voxels
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


def check_output(path: Path, what: str) -> None:
    if _nifti_suffix(path) is None:
        raise EnhanceError(f"{what} {path} must end in .nii or .nii.gz")


def save_volume(image: nib.Nifti1Image, path: Path) -> None:
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
            f"cannot write {path} ({type(error).__name__}: {first_line(error)}); "
            "nothing was written there"
        ) from error
