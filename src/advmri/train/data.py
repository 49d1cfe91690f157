"""The training and validation arrays of the dataset stage's output, as tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from advmri.data.dataset import DatasetFiles, take_samples
from advmri.data.split import rows_of_split


@dataclass
class TrainingData:
    """LQ inputs and HQ targets, ``(N, 1, H, W)`` float32 in [0, 1], for train and val."""

    train_lq: torch.Tensor
    train_hq: torch.Tensor
    val_lq: torch.Tensor
    val_hq: torch.Tensor

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_lq.shape[-2]), int(self.train_lq.shape[-1])


def load_training_data(
    hq: str | Path, lq: str | Path, samples: str | Path, split: str | Path
) -> TrainingData:
    """Load the train and val samples of ``hq.npy``/``lq.npy`` (the test split is not read).

    Raises
    ------
    DataError
        Anything :func:`advmri.data.dataset.read_dataset` refuses (a missing, truncated or
        corrupt file, NaN in an image, naming the file and sample) or
        :func:`advmri.data.split.rows_of_split` (a split table that does not cover the samples,
        an empty training split).
    """
    dataset = DatasetFiles(hq=Path(hq), lq=Path(lq), samples=Path(samples)).read()
    train = take_samples(dataset, rows_of_split(dataset.samples, split, "train", "train on"))
    val = take_samples(dataset, rows_of_split(dataset.samples, split, "val"))

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(1)

    return TrainingData(
        train_lq=tensor(train.lq),
        train_hq=tensor(train.hq),
        val_lq=tensor(val.lq),
        val_hq=tensor(val.hq),
    )
