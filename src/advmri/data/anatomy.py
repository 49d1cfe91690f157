"""One interface for the anatomy a dataset is synthesised from.

A :class:`Subject` is one patient's 2-D axial anatomy on the network's 208 x 176 grid: the WM, GM and
CSF probability maps the synthesis mixes, and the T1 image where the source has one. Every source (the
embedded MNI152 template, an OASIS-1 download, users' tissue maps listed in a NIfTI manifest) yields
subjects in a fixed, sorted order, so the dataset and the split are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

#: Rows x columns of every image in the study (study §2: OASIS-1's 208 x 176 axial matrix).
IMAGE_SHAPE: tuple[int, int] = (208, 176)


@dataclass(frozen=True)
class Subject:
    """One scan session's axial anatomy on the ``IMAGE_SHAPE`` grid.

    ``subject`` is the patient (the split's unit); ``session`` names this scan, unique in a dataset
    (OASIS-1 ``OAS1_0061_MR2`` is a session of patient ``OAS1_0061``). Maps are float32 in [0, 1],
    rows anterior to posterior, columns patient-left to patient-right (neurological view). ``t1`` is
    None for a source of tissue maps alone (``nifti``): the synthesis never reads it.
    """

    subject: str
    session: str
    t1: np.ndarray | None
    wm: np.ndarray
    gm: np.ndarray
    csf: np.ndarray

    def __post_init__(self) -> None:
        for name in ("t1", "wm", "gm", "csf"):
            array = getattr(self, name)
            if array is None and name == "t1":
                continue
            if array.shape != IMAGE_SHAPE:
                raise ValueError(
                    f"{self.session}: {name} map has shape {array.shape}, expected {IMAGE_SHAPE}"
                )


def axial_slab(
    volume: nib.spatialimages.SpatialImage, first: int, thickness: int = 1
) -> np.ndarray:
    """Mean of ``thickness`` axial slices from index ``first`` (inferior to superior), as an image.

    The volume is brought to RAS+ voxel order first (``nibabel.as_closest_canonical``), so any stored
    orientation gives the same picture: rows run anterior -> posterior, columns left -> right.
    """
    canonical = nib.as_closest_canonical(volume)
    depth = canonical.shape[2]
    if first < 0 or first + thickness > depth:
        raise ValueError(f"axial slices {first}..{first + thickness - 1} outside 0..{depth - 1}")
    data = np.asanyarray(canonical.dataobj)
    if data.ndim == 4:  # Analyze volumes carry a trailing time axis of length 1
        data = data[..., 0]
    slab = np.asarray(data[:, :, first : first + thickness], dtype=np.float64).mean(axis=2)
    # voxel (x, y) in RAS -> image (row, col): rows = y reversed (anterior up), cols = x (left first)
    return slab[:, ::-1].T


def center_crop_or_pad(image: np.ndarray, shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """Crop (or zero-pad) ``image`` symmetrically about its centre to ``shape``."""
    out = np.zeros(shape, dtype=image.dtype)
    src_slices, dst_slices = [], []
    for have, want in zip(image.shape, shape, strict=True):
        if have >= want:
            start = (have - want) // 2
            src_slices.append(slice(start, start + want))
            dst_slices.append(slice(0, want))
        else:
            start = (want - have) // 2
            src_slices.append(slice(0, have))
            dst_slices.append(slice(start, start + have))
    out[tuple(dst_slices)] = image[tuple(src_slices)]
    return out


def csf_from_mask(brain: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """CSF probability as brain mask minus GM minus WM, clipped to [0, 1]."""
    return np.clip(brain - gm - wm, 0.0, 1.0)
