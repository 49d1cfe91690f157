"""Tiny configurations and data that train in well under a second per epoch on one CPU core.

(Not a conftest.py: tests/conftest.py is imported by name as ``conftest`` elsewhere.)
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from advmri.train.data import TrainingData

TINY_CONFIG = {
    "seed": 7,
    "model": {
        "generator": {"depth": 2, "width": 4},
        "discriminator": {"width": 4, "skip_connection": True},
    },
    "perceptual": {
        "weights": "random",
        "weights_path": None,
        "layers": ["conv1_2", "conv2_2"],
        "layer_weights": [0.1, 1.0],
        "criterion": "l2",
    },
    "objective": {"gan_loss": "pixel"},
    "pretrain": {
        "epochs": 2,
        "lr": 0.001,
        "batch_size": 4,
        "betas": [0.9, 0.999],
        "checkpoint_every": 1,
        "recalibrate_bn": True,
    },
    "finetune": {
        "epochs": 4,
        "batch_size": 4,
        "betas": [0.9, 0.999],
        "schedule": "constant",
        "keep": "last",
        "checkpoint_every": 2,
        "recalibrate_bn": True,
        "cell_overrides": {},
    },
    "grid": {"w_per": [0.5, 1.0], "w_adv": [0, 0.1], "lr": [0.001, 0.01]},
    "compute": {
        "device": "cpu",
        "bf16": True,
        "channels_last": True,
        "data_on_device": True,
        "fused_adam": True,
        "compile": False,
    },
}


def make_tiny_config() -> dict:
    """A fresh copy of :data:`TINY_CONFIG` to modify."""
    return copy.deepcopy(TINY_CONFIG)


def make_tiny_data(n_train: int = 10, n_val: int = 4, size: tuple[int, int] = (16, 16)):
    """Smooth blobs as HQ, 4x4-block averages plus noise as LQ (a miniature of the real task)."""
    rng = np.random.default_rng(0)
    n = n_train + n_val
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]]
    centres = rng.uniform(4, 12, size=(n, 2))
    hq = np.exp(
        -(
            (rows[None] - centres[:, 0, None, None]) ** 2
            + (cols[None] - centres[:, 1, None, None]) ** 2
        )
        / 18.0
    ).astype(np.float32)
    blocks = hq.reshape(n, size[0] // 4, 4, size[1] // 4, 4).mean(axis=(2, 4))
    lq = np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2)
    lq = np.clip(lq + rng.normal(0, 0.03, lq.shape), 0, 1).astype(np.float32)
    hq_t = torch.from_numpy(hq).unsqueeze(1)
    lq_t = torch.from_numpy(lq).unsqueeze(1)
    return TrainingData(
        train_lq=lq_t[:n_train].clone(),
        train_hq=hq_t[:n_train].clone(),
        val_lq=lq_t[n_train:].clone(),
        val_hq=hq_t[n_train:].clone(),
    )
