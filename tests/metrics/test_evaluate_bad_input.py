"""Networks that used to give NaN metrics rows and exit 0 in ``evaluate``/``evaluate_reference``:
weights holding NaN, and an output that is not finite. (A NaN in the dataset itself is in
tests/data/test_dataset_bad_input.py.)"""

import pytest
import torch
from test_evaluate import SETTINGS, write_dataset

from advmri.errors import DataError
from advmri.evaluation import evaluate_network
from advmri.models import UNet, save_generator


def network_file(tmp_path, change):
    torch.manual_seed(0)
    model = UNet(depth=2, base_features=4)
    with torch.no_grad():
        change(model)
    path = tmp_path / "wper1_wadv0.5_lr0.01" / "generator.pt"
    save_generator(model, path, {"stage": "finetune"})
    return path


def nan_bias(model):
    model.head.bias.fill_(float("nan"))


def overflow(model):  # finite weights, an output beyond float32's largest number
    model.head.weight.fill_(1e38)
    model.head.bias.fill_(3.4e38)


def test_a_network_with_nan_weights_is_refused_before_any_metric(tmp_path):
    dataset, split = write_dataset(tmp_path)
    network = network_file(tmp_path, nan_bias)
    with pytest.raises(DataError) as raised:
        evaluate_network(network, dataset, split, SETTINGS)
    assert str(raised.value) == (
        f"{network}: weights hold NaN or infinite values, 1 in 'head.bias'; the network is "
        "unusable, retrain it"
    )


def test_a_network_whose_output_is_not_finite_is_refused_naming_the_first_test_sample(tmp_path):
    dataset, split = write_dataset(tmp_path)
    network = network_file(tmp_path, overflow)
    examples = tmp_path / "examples.npz"
    with pytest.raises(DataError) as raised:
        evaluate_network(network, dataset, split, SETTINGS, examples_path=examples)
    assert str(raised.value) == (
        f"{network} gave NaN or infinite values on 4 of 4 test images (the first: sample 4); "
        "nothing was written"
    )
    assert not examples.exists()
