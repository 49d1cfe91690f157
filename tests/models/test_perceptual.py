"""The frozen VGG-19 perceptual loss and its three weight sources."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from advmri.errors import ConfigError
from advmri.models import RANDOM_FLAG, PerceptualLoss
from advmri.models.perceptual import VGG19_CONV_INDEX, imagenet_weights_file, vgg19_features

LAYERS = ["conv1_2", "conv2_2"]


def _fabricated_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """torchvision-layout weights (``features.<i>.*``) up to conv2_2, plus a classifier entry."""
    generator = torch.Generator().manual_seed(seed)
    features = vgg19_features(VGG19_CONV_INDEX["conv2_2"]).state_dict()
    state = {
        f"features.{k}": torch.randn(v.shape, generator=generator) * 0.1
        for k, v in features.items()
    }
    state["classifier.6.bias"] = torch.zeros(1000)
    return state


def test_torchvision_vgg19_conv_indices_match_the_issue():
    wanted = ["conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4"]
    assert [VGG19_CONV_INDEX[name] for name in wanted] == [2, 7, 16, 25, 34]


def test_imagenet_weights_are_read_from_torchvisions_cache_under_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = imagenet_weights_file()
    assert target == tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    target.parent.mkdir(parents=True)
    state = _fabricated_state_dict(1)
    torch.save(state, target)
    loss = PerceptualLoss(LAYERS, [0.1, 1.0], weights="imagenet")
    assert torch.equal(loss.features[7].weight, state["features.7.weight"])
    assert "ImageNet" in loss.description and not loss.is_random


def test_file_weights_accept_a_features_only_state_dict(tmp_path):
    state = {
        k.removeprefix("features."): v
        for k, v in _fabricated_state_dict(2).items()
        if k.startswith("features.")
    }
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    loss = PerceptualLoss(LAYERS, [0.1, 1.0], weights="file", weights_path=path)
    assert torch.equal(loss.features[0].weight, state["0.weight"])
    assert str(path) in loss.description


def test_file_weights_missing_a_needed_layer_are_refused_naming_it(tmp_path):
    state = _fabricated_state_dict(3)
    del state["features.7.weight"]
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"lacks VGG19 weight features\.7\.weight"):
        PerceptualLoss(LAYERS, [0.1, 1.0], weights="file", weights_path=path)


def test_file_weights_without_a_path_say_which_key_to_set():
    with pytest.raises(ConfigError, match="perceptual.weights_path"):
        PerceptualLoss(LAYERS, [0.1, 1.0], weights="file")


def test_random_weights_are_seeded_flagged_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = PerceptualLoss(LAYERS, [0.1, 1.0], weights="random", seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = PerceptualLoss(LAYERS, [0.1, 1.0], weights="random", seed=5)
    c = PerceptualLoss(LAYERS, [0.1, 1.0], weights="random", seed=6)
    assert torch.equal(a.features[2].weight, b.features[2].weight)
    assert not torch.equal(a.features[2].weight, c.features[2].weight)
    assert RANDOM_FLAG in a.description and a.is_random


def test_loss_is_the_weighted_mse_of_pre_relu_features_of_imagenet_normalised_grey_images():
    loss = PerceptualLoss(LAYERS, [0.1, 1.0], weights="random", seed=0)
    x, y = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def features(image, index):
        return loss.features[: index + 1]((image.repeat(1, 3, 1, 1) - mean) / std)

    expected = 0.1 * F.mse_loss(features(x, 2), features(y, 2)) + 1.0 * F.mse_loss(
        features(x, 7), features(y, 7)
    )
    assert torch.allclose(loss(x, y), expected, rtol=1e-5)
    assert loss(x, x).item() == 0.0


def test_l1_criterion_differs_from_l2():
    l2 = PerceptualLoss(LAYERS, [0.1, 1.0], criterion="l2", weights="random", seed=0)
    l1 = PerceptualLoss(LAYERS, [0.1, 1.0], criterion="l1", weights="random", seed=0)
    x, y = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    assert not torch.isclose(l1(x, y), l2(x, y))


def test_vgg_is_frozen_but_passes_gradients_to_the_enhanced_image():
    loss = PerceptualLoss(LAYERS, [0.1, 1.0], weights="random", seed=0)
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    loss(x, torch.rand(1, 1, 16, 16)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())


def test_unknown_layer_name_is_refused():
    with pytest.raises(ConfigError, match="conv6_1"):
        PerceptualLoss(["conv6_1"], [1.0], weights="random")
