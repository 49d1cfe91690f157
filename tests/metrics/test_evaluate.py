"""Evaluation tables of a tiny real network on a tiny dataset in the contract format."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage

from advmri.errors import ConfigError, DataError
from advmri.evaluation import evaluate_lq, evaluate_network, load_test_set
from advmri.metrics import edge_contrast_error, gradient_error, mie, sharpness, ssim_in_box
from advmri.metrics.evaluate import COLUMNS, evaluate_arrays
from advmri.models import UNet, save_generator

from fabricate import metrics_settings

H, W = 32, 32
SETTINGS = metrics_settings(batch_size=3, example_samples=2)


def write_dataset(root: Path, n_subjects: int = 4, per_subject: int = 2) -> tuple[Path, Path]:
    """hq/lq/lesion .npy + samples.csv + split.csv; subjects s2 and s3 are the test split."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:H, 0:W]
    hq, lq, lesion, table = [], [], [], []
    for s in range(n_subjects):
        for a in range(per_subject):
            i = len(table)
            centre = rng.uniform(12, 20, 2)
            radius = rng.uniform(4, 6)
            mask = np.hypot(rows - centre[0], cols - centre[1]) < radius
            if i == 5:  # a lesion at the border: some directions cannot be measured
                mask = np.hypot(rows - 14, cols - 1) < 5
            image = 0.3 + 0.1 * ndimage.gaussian_filter(rng.random((H, W)), 2) + 0.5 * mask
            image = np.clip(ndimage.gaussian_filter(image, 0.8), 0, 1)
            small = image.reshape(H // 4, 4, W // 4, 4).mean(axis=(1, 3))
            low = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)
            r, c = np.nonzero(mask)
            hq.append(image)
            lq.append(low)
            lesion.append(mask)
            table.append(
                {
                    "sample": i,
                    "subject": f"s{s}",
                    "session": f"s{s}_MR1",
                    "augmentation": a,
                    "bbox_r0": r.min(),
                    "bbox_c0": c.min(),
                    "bbox_r1": r.max() + 1,
                    "bbox_c1": c.max() + 1,
                    "lesion_tissue": "wm",
                    "lesion_area_px": int(mask.sum()),
                }
            )
    dataset = root / "dataset"
    dataset.mkdir()
    np.save(dataset / "hq.npy", np.asarray(hq, dtype=np.float32))
    np.save(dataset / "lq.npy", np.asarray(lq, dtype=np.float32))
    np.save(dataset / "lesion.npy", np.asarray(lesion, dtype=bool))
    # rows deliberately out of sample order: the evaluation must sort them
    pd.DataFrame(table).iloc[::-1].to_csv(dataset / "samples.csv", index=False)
    split = root / "split.csv"
    pd.DataFrame(
        {"subject": [f"s{s}" for s in range(n_subjects)], "split": ["train", "val", "test", "test"]}
    ).to_csv(split, index=False)
    return dataset, split


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    dataset, split = write_dataset(root)
    torch.manual_seed(0)
    network = root / "wper1_wadv0.5_lr0.01" / "generator.pt"
    save_generator(
        UNet(depth=2, base_features=4),
        network,
        {"stage": "finetune", "settings": {"cell": {"w_per": 1.0, "w_adv": 0.5, "lr": 0.01}}},
    )
    pretrain = root / "pretrain" / "generator.pt"
    save_generator(UNet(depth=2, base_features=4), pretrain, {"stage": "pretrain"})
    return {
        "dataset": dataset,
        "split": split,
        "network": network,
        "pretrain": pretrain,
        "root": root,
    }


def test_network_table_has_contract_columns_and_one_row_per_test_sample(tiny):
    examples = tiny["root"] / "examples.npz"
    table = evaluate_network(
        tiny["network"], tiny["dataset"], tiny["split"], SETTINGS, threads=1, examples_path=examples
    )
    assert list(table.columns) == COLUMNS
    assert table["sample"].tolist() == [4, 5, 6, 7]  # subjects s2, s3 in sample order
    assert table["subject"].tolist() == ["s2", "s2", "s3", "s3"]
    assert (table[["w_per", "w_adv", "lr"]].to_numpy() == [1.0, 0.5, 0.01]).all()
    assert table["sharpness_profiles_fitted"].between(0, 8).all()
    assert table.loc[table["sample"] == 5, "sharpness_profiles_fitted"].item() < 8
    with np.load(examples) as saved:
        assert saved["sample"].dtype == np.int64 and saved["sample"].tolist() == [4, 5]
        assert saved["enhanced"].dtype == np.float32 and saved["enhanced"].shape == (2, H, W)


def test_network_evaluation_is_deterministic(tiny):
    first = evaluate_network(tiny["network"], tiny["dataset"], tiny["split"], SETTINGS)
    again = evaluate_network(tiny["network"], tiny["dataset"], tiny["split"], SETTINGS)
    pd.testing.assert_frame_equal(first, again)


def test_pretrained_generator_rows_have_no_cell_values(tiny):
    table = evaluate_network(tiny["pretrain"], tiny["dataset"], tiny["split"], SETTINGS)
    assert list(table.columns) == COLUMNS
    assert table[["w_per", "w_adv", "lr"]].isna().all().all()


def test_lq_reference_table_equals_the_per_image_metrics(tiny):
    table = evaluate_lq(tiny["dataset"], tiny["split"], SETTINGS)
    assert list(table.columns) == COLUMNS and len(table) == 4
    test = load_test_set(tiny["dataset"], tiny["split"])
    for i, row in table.iterrows():
        lq, hq, mask = test.lq[i], test.hq[i], test.lesion[i]
        box = tuple(test.samples.loc[i, ["bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]])
        np.testing.assert_equal(row["ge"], gradient_error(lq, hq, box))
        np.testing.assert_equal(row["mie"], mie(lq, hq, box))
        np.testing.assert_equal(row["ssim"], ssim_in_box(lq, hq, box))
        np.testing.assert_equal(row["ece"], edge_contrast_error(lq, hq, mask))
        np.testing.assert_equal(row["sharpness"], sharpness(lq, mask))


def test_evaluate_arrays_of_the_truth_itself_gives_zero_errors(tiny):
    test = load_test_set(tiny["dataset"], tiny["split"])
    table = evaluate_arrays(test.hq, test.hq, test.lesion, test.samples, SETTINGS)
    assert (table["ge"] == 0).all() and (table["mie"] == 0).all() and (table["ece"] == 0).all()
    np.testing.assert_allclose(table["ssim"], 1.0)


def test_missing_metrics_key_is_a_config_error(tiny):
    settings = {k: v for k, v in SETTINGS.items() if k != "ssim_max_window"}
    with pytest.raises(ConfigError, match="ssim_max_window"):
        evaluate_lq(tiny["dataset"], tiny["split"], settings)


def test_stack_and_table_of_different_lengths_are_a_data_error(tiny):
    test = load_test_set(tiny["dataset"], tiny["split"])
    with pytest.raises(DataError, match="rows in the samples table"):
        evaluate_arrays(test.hq, test.hq, test.lesion, test.samples.iloc[:2], SETTINGS)


def test_missing_dataset_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_test_set(tmp_path, tmp_path / "split.csv")
