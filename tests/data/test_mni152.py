import socket

import numpy as np
import pytest

from advmri.data.anatomy import IMAGE_SHAPE
from advmri.data.mni152 import load_mni152_subjects, subject_slabs
from advmri.errors import ConfigError


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the embedded template tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_template_loads_without_the_network(no_network):
    subjects = list(load_mni152_subjects(n_subjects=3, first_slice=70, slice_spacing=5))
    assert [s.subject for s in subjects] == ["mni152_000", "mni152_001", "mni152_002"]
    for s in subjects:
        for array in (s.t1, s.wm, s.gm, s.csf):
            assert array.shape == IMAGE_SHAPE and array.dtype == np.float32
            assert array.min() >= 0 and array.max() <= 1
        assert s.wm.sum() > 1000 and s.gm.sum() > 1000  # real brain tissue in each slab


def test_template_is_stored_in_ras_so_the_shared_orientation_code_applies(no_network):
    # axial_slab's row/column mapping is checked against a marker voxel in tests/data/test_oasis1.py;
    # it relies on the volume's affine, which for the template must be RAS
    import nibabel as nib
    from nilearn import datasets

    assert nib.aff2axcodes(datasets.load_mni152_gm_template(resolution=1).affine) == ("R", "A", "S")


def test_subjects_are_disjoint_slabs():
    slabs = subject_slabs(4, 30, 3, 2)
    slices = [set(range(first, first + thickness)) for first, thickness in slabs]
    assert all(not (a & b) for i, a in enumerate(slices) for b in slices[i + 1 :])


def test_overlapping_or_overflowing_slabs_are_refused():
    with pytest.raises(ConfigError, match="share slices"):
        subject_slabs(4, 30, 2, 3)
    with pytest.raises(ConfigError, match="beyond the template"):
        subject_slabs(100, 30, 3, 1)
