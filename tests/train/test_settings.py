"""Effective settings: a cell's params change exactly when its network would."""

from __future__ import annotations

import pytest
from tiny_training import make_tiny_config

from advmri.errors import ConfigError
from advmri.grid import Cell, grid_cells
from advmri.train import checkpoint_every, effective_finetune_settings, effective_pretrain_settings
from advmri.train.settings import finetune_settings_of, settings_hash, speed_options


@pytest.fixture
def tiny_config() -> dict:
    return make_tiny_config()


def _all(config):
    return {c.name: effective_finetune_settings(config, c) for c in grid_cells(config["grid"])}


def test_one_cells_override_changes_that_cells_settings_alone(tiny_config):
    before = _all(tiny_config)
    tiny_config["finetune"]["cell_overrides"] = {"wper1_wadv0.1_lr0.01": {"epochs": 9}}
    after = _all(tiny_config)
    changed = [name for name in before if before[name] != after[name]]
    assert changed == ["wper1_wadv0.1_lr0.01"]
    assert after["wper1_wadv0.1_lr0.01"]["finetune"]["epochs"] == 9


def test_adding_a_w_adv_value_leaves_existing_cells_settings_unchanged(tiny_config):
    before = _all(tiny_config)
    tiny_config["grid"]["w_adv"].append(0.5)
    after = _all(tiny_config)
    assert len(after) == len(before) + 4
    assert all(after[name] == settings for name, settings in before.items())


def test_vgg_enhanced_cells_do_not_depend_on_discriminator_settings(tiny_config):
    vgg, gan = Cell(1.0, 0.0, 0.01), Cell(1.0, 0.1, 0.01)
    before = (
        effective_finetune_settings(tiny_config, vgg),
        effective_finetune_settings(tiny_config, gan),
    )
    tiny_config["model"]["discriminator"]["width"] = 32
    assert effective_finetune_settings(tiny_config, vgg) == before[0]
    assert effective_finetune_settings(tiny_config, gan) != before[1]


def test_changed_pretraining_changes_every_cells_settings_through_its_hash(tiny_config):
    before = _all(tiny_config)
    tiny_config["pretrain"]["epochs"] += 1
    after = _all(tiny_config)
    assert all(before[name] != after[name] for name in before)


def test_checkpoint_interval_is_not_an_effective_setting_but_is_readable_per_cell(tiny_config):
    cell = Cell(1.0, 0.1, 0.01)
    before = effective_finetune_settings(tiny_config, cell)
    pretrain_before = effective_pretrain_settings(tiny_config)
    tiny_config["finetune"]["checkpoint_every"] = 17
    tiny_config["pretrain"]["checkpoint_every"] = 3
    tiny_config["finetune"]["cell_overrides"] = {cell.name: {"checkpoint_every": 4}}
    assert effective_finetune_settings(tiny_config, cell) == before
    assert effective_pretrain_settings(tiny_config) == pretrain_before
    assert checkpoint_every(tiny_config, cell) == 4
    assert checkpoint_every(tiny_config, Cell(0.5, 0.1, 0.01)) == 17
    assert checkpoint_every(tiny_config) == 3


def test_settings_hold_the_cell_and_no_grid_lists(tiny_config):
    settings = effective_finetune_settings(tiny_config, Cell(0.5, 0.0, 0.001))
    assert settings["cell"] == {
        "name": "wper0.5_wadv0_lr0.001",
        "w_per": 0.5,
        "w_adv": 0.0,
        "lr": 0.001,
    }
    assert "grid" not in settings and "cell_overrides" not in settings["finetune"]
    assert settings["pretrain_hash"] == settings_hash(effective_pretrain_settings(tiny_config))


def test_override_keys_are_matched_by_value_not_spelling(tiny_config):
    tiny_config["finetune"]["cell_overrides"] = {"wper1.0_wadv0.10_lr0.010": {"epochs": 9}}
    settings = effective_finetune_settings(tiny_config, Cell(1.0, 0.1, 0.01))
    assert settings["finetune"]["epochs"] == 9


def test_override_of_an_unknown_setting_is_refused_naming_it(tiny_config):
    tiny_config["finetune"]["cell_overrides"] = {"wper1_wadv0.1_lr0.01": {"epoch": 9}}
    with pytest.raises(ConfigError, match="'epoch' is not a finetune setting"):
        effective_finetune_settings(tiny_config, Cell(1.0, 0.1, 0.01))


def test_override_key_that_is_not_a_cell_name_is_refused(tiny_config):
    tiny_config["finetune"]["cell_overrides"] = {"best_cell": {"epochs": 9}}
    with pytest.raises(ConfigError, match="'best_cell' is not a cell name"):
        effective_finetune_settings(tiny_config, Cell(1.0, 0.1, 0.01))


def test_a_non_canonical_cell_name_is_refused_naming_the_canonical_one(tiny_config):
    with pytest.raises(ConfigError, match=r"results/networks/wper1_wadv0.1_lr0.01/"):
        finetune_settings_of(tiny_config, "wper1.0_wadv0.1_lr0.01")
    assert finetune_settings_of(tiny_config, "wper1_wadv0.1_lr0.01")["cell"]["w_per"] == 1.0


def test_speed_only_switches_change_no_settings_but_bf16_does(tiny_config):
    cell = Cell(1.0, 0.1, 0.01)
    before = (
        effective_finetune_settings(tiny_config, cell),
        effective_pretrain_settings(tiny_config),
    )
    assert speed_options(tiny_config) == {"data_on_device": True, "fused_adam": True}
    tiny_config["compute"] |= {"data_on_device": False, "fused_adam": False}
    after = effective_finetune_settings(tiny_config, cell), effective_pretrain_settings(tiny_config)
    assert after == before
    tiny_config["compute"]["bf16"] = False  # changes the arithmetic: the networks retrain
    assert effective_finetune_settings(tiny_config, cell) != before[0]
    assert effective_pretrain_settings(tiny_config) != before[1]


def test_gan_loss_is_in_the_settings_of_vgg_gan_cells_only(tiny_config):
    before = _all(tiny_config)
    tiny_config["objective"]["gan_loss"] = "image"
    after = _all(tiny_config)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {c.name for c in grid_cells(tiny_config["grid"]) if c.w_adv > 0}
    assert after["wper1_wadv0.1_lr0.01"]["objective"] == {"gan_loss": "image"}
    assert "objective" not in after["wper1_wadv0_lr0.01"]
    cell = Cell(1.0, 0.1, 0.01)
    assert settings_hash(after[cell.name]) != settings_hash(before[cell.name])
