"""Lesion-box PSNR: the opt-in response BasicSR users report, registered like any other."""

import numpy as np
import pandas as pd
import pytest
from skimage.metrics import peak_signal_noise_ratio
from test_registry import SETTINGS, disc_stack

from advmri.errors import DataError
from advmri.metrics.evaluate import columns, evaluate_arrays
from advmri.metrics.registry import IDENTICAL_IN_BOX, get_response, psnr_in_box
from advmri.stats.design import read_eval_tables, study_responses
from advmri.stats.simulate import write_simulated_eval_csvs


def test_psnr_is_ten_log10_of_one_over_the_box_mse():
    truth = np.zeros((20, 20))
    enhanced = truth.copy()
    enhanced[5:10, 5:10] = 0.1  # MSE 0.01 in the box, whatever lies outside it
    enhanced[15:, 15:] = 1.0
    assert psnr_in_box(enhanced, truth, (5, 5, 10, 10)).value == pytest.approx(20.0, abs=1e-12)


def test_psnr_equals_scikit_image_on_the_crop():
    rng = np.random.default_rng(0)
    truth = rng.random((30, 30))
    enhanced = np.clip(truth + rng.normal(0, 0.05, truth.shape), 0, 1)
    box = (4, 7, 21, 26)
    expected = peak_signal_noise_ratio(truth[4:21, 7:26], enhanced[4:21, 7:26], data_range=1.0)
    assert psnr_in_box(enhanced, truth, box).value == pytest.approx(expected, rel=1e-12)


def test_identical_crops_and_an_empty_box_are_nan_with_their_reason():
    truth = np.random.default_rng(1).random((12, 12))
    enhanced = truth.copy()
    enhanced[0, 0] += 0.5  # outside the box: the crops are still identical
    same = psnr_in_box(enhanced, truth, (2, 2, 8, 8))
    assert np.isnan(same.value) and same.reason == IDENTICAL_IN_BOX
    empty = psnr_in_box(enhanced, truth, (3, 3, 3, 9))
    assert np.isnan(empty.value) and empty.reason == "empty_box"
    with pytest.raises(DataError, match="lies outside the image"):
        psnr_in_box(enhanced, truth, (0, 0, 13, 5))


def test_psnr_is_opt_in_raw_scale_and_higher_is_better():
    psnr = get_response("psnr")
    assert (psnr.scale, psnr.better, psnr.unit) == ("identity", "higher", "dB")
    assert "psnr" not in columns()
    selected = columns({**SETTINGS, "responses": ["ge", "sharpness", "ece", "mie", "ssim", "psnr"]})
    assert selected == [
        *columns()[:10], "psnr", *columns()[10:], "psnr_reason"
    ]  # fmt: skip


def test_evaluation_writes_psnr_per_image_and_counts_identical_crops():
    truth, lesion, samples = disc_stack()
    enhanced = truth + 0.02 * np.random.default_rng(2).normal(size=truth.shape)
    enhanced[2] = truth[2]
    table = evaluate_arrays(
        enhanced, truth, lesion, samples, {**SETTINGS, "responses": ["ge", "psnr"]}
    )
    for i in range(2):
        box = tuple(samples.iloc[i][["bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]])
        assert table["psnr"].iloc[i] == psnr_in_box(enhanced[i], truth[i], box).value
    assert np.isnan(table["psnr"].iloc[2]) and table["psnr_reason"].iloc[2] == IDENTICAL_IN_BOX
    assert table.attrs["nan_reasons"]["psnr"] == {IDENTICAL_IN_BOX: 1}


def test_the_statistics_model_psnr_as_is(tmp_path):
    paths = write_simulated_eval_csvs(
        tmp_path, n_images=6, responses=["ge", "sharpness", "ece", "mie", "ssim", "psnr"]
    )
    table = read_eval_tables(paths)
    assert study_responses(table)["psnr"] == "identity"
    assert isinstance(table["psnr"], pd.Series) and table["psnr"].notna().all()
