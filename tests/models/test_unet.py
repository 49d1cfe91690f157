"""The UNet generator and its file format."""

from __future__ import annotations

import pytest
import torch

from advmri.errors import ConfigError, DataError
from advmri.models import UNet, load_generator, save_generator


def test_unet_of_depth_4_maps_one_208_by_176_channel_to_one_of_the_same_size():
    model = UNet(depth=4, base_features=2)
    out = model(torch.rand(1, 1, 208, 176))
    assert out.shape == (1, 1, 208, 176)


def test_unet_rejects_an_image_size_not_divisible_by_two_to_the_depth():
    model = UNet(depth=5, base_features=2)  # 208 = 32 * 6.5
    with pytest.raises(ConfigError, match=r"divisible by 2\*\*5 = 32, got 208 x 176"):
        model(torch.rand(1, 1, 208, 176))


def test_unet_rejects_a_depth_below_one():
    with pytest.raises(ConfigError, match="depth"):
        UNet(depth=0)


def test_generator_file_round_trips_weights_architecture_and_metadata(tmp_path):
    model = UNet(depth=2, base_features=3)
    path = tmp_path / "net" / "generator.pt"
    save_generator(model, path, {"epochs_run": 3, "torch_version": torch.__version__})
    loaded, metadata = load_generator(path)
    assert loaded.architecture == model.architecture
    assert metadata == {"epochs_run": 3, "torch_version": str(torch.__version__)}
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert not loaded.training


def test_load_generator_rejects_a_state_dict_that_is_not_an_advmri_generator(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(UNet(depth=1, base_features=2).state_dict(), path)
    with pytest.raises(DataError, match="not an advmri generator file"):
        load_generator(path)


def test_load_generator_rejects_a_file_torch_cannot_read(tmp_path):
    path = tmp_path / "generator.pt"
    path.write_text("not a torch file")
    with pytest.raises(DataError, match="not an advmri generator file"):
        load_generator(path)


def test_load_generator_names_a_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_generator(tmp_path / "missing.pt")
