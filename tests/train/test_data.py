"""Loading the dataset stage's arrays into train and val tensors by subject."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advmri.errors import DataError
from advmri.train import load_training_data


def _write(tmp_path, n=12, split_rows=None):
    hq = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((n, 16, 16), np.float32) / n
    np.save(tmp_path / "hq.npy", hq)
    np.save(tmp_path / "lq.npy", hq * 0.5)
    samples = pd.DataFrame({"sample": range(n), "subject": [f"s{i // 3}" for i in range(n)]})
    samples.to_csv(tmp_path / "samples.csv", index=False)
    split = split_rows or {"s0": "train", "s1": "val", "s2": "test", "s3": "train"}
    pd.DataFrame({"subject": list(split), "split": list(split.values())}).to_csv(
        tmp_path / "split.csv", index=False
    )
    return [tmp_path / f for f in ("hq.npy", "lq.npy", "samples.csv", "split.csv")]


def test_samples_follow_their_subjects_split_and_test_images_are_not_loaded(tmp_path):
    data = load_training_data(*_write(tmp_path))
    n = 12
    assert sorted((data.train_hq[:, 0, 0, 0] * n).round().int().tolist()) == [0, 1, 2, 9, 10, 11]
    assert sorted((data.val_hq[:, 0, 0, 0] * n).round().int().tolist()) == [3, 4, 5]
    assert data.train_lq.shape == (6, 1, 16, 16)
    assert np.allclose(data.train_lq.numpy(), data.train_hq.numpy() * 0.5)


def test_a_subject_missing_from_the_split_table_is_named(tmp_path):
    paths = _write(tmp_path, split_rows={"s0": "train", "s1": "val", "s2": "test"})
    with pytest.raises(DataError, match="no row for subject s3"):
        load_training_data(*paths)


def test_an_empty_training_split_is_refused(tmp_path):
    paths = _write(tmp_path, split_rows={"s0": "val", "s1": "val", "s2": "test", "s3": "test"})
    with pytest.raises(DataError, match="no subject in the train split"):
        load_training_data(*paths)
