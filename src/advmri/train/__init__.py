"""Training: L1 pretraining of the generator and one fine-tuning run per grid cell."""

from advmri.train.data import TrainingData, load_training_data
from advmri.train.loop import train_network
from advmri.train.settings import (
    checkpoint_every,
    effective_finetune_settings,
    effective_pretrain_settings,
    finetune_settings_of,
    settings_hash,
    speed_options,
)

__all__ = [
    "TrainingData",
    "checkpoint_every",
    "effective_finetune_settings",
    "effective_pretrain_settings",
    "finetune_settings_of",
    "load_training_data",
    "settings_hash",
    "speed_options",
    "train_network",
]
