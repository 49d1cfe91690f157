"""What the README's restart section promises: a network that a failed rerun removed comes back
from its checkpoint, which no rule declares as output, so Snakemake never deletes it."""

from __future__ import annotations

import pandas as pd
import torch
from test_loop import _finetune, _pretrain
from tiny_training import make_tiny_config, make_tiny_data

from advmri.grid import Cell
from advmri.models import load_generator


def test_a_removed_network_comes_back_from_its_final_checkpoint_without_training(tmp_path):
    config, data, cell = make_tiny_config(), make_tiny_data(), Cell(1.0, 0.1, 0.01)
    pretrained = _pretrain(config, data, tmp_path)
    out, _ = _finetune(config, data, tmp_path, cell, pretrained)
    before, _ = load_generator(out / "generator.pt")
    log_before = pd.read_csv(out / "train_log.csv")
    # what Snakemake does before rerunning the job (a changed setting, --force): outputs removed
    (out / "generator.pt").unlink()
    (out / "train_log.csv").unlink()

    epochs_run = []
    _finetune(
        config, data, tmp_path, cell, pretrained, on_epoch_end=lambda e, r: epochs_run.append(e)
    )
    assert epochs_run == []  # resumed after the last epoch: nothing to train
    after, _ = load_generator(out / "generator.pt")
    for key, value in before.state_dict().items():
        assert torch.equal(value, after.state_dict()[key]), key
    pd.testing.assert_frame_equal(pd.read_csv(out / "train_log.csv"), log_before)
