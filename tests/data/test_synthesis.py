import copy

import numpy as np
import pytest

from advmri.data.mni152 import load_mni152_subjects
from advmri.data.synthesis import SAMPLE_COLUMNS, synthesize_dataset, synthesize_sample
from advmri.errors import DataError


@pytest.fixture(scope="module")
def subjects():
    return list(load_mni152_subjects(n_subjects=4, first_slice=60, slice_spacing=10))


@pytest.fixture
def settings(tiny_synthesis):
    settings = copy.deepcopy(tiny_synthesis)
    settings["samples_per_subject"] = 3
    return settings


def test_two_runs_give_identical_bytes_whatever_the_worker_count(subjects, settings):
    one = synthesize_dataset(subjects, settings, seed=7, workers=1)
    two = synthesize_dataset(subjects, settings, seed=7, workers=2)
    for name in ("hq", "lq", "lesion"):
        assert getattr(one, name).tobytes() == getattr(two, name).tobytes()
    assert one.samples.equals(two.samples)


def test_one_sample_regenerated_alone_equals_its_row_in_the_full_set(subjects, settings):
    full = synthesize_dataset(subjects, settings, seed=7)
    row = full.samples.query("session == 'mni152_002' and augmentation == 1").iloc[0]
    alone = synthesize_sample(subjects[2], 1, settings, seed=7)
    assert np.array_equal(alone.hq, full.hq[row["sample"]])
    assert np.array_equal(alone.lq, full.lq[row["sample"]])
    assert np.array_equal(alone.lesion, full.lesion[row["sample"]])


def test_another_seed_gives_other_samples(subjects, settings):
    a = synthesize_sample(subjects[0], 0, settings, seed=1)
    b = synthesize_sample(subjects[0], 0, settings, seed=2)
    assert not np.array_equal(a.hq, b.hq)


def test_samples_follow_the_contract(subjects, settings):
    data = synthesize_dataset(subjects, settings, seed=3)
    n = len(subjects) * settings["samples_per_subject"]
    assert list(data.samples.columns) == SAMPLE_COLUMNS
    assert data.hq.shape == data.lq.shape == data.lesion.shape == (n, 208, 176)
    assert data.hq.dtype == data.lq.dtype == np.float32 and data.lesion.dtype == bool
    for stack in (data.hq, data.lq):
        assert stack.min() >= 0 and stack.max() <= 1
    assert list(data.samples["sample"]) == list(range(n))
    assert set(data.samples["augmentation"]) == {0, 1, 2}
    for _, row in data.samples.iterrows():
        mask = data.lesion[row["sample"]]
        rows, cols = np.nonzero(mask)
        assert (row["bbox_r0"], row["bbox_c0"]) == (rows.min(), cols.min())
        assert (row["bbox_r1"], row["bbox_c1"]) == (rows.max() + 1, cols.max() + 1)
        assert row["lesion_area_px"] == mask.sum() >= settings["lesion"]["min_area_px"]


def test_lesions_are_hyperintense_against_their_surroundings(subjects, settings):
    data = synthesize_dataset(subjects, settings, seed=5)
    for index in range(len(data.samples)):
        mask = data.lesion[index]
        from scipy.ndimage import binary_dilation

        ring = binary_dilation(mask, iterations=4) & ~binary_dilation(mask, iterations=2)
        assert data.hq[index][mask].mean() > data.hq[index][ring].mean()


def test_lesion_tissue_follows_the_configured_probabilities(subjects, settings):
    settings["lesion"]["tissue_probabilities"] = {"wm": 0.0, "gm": 1.0}
    data = synthesize_dataset(subjects, settings, seed=5)
    assert set(data.samples["lesion_tissue"]) == {"gm"}


def test_impossible_lesion_size_names_the_session(subjects, settings):
    settings["lesion"]["min_area_px"] = 100_000
    with pytest.raises(DataError, match="mni152_000.*min_area_px"):
        synthesize_sample(subjects[0], 0, settings, seed=1)
