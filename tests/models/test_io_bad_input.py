"""Network files that every stage loading one (fine-tune start, evaluation, enhance) refuses.

Before, a generator whose weights held NaN loaded without a word: evaluation wrote NaN metrics,
``advmri enhance`` a NaN volume, a fine-tune started from NaN.
"""

import pytest
import torch

from advmri.errors import DataError
from advmri.models import UNet, load_generator, save_generator
from advmri.models.io import NonFiniteWeightsError


def network_with(tmp_path, value, where=("encoders.0.block.0.weight", "head.bias")):
    model = UNet(depth=2, base_features=4)
    with torch.no_grad():
        parameters = dict(model.named_parameters())
        for key in where:
            parameters[key].view(-1)[0] = value
    path = tmp_path / "generator.pt"
    save_generator(model, path, {"stage": "test"})
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_weights_that_are_not_finite_are_refused_naming_the_file_and_tensor(tmp_path, value):
    path = network_with(tmp_path, value)
    with pytest.raises(NonFiniteWeightsError) as raised:
        load_generator(path)
    assert str(raised.value) == (
        f"{path}: weights hold NaN or infinite values, 1 in 'encoders.0.block.0.weight' "
        "(and 1 more tensor); the network is unusable, retrain it"
    )
    assert isinstance(raised.value, DataError)  # one line at every stage that loads networks


def test_a_file_without_a_state_dict_is_not_a_generator(tmp_path):
    path = tmp_path / "generator.pt"
    torch.save({"format": "advmri-generator", "format_version": 1, "state_dict": None}, path)
    with pytest.raises(DataError, match="is not an advmri generator file .no state_dict"):
        load_generator(path)


def test_finite_weights_load(tmp_path):
    model, _ = load_generator(network_with(tmp_path, 0.5))
    assert all(torch.isfinite(p).all() for p in model.parameters())
