import pandas as pd
import pytest

from advmri.data.oasis1 import load_oasis1_subjects
from advmri.data.split import split_indices, split_subjects
from advmri.errors import DataError

from fabricate import write_oasis_tree


def assert_disjoint_by_subject(split: pd.DataFrame) -> None:
    assert split["subject"].is_unique
    groups = [
        set(split.loc[split["split"] == name, "subject"]) for name in ("train", "val", "test")
    ]
    assert all(groups) and not (
        groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2]
    )


def test_paper_fractions_give_90_test_patients_of_436():
    subjects = [f"s{i:03d}" for i in range(436)]
    split = split_subjects(subjects, 90 / 436, 0.2, seed=0)
    counts = split["split"].value_counts()
    assert counts["test"] == 90 and counts["val"] == 69 and counts["train"] == 277
    assert_disjoint_by_subject(split)


def test_split_is_deterministic_and_seed_dependent():
    subjects = [f"s{i:03d}" for i in range(50)]
    a = split_subjects(subjects, 0.2, 0.2, seed=1)
    assert a.equals(split_subjects(list(reversed(subjects)), 0.2, 0.2, seed=1))
    assert not a.equals(split_subjects(subjects, 0.2, 0.2, seed=2))


def test_split_never_puts_one_mni152_subject_in_two_splits():
    samples = pd.DataFrame(
        {"sample": range(60), "subject": [f"mni152_{i // 6:03d}" for i in range(60)]}
    )
    split = split_subjects(samples["subject"], 0.2, 0.2, seed=3)
    assert_disjoint_by_subject(split)
    indices = split_indices(samples, split)
    parts = [set(indices[name]) for name in ("train", "val", "test")]
    assert sum(map(len, parts)) == 60 and not (parts[0] & parts[1] or parts[0] & parts[2])
    for name, indices in zip(("train", "val", "test"), parts, strict=True):
        subjects = set(samples.loc[list(indices), "subject"])
        assert subjects == set(split.loc[split["split"] == name, "subject"])


def test_oasis_mr1_and_mr2_of_one_patient_land_in_the_same_split(tmp_path):
    sessions = [f"OAS1_{i:04d}_MR1" for i in range(1, 9)] + ["OAS1_0002_MR2", "OAS1_0005_MR2"]
    subjects = list(load_oasis1_subjects(write_oasis_tree(tmp_path, sessions), slice_index=88))
    by_session = {s.session: s.subject for s in subjects}
    assert by_session["OAS1_0002_MR2"] == by_session["OAS1_0002_MR1"] == "OAS1_0002"
    split = split_subjects([s.subject for s in subjects], 0.25, 0.2, seed=0)
    assert_disjoint_by_subject(split)
    assert len(split) == 8  # ten sessions, eight patients


def test_too_few_subjects_for_three_splits_is_refused():
    with pytest.raises(DataError, match="every split needs at least one"):
        split_subjects(["a", "b"], 0.2, 0.2, seed=0)
