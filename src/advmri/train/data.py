"""The training and validation arrays of the dataset stage's output, as tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advmri.data.dataset import read_dataset
from advmri.data.split import split_indices
from advmri.errors import DataError


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
        corrupt file, NaN in an image, naming the file and sample), an empty training split.
    """
    dataset = read_dataset(hq=hq, lq=lq, samples=samples)
    hq_all, lq_all, table = dataset.hq, dataset.lq, dataset.samples
    indices = split_indices(table, pd.read_csv(split))
    if indices["train"].size == 0:
        raise DataError(f"{split} puts no subject in the train split; nothing to train on")

    def tensor(array: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array[rows], dtype=np.float32)).unsqueeze(1)

    return TrainingData(
        train_lq=tensor(lq_all, indices["train"]),
        train_hq=tensor(hq_all, indices["train"]),
        val_lq=tensor(lq_all, indices["val"]),
        val_hq=tensor(hq_all, indices["val"]),
    )
