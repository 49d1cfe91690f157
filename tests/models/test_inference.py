"""Running a network over a stack of images: one device rule, one batched loop."""

import numpy as np
import pytest
import torch

from advmri.errors import ConfigError
from advmri.models import UNet
from advmri.models.inference import (
    deterministic_cudnn,
    nonfinite_images,
    resolve_device,
    run_network,
)


def test_auto_and_cpu_resolve_to_devices_torch_has():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_an_unknown_device_is_refused_naming_the_setting():
    with pytest.raises(ConfigError) as raised:
        resolve_device("gpu", "--device")
    assert str(raised.value) == "--device = 'gpu' is not one of auto, cpu, cuda"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused_naming_the_setting():
    with pytest.raises(ConfigError) as raised:
        resolve_device("cuda")
    assert str(raised.value) == "compute.device = cuda but torch sees no CUDA GPU; use auto or cpu"


def tiny_network() -> UNet:
    torch.manual_seed(0)
    return UNet(depth=2, base_features=4)


def test_run_network_gives_each_image_what_the_network_gives_it_alone():
    model = tiny_network()
    images = np.random.default_rng(0).random((5, 16, 16), dtype=np.float32)
    out = run_network(model, images, batch_size=2)
    assert out.shape == images.shape and out.dtype == np.float32
    model.eval()
    with torch.no_grad():
        alone = model(torch.from_numpy(images[3:4]).unsqueeze(1))[0, 0].numpy()
    np.testing.assert_allclose(out[3], alone, rtol=1e-5, atol=1e-6)


def test_run_network_puts_the_model_in_eval_mode_and_restores_cudnn_flags():
    model = tiny_network().train()
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    run_network(model, np.zeros((1, 16, 16)), batch_size=1)
    assert not model.training
    assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == before


def test_deterministic_cudnn_sets_and_restores_the_flags_even_on_error():
    original = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        with pytest.raises(RuntimeError), deterministic_cudnn():
            assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
            raise RuntimeError("inside")
        assert torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark = original


@pytest.mark.parametrize("batch_size", [0, 1.5, True])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        run_network(tiny_network(), np.zeros((1, 16, 16)), batch_size=batch_size)


def test_nonfinite_images_lists_the_images_with_a_nan_or_inf_pixel():
    images = np.zeros((4, 3, 3), dtype=np.float32)
    images[1, 0, 0] = np.nan
    images[3, 2, 2] = -np.inf
    assert nonfinite_images(images).tolist() == [1, 3]
