"""The training loop: outputs, resume, refused checkpoints, NaN handling, kept weights."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from tiny_training import make_tiny_config, make_tiny_data

from advmri.errors import ConfigError, TrainingError
from advmri.grid import Cell
from advmri.models import RANDOM_FLAG, load_generator
from advmri.train import (
    effective_finetune_settings,
    effective_pretrain_settings,
    train_network,
)


@pytest.fixture
def tiny_config() -> dict:
    return make_tiny_config()


@pytest.fixture
def tiny_data():
    return make_tiny_data()


class Killed(Exception):
    """Stands for the job being killed after an epoch."""


def _pretrain(config, data, tmp_path):
    out = tmp_path / "networks" / "pretrain"
    train_network(
        effective_pretrain_settings(config),
        data,
        generator_path=out / "generator.pt",
        log_path=out / "train_log.csv",
        checkpoint_dir=tmp_path / "checkpoints" / "pretrain",
        checkpoint_every=config["pretrain"]["checkpoint_every"],
        threads=1,
    )
    return out / "generator.pt"


def _finetune(config, data, tmp_path, cell, pretrained, run="run", on_epoch_end=None, **options):
    out = tmp_path / run / "networks" / cell.name
    metadata = train_network(
        effective_finetune_settings(config, cell),
        data,
        generator_path=out / "generator.pt",
        log_path=out / "train_log.csv",
        checkpoint_dir=tmp_path / run / "checkpoints" / cell.name,
        initial_generator=pretrained,
        checkpoint_every=config["finetune"]["checkpoint_every"],
        threads=1,
        on_epoch_end=on_epoch_end,
        **options,
    )
    return out, metadata


@pytest.fixture
def pretrained(tiny_config, tiny_data, tmp_path):
    return _pretrain(tiny_config, tiny_data, tmp_path)


def test_pretraining_logs_l1_and_val_l1_per_epoch_and_no_adversarial_terms(pretrained, tiny_config):
    log = pd.read_csv(pretrained.parent / "train_log.csv")
    assert list(log["epoch"]) == [1, 2]
    assert log["l1"].notna().all() and log["val_l1"].notna().all()
    assert (
        log[["perceptual", "adversarial", "discriminator", "d_real", "d_fake"]].isna().all().all()
    )
    model, metadata = load_generator(pretrained)
    assert metadata["stage"] == "pretrain"
    assert model.architecture["depth"] == tiny_config["model"]["generator"]["depth"]


def test_adversarial_cell_logs_every_term_and_flags_random_vgg_everywhere(
    tiny_config, tiny_data, tmp_path, pretrained
):
    out, metadata = _finetune(tiny_config, tiny_data, tmp_path, Cell(1.0, 0.1, 0.001), pretrained)
    log = pd.read_csv(out / "train_log.csv")
    assert len(log) == tiny_config["finetune"]["epochs"]
    terms = ["l1", "perceptual", "adversarial", "total", "discriminator", "d_real", "d_fake"]
    assert log[[*terms, "val_l1", "seconds"]].notna().all().all()
    assert log["perceptual_weights"].str.contains(RANDOM_FLAG).all()
    _, stored = load_generator(out / "generator.pt")
    assert RANDOM_FLAG in stored["perceptual_weights"]
    assert RANDOM_FLAG in stored["warning"]
    assert stored["settings"]["cell"]["name"] == "wper1_wadv0.1_lr0.001"
    assert stored["epochs_run"] == 4 and stored["torch_version"] == torch.__version__


def test_vgg_enhanced_cell_builds_and_steps_no_discriminator(
    tiny_config, tiny_data, tmp_path, pretrained
):
    cell = Cell(1.0, 0.0, 0.001)
    out, _ = _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained)
    log = pd.read_csv(out / "train_log.csv")
    assert log[["adversarial", "discriminator", "d_real", "d_fake"]].isna().all().all()
    checkpoint = torch.load(
        tmp_path / "run" / "checkpoints" / cell.name / "checkpoint.pt", weights_only=True
    )
    assert checkpoint["discriminator"] is None and checkpoint["opt_d"] is None


def test_image_gan_loss_trains_a_vgg_gan_cell_to_other_adversarial_losses(
    tiny_config, tiny_data, tmp_path, pretrained
):
    cell = Cell(1.0, 0.1, 0.001)
    pixel, _ = _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained, run="pixel")
    tiny_config["objective"]["gan_loss"] = "image"
    image, stored = _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained, run="image")
    assert stored["settings"]["objective"] == {"gan_loss": "image"}
    logs = [pd.read_csv(out / "train_log.csv") for out in (pixel, image)]
    assert logs[1][["adversarial", "discriminator"]].notna().all().all()
    assert not logs[0]["adversarial"].equals(logs[1]["adversarial"])


def test_an_unknown_gan_loss_in_the_settings_is_refused_before_training(
    tiny_config, tiny_data, tmp_path, pretrained
):
    tiny_config["objective"]["gan_loss"] = "mean"
    with pytest.raises(ConfigError, match="objective.gan_loss = 'mean'"):
        _finetune(tiny_config, tiny_data, tmp_path, Cell(1.0, 0.1, 0.001), pretrained)


def test_run_killed_after_epoch_3_and_resumed_is_bit_identical_to_an_uninterrupted_run(
    tiny_config, tiny_data, tmp_path, pretrained
):
    cell = Cell(1.0, 0.1, 0.01)
    whole, _ = _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained, run="whole")

    def kill_after_3(epoch, row):
        if epoch == 3:
            raise Killed

    with pytest.raises(Killed):  # checkpoints every 2 epochs: epoch 3 is lost and redone
        _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained, "killed", kill_after_3)
    resumed_epochs = []
    resumed, _ = _finetune(
        tiny_config,
        tiny_data,
        tmp_path,
        cell,
        pretrained,
        "killed",
        lambda epoch, row: resumed_epochs.append(epoch),
    )
    assert resumed_epochs == [3, 4]
    a, _ = load_generator(whole / "generator.pt")
    b, _ = load_generator(resumed / "generator.pt")
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    ckpt_a = torch.load(
        tmp_path / "whole/checkpoints" / cell.name / "checkpoint.pt", weights_only=True
    )
    ckpt_b = torch.load(
        tmp_path / "killed/checkpoints" / cell.name / "checkpoint.pt", weights_only=True
    )
    for key, value in ckpt_a["discriminator"].items():
        assert torch.equal(value, ckpt_b["discriminator"][key]), key
    columns = ["l1", "perceptual", "adversarial", "discriminator", "val_l1"]
    log_a = pd.read_csv(whole / "train_log.csv")[columns]
    log_b = pd.read_csv(resumed / "train_log.csv")[columns]
    pd.testing.assert_frame_equal(log_a, log_b, check_exact=True)


def test_checkpoint_written_under_other_settings_is_not_resumed(
    tiny_config, tiny_data, tmp_path, pretrained
):
    cell = Cell(1.0, 0.1, 0.001)
    _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained)
    tiny_config["finetune"]["cell_overrides"] = {cell.name: {"epochs": 3}}
    epochs_run = []
    out, _ = _finetune(
        tiny_config,
        tiny_data,
        tmp_path,
        cell,
        pretrained,
        on_epoch_end=lambda epoch, row: epochs_run.append(epoch),
    )
    assert epochs_run == [1, 2, 3]  # started over instead of reading the 4-epoch checkpoint
    assert list(pd.read_csv(out / "train_log.csv")["epoch"]) == [1, 2, 3]


def test_checkpoint_of_a_run_on_other_data_is_not_resumed(
    tiny_config, tiny_data, tmp_path, pretrained
):
    cell = Cell(1.0, 0.1, 0.001)
    _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained)
    tiny_data.train_hq[0] += 0.01  # e.g. the dataset was synthesised again with another setting
    epochs_run = []
    _finetune(
        tiny_config,
        tiny_data,
        tmp_path,
        cell,
        pretrained,
        on_epoch_end=lambda epoch, row: epochs_run.append(epoch),
    )
    assert epochs_run == [1, 2, 3, 4]


def test_nan_loss_stops_naming_cell_epoch_and_term_and_keeps_last_checkpoint(
    tiny_config, tiny_data, tmp_path, pretrained
):
    cell = Cell(1.0, 0.1, 0.001)
    tiny_config["finetune"]["checkpoint_every"] = 1

    def poison_after_2(epoch, row):
        if epoch == 2:
            tiny_data.train_hq.fill_(math.nan)

    with pytest.raises(
        TrainingError,
        match=r"finetune wper1_wadv0\.1_lr0\.001: loss 'l1' became "
        r"nan at epoch 3; the checkpoint of epoch 2 is kept",
    ):
        _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained, on_epoch_end=poison_after_2)
    checkpoint = torch.load(
        tmp_path / "run" / "checkpoints" / cell.name / "checkpoint.pt", weights_only=True
    )
    assert checkpoint["epoch"] == 2
    assert all(
        torch.isfinite(v).all() for v in checkpoint["generator"].values() if v.is_floating_point()
    )


def test_keep_best_val_outputs_the_epoch_with_the_lowest_validation_l1(
    tiny_config, tiny_data, tmp_path, pretrained
):
    tiny_config["finetune"].update(keep="best_val", epochs=5)
    cell = Cell(0.5, 0.1, 0.01)
    out, metadata = _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained)
    log = pd.read_csv(out / "train_log.csv")
    best_epoch = int(log.loc[log["val_l1"].idxmin(), "epoch"])
    assert metadata["kept_epoch"] == best_epoch
    assert metadata["val_l1"] == pytest.approx(log["val_l1"].min(), rel=1e-12)
    model, _ = load_generator(out / "generator.pt")
    with torch.no_grad():
        val = (model(tiny_data.val_lq) - tiny_data.val_hq).abs().mean().item()
    assert val == pytest.approx(log["val_l1"].min(), rel=1e-5)


def test_cosine_schedule_decays_the_logged_learning_rate(
    tiny_config, tiny_data, tmp_path, pretrained
):
    tiny_config["finetune"]["schedule"] = "cosine"
    out, _ = _finetune(tiny_config, tiny_data, tmp_path, Cell(1.0, 0.0, 0.01), pretrained)
    lrs = pd.read_csv(out / "train_log.csv")["lr"].tolist()
    assert lrs[0] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))


def test_training_without_validation_images_leaves_val_l1_empty(tiny_config, tmp_path):
    data = make_tiny_data(n_val=0)
    generator = _pretrain(tiny_config, data, tmp_path)
    log = pd.read_csv(generator.parent / "train_log.csv")
    assert log["val_l1"].isna().all() and log["l1"].notna().all()


def test_generator_file_records_the_degradation_its_data_had(
    tiny_config, tiny_data, tmp_path, pretrained
):
    synthesis = {"noise_std": 0.05, "kspace_fraction": 0.25, "samples_per_subject": 6}
    out, _ = _finetune(
        tiny_config, tiny_data, tmp_path, Cell(1.0, 0.0, 0.001), pretrained, synthesis=synthesis
    )
    _, stored = load_generator(out / "generator.pt")
    assert stored["synthesis"] == {"noise_std": 0.05, "kspace_fraction": 0.25}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the speed switches act on CUDA only")
def test_split_on_the_gpu_and_fused_adam_train_the_same_network(
    tiny_config, tiny_data, tmp_path, monkeypatch
):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    tiny_config["compute"] |= {"device": "cuda", "bf16": False, "channels_last": False}
    pretrained = _pretrain(tiny_config, tiny_data, tmp_path)
    cell = Cell(1.0, 0.1, 0.001)
    logs = {}
    for run, on in (("slow", False), ("fast", True)):
        speed = {"data_on_device": on, "fused_adam": on}
        out, _ = _finetune(tiny_config, tiny_data, tmp_path, cell, pretrained, run, speed=speed)
        logs[run] = pd.read_csv(out / "train_log.csv").drop(columns="seconds")
    terms = ["l1", "perceptual", "adversarial", "total", "discriminator", "val_l1"]
    pd.testing.assert_frame_equal(logs["fast"][terms], logs["slow"][terms], rtol=1e-4)
