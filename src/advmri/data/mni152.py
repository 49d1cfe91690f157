"""The embedded anatomy: the MNI152 2009 template as shipped inside nilearn's wheel.

nilearn 0.13 carries ``mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a`` in its package data, so loading touches
no network. One template has one anatomy; "subjects" are disjoint slabs of its axial slices, so no slice
is shared between subjects and a split by subject never leaks a slice. Neighbouring slabs still look
alike: the embedded data demonstrates the pipeline, it does not replace a cohort such as OASIS-1.
Licence: see docs/DATA_LICENSES.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from advmri.data.anatomy import IMAGE_SHAPE, Subject, axial_slab, center_crop_or_pad, csf_from_mask
from advmri.errors import ConfigError

#: Axial slices of the 1 mm template (197 x 233 x 189 voxels, RAS).
MNI152_DEPTH = 189


def _load_templates():
    # Imported here: nilearn is heavy and only this source needs it.
    from nilearn import datasets

    return (
        datasets.load_mni152_template(resolution=1),
        datasets.load_mni152_gm_template(resolution=1),
        datasets.load_mni152_wm_template(resolution=1),
        datasets.load_mni152_brain_mask(resolution=1),
    )


def subject_slabs(
    n_subjects: int, first_slice: int, slice_spacing: int, slab_thickness: int
) -> list[tuple[int, int]]:
    """(first, thickness) of each subject's slab; raises ConfigError when they overlap or overflow."""
    if slab_thickness > slice_spacing:
        raise ConfigError(
            f"data.mni152.slab_thickness = {slab_thickness} exceeds slice_spacing = {slice_spacing}: "
            "neighbouring subjects would share slices"
        )
    last = first_slice + (n_subjects - 1) * slice_spacing + slab_thickness - 1
    if last >= MNI152_DEPTH:
        raise ConfigError(
            f"data.mni152: {n_subjects} subjects from slice {first_slice} every {slice_spacing} "
            f"reach slice {last}, beyond the template's {MNI152_DEPTH} axial slices"
        )
    return [(first_slice + k * slice_spacing, slab_thickness) for k in range(n_subjects)]


def load_mni152_subjects(
    n_subjects: int, first_slice: int, slice_spacing: int, slab_thickness: int = 1
) -> Iterator[Subject]:
    """Yield the template's subjects ``mni152_000``, ``mni152_001``, ... in order."""
    slabs = subject_slabs(n_subjects, first_slice, slice_spacing, slab_thickness)
    t1_img, gm_img, wm_img, mask_img = _load_templates()
    for index, (first, thickness) in enumerate(slabs):
        t1, gm, wm, brain = (
            center_crop_or_pad(axial_slab(img, first, thickness), IMAGE_SHAPE)
            for img in (t1_img, gm_img, wm_img, mask_img)
        )
        t1 = t1 / max(float(t1.max()), 1e-12)
        name = f"mni152_{index:03d}"
        yield Subject(
            subject=name,
            session=name,
            t1=t1.astype(np.float32),
            wm=np.clip(wm, 0, 1).astype(np.float32),
            gm=np.clip(gm, 0, 1).astype(np.float32),
            csf=csf_from_mask(brain, gm, wm).astype(np.float32),
        )
