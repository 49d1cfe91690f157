"""Every bad dataset file we know of, and the one line each stage that reads it now stops with.

Training (:func:`advmri.train.load_training_data`), evaluation
(:func:`advmri.evaluation.load_test_set`, used by ``evaluate`` and ``evaluate_reference``) and
the report's example figures (:func:`advmri.report.examples.example_images`) read the dataset
through one checked loader, :func:`advmri.data.dataset.read_dataset`, so each case is shown for the
loader and for the three stages. Before, a NaN in a test image gave an empty metrics row
and exit 0, a NaN in a training image a NaN loss after an epoch, and a truncated file numpy's
``mmap length is greater than file size`` naming no file.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advmri.data.dataset import DatasetFiles, read_dataset, write_dataset
from advmri.data.synthesis import Dataset
from advmri.errors import DataError
from advmri.evaluation import evaluate_lq, load_test_set
from advmri.grid import Cell
from advmri.report.examples import example_images
from advmri.train import load_training_data

from fabricate import metrics_settings

N, H, W = 8, 16, 16
#: The two networks of the report's example figure (their enhanced test images are fabricated).
VGG, GAN = Cell(1.0, 0.0, 0.01), Cell(1.0, 0.1, 0.01)
RERUN = "rerun the synthesize rule (snakemake --forcerun synthesize)"
METRICS = metrics_settings(batch_size=4, example_samples=0)


def make_dataset(root: Path) -> dict[str, Path]:
    """A valid 8-sample dataset of 16 x 16 images: subjects s0-s3, s3 in the test split."""
    rows, cols = np.mgrid[0:H, 0:W]
    lesion = np.zeros((N, H, W), dtype=bool)
    lesion[:, 5:11, 5:11] = True
    hq = (0.3 + 0.02 * rows + 0.01 * cols)[None].repeat(N, axis=0) + 0.2 * lesion
    lq = hq.reshape(N, H // 4, 4, W // 4, 4).mean(axis=(2, 4)).repeat(4, axis=1).repeat(4, axis=2)
    samples = pd.DataFrame(
        {
            "sample": range(N),
            "subject": [f"s{i // 2}" for i in range(N)],
            "session": [f"s{i // 2}_MR1" for i in range(N)],
            "augmentation": [i % 2 for i in range(N)],
            "bbox_r0": 5,
            "bbox_c0": 5,
            "bbox_r1": 11,
            "bbox_c1": 11,
            "lesion_tissue": "wm",
            "lesion_area_px": 36,
        }
    )
    paths = {name: root / f"{name}.npy" for name in ("hq", "lq", "lesion")}
    paths["samples"] = root / "samples.csv"
    dataset = Dataset(
        hq=hq.astype(np.float32), lq=lq.astype(np.float32), lesion=lesion, samples=samples
    )
    write_dataset(dataset, **paths)
    paths["split"] = root / "split.csv"
    pd.DataFrame(
        {"subject": ["s0", "s1", "s2", "s3"], "split": ["train", "train", "val", "test"]}
    ).to_csv(paths["split"], index=False)
    for cell in (VGG, GAN):
        paths[cell.name] = root / f"{cell.name}.npz"
        np.savez(paths[cell.name], sample=np.array([6, 7]), enhanced=hq[6:8].astype(np.float32))
    return paths


def load_everywhere(paths: dict[str, Path]) -> list[str]:
    """The message of each stage's loader (each must refuse the dataset)."""
    loaders = [
        lambda: read_dataset(paths["hq"], paths["lq"], paths["samples"], paths["lesion"]),
        lambda: load_training_data(paths["hq"], paths["lq"], paths["samples"], paths["split"]),
        lambda: load_test_set(paths["hq"].parent, paths["split"]),
        lambda: example_images(
            VGG,
            GAN,
            {cell.name: paths[cell.name] for cell in (VGG, GAN)},
            {name: paths[name] for name in ("hq", "lq", "samples")},
        ),
    ]
    messages = []
    for load in loaders:
        with pytest.raises(DataError) as raised:
            load()
        messages.append(str(raised.value))
    return messages


def modify_array(path: Path, change) -> None:
    array = np.load(path)
    change(array)
    np.save(path, array)


def _nan_in_test_image(paths):
    modify_array(paths["lq"], lambda a: a.__setitem__((6, 3, 4), np.nan))
    return (
        "lq",
        "sample 6 (subject s3, session s3_MR1, augmentation 0) holds 1 NaN or infinite pixels",
    )


def _nan_in_training_image(paths):
    modify_array(paths["hq"], lambda a: a.__setitem__((1, slice(None), 0), np.nan))
    modify_array(paths["hq"], lambda a: a.__setitem__((4, 0, 0), np.inf))
    return (
        "hq",
        "sample 1 (subject s0, session s0_MR1, augmentation 1) holds 16 NaN or infinite pixels; "
        "1 more sample too",
    )


def _out_of_range(paths):
    modify_array(paths["lq"], lambda a: a.__setitem__((2, 0, 0), 1.5))
    return "lq", "sample 2 (subject s1, session s1_MR1, augmentation 0) has values in"


@pytest.mark.parametrize(
    "corrupt",
    [_nan_in_test_image, _nan_in_training_image, _out_of_range],
    ids=["nan-in-test-image", "nan-and-inf-in-training-images", "value-above-1"],
)
def test_a_bad_pixel_is_named_by_file_and_sample_in_every_stage(tmp_path, corrupt):
    paths = make_dataset(tmp_path)
    name, what = corrupt(paths)
    for message in load_everywhere(paths):
        assert message.startswith(f"dataset: {paths[name]}: {what}")
        assert message.endswith(RERUN) and "\n" not in message


def test_a_nan_test_image_no_longer_gives_an_empty_metrics_row(tmp_path):
    paths = make_dataset(tmp_path)
    _nan_in_test_image(paths)
    with pytest.raises(DataError, match=r"lq\.npy: sample 6 "):
        evaluate_lq(tmp_path, paths["split"], METRICS)  # what evaluate_reference runs first


def _truncate(paths):
    data = paths["hq"].read_bytes()
    paths["hq"].write_bytes(data[:1024])
    expected = len(data)
    return "hq", f"is truncated (expected {expected:,} bytes for float32 (8, 16, 16), found 1,024)"


def _append(paths):
    with open(paths["lq"], "ab") as handle:
        handle.write(b"\0" * 10)
    return (
        "lq",
        "is longer than its header says (expected 8,320 bytes for float32 (8, 16, 16), found 8,330)",
    )


def _float64(paths):
    np.save(paths["hq"], np.load(paths["hq"]).astype(np.float64))
    return "hq", "holds float64 (8, 16, 16), expected float32 (N, H, W)"


def _two_dimensional(paths):
    np.save(paths["lq"], np.load(paths["lq"])[0])
    return "lq", "holds float32 (16, 16), expected float32 (N, H, W)"


def _not_npy(paths):
    paths["hq"].write_text("sample,subject\n")
    return "hq", "is not a .npy array file (ValueError: the magic string is not correct;"


def _missing(paths):
    paths["lq"].unlink()
    return "lq", "does not exist; run the synthesize rule first"


@pytest.mark.parametrize(
    "corrupt",
    [_truncate, _append, _float64, _two_dimensional, _not_npy, _missing],
    ids=["truncated", "extra-bytes", "float64", "2-d", "not-npy", "missing"],
)
def test_a_broken_array_file_is_named_in_every_stage(tmp_path, corrupt):
    paths = make_dataset(tmp_path)
    name, what = corrupt(paths)
    for message in load_everywhere(paths):
        assert message.startswith(f"dataset: {paths[name]} {what}")
        assert "\n" not in message


def test_a_lesion_file_of_another_shape_or_dtype_is_refused_where_it_is_read(tmp_path):
    paths = make_dataset(tmp_path)
    np.save(paths["lesion"], np.load(paths["lesion"]).astype(np.uint8))
    with pytest.raises(DataError) as raised:
        load_test_set(tmp_path, paths["split"])
    assert str(raised.value) == (
        f"dataset: {paths['lesion']} holds uint8 (8, 16, 16), expected bool (N, H, W); {RERUN}"
    )
    np.save(paths["lesion"], np.zeros((N, H, W + 1), dtype=bool))
    with pytest.raises(DataError) as raised:
        load_test_set(tmp_path, paths["split"])
    assert str(raised.value) == (
        f"dataset: {paths['lesion']} is (8, 16, 17) but {paths['hq']} is (8, 16, 16); the arrays "
        f"must be of one shape; {RERUN}"
    )
    # training does not read lesion.npy, so a broken one does not stop it
    load_training_data(paths["hq"], paths["lq"], paths["samples"], paths["split"])


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda t: t.iloc[:-1], " has 7 rows for 8 images in the arrays"),
        (
            lambda t: t.assign(sample=[0, 1, 2, 3, 4, 5, 6, 6]),
            ": sample indices must be 0..7, each once",
        ),
        (
            lambda t: t.assign(sample=[0, 1, 2, 3, 4, 5, 6, 8]),
            ": sample indices must be 0..7, each once",
        ),
        (
            lambda t: t.assign(sample=[0, 1, 2, 3, 4, 5, 6, "x"]),
            ": column 'sample' holds a value that is not an integer",
        ),
        (lambda t: t.drop(columns="subject"), " lacks column 'subject'"),
    ],
    ids=["short", "duplicate", "outside", "not-integer", "no-subject"],
)
def test_a_samples_table_that_does_not_match_the_arrays_is_named(tmp_path, change, what):
    paths = make_dataset(tmp_path)
    change(pd.read_csv(paths["samples"])).to_csv(paths["samples"], index=False)
    for message in load_everywhere(paths):
        assert message.startswith(f"dataset: {paths['samples']}{what}")


def test_the_synthesize_stage_writes_no_dataset_with_a_nan_image(tmp_path):
    images = np.full((2, H, W), 0.5, dtype=np.float32)
    images[1, 0, 0] = np.nan
    dataset = Dataset(
        hq=images.copy(),
        lq=images,
        lesion=np.zeros((2, H, W), dtype=bool),
        samples=pd.DataFrame({"sample": [0, 1], "subject": ["a", "a"]}),
    )
    paths = {name: tmp_path / f"{name}.npy" for name in ("hq", "lq", "lesion")}
    with pytest.raises(DataError) as raised:
        write_dataset(dataset, **paths, samples=tmp_path / "samples.csv")
    assert str(raised.value) == (
        f"dataset: {paths['hq']}: sample 1 (subject a) holds 1 NaN or infinite pixels; nothing "
        "was written; check the synthesis settings"
    )
    assert not any(tmp_path.iterdir())


def _split_missing(path):
    path.unlink()
    return f"{path} does not exist; run the dataset and split rules first"


def _split_empty_file(path):
    path.write_bytes(b"")
    return f"{path} is not a readable CSV table (EmptyDataError); rerun the split rule"


def _split_without_column(path):
    pd.read_csv(path).rename(columns={"split": "set"}).to_csv(path, index=False)
    return f"{path} lacks column 'split'; rerun the split rule"


def _split_subject_twice(path):
    table = pd.read_csv(path)
    pd.concat([table, table.iloc[[0]].assign(split="test")]).to_csv(path, index=False)
    return f"{path} lists subject s0 twice; rerun the split rule"


def _split_subject_missing(path):
    pd.read_csv(path).iloc[:-1].to_csv(path, index=False)
    return f"{path} has no row for subject s3 of samples.csv"


def _split_unknown_name(path):
    pd.read_csv(path).replace({"val": "validation"}).to_csv(path, index=False)
    return f"{path}: unknown split 'validation' (train, val or test)"


@pytest.mark.parametrize(
    "corrupt",
    [
        _split_missing,
        _split_empty_file,
        _split_without_column,
        _split_subject_twice,
        _split_subject_missing,
        _split_unknown_name,
    ],
    ids=[
        "missing",
        "empty-file",
        "no-split-column",
        "subject-twice",
        "subject-missing",
        "unknown-split",
    ],
)
def test_a_bad_split_table_is_named_by_training_and_evaluation_alike(tmp_path, corrupt):
    paths = make_dataset(tmp_path)
    expected = corrupt(paths["split"])
    loaders = [
        lambda: load_training_data(paths["hq"], paths["lq"], paths["samples"], paths["split"]),
        lambda: load_test_set(tmp_path, paths["split"]),
    ]
    for load in loaders:
        with pytest.raises(DataError) as raised:
            load()
        assert str(raised.value) == expected


def test_an_empty_test_split_stops_the_evaluation_naming_the_split_table(tmp_path):
    paths = make_dataset(tmp_path)
    pd.read_csv(paths["split"]).replace({"test": "val"}).to_csv(paths["split"], index=False)
    with pytest.raises(DataError) as raised:
        load_test_set(tmp_path, paths["split"])
    assert str(raised.value) == (
        f"{paths['split']} puts no subject in the test split; nothing to evaluate"
    )


def test_each_file_is_read_where_it_is_declared_not_beside_hq_npy(tmp_path):
    """The rules declare the four files one by one; the stages read those, wherever they lie."""
    (tmp_path / "made").mkdir()
    paths = make_dataset(tmp_path / "made")
    spread = {}
    for name in ("hq", "lq", "lesion", "samples"):
        folder = tmp_path / f"only_{name}"
        folder.mkdir()
        spread[name] = paths[name].rename(folder / paths[name].name)
    files = DatasetFiles(**spread)
    test = load_test_set(files, paths["split"])
    assert test.samples["sample"].tolist() == [6, 7]  # subject s3
    np.testing.assert_array_equal(test.lesion, np.load(spread["lesion"])[6:8])
    data = load_training_data(spread["hq"], spread["lq"], spread["samples"], paths["split"])
    assert data.train_hq.shape == (4, 1, H, W) and data.val_hq.shape == (2, 1, H, W)
    with pytest.raises(DataError, match="hq.npy does not exist"):
        load_test_set(tmp_path / "only_lq", paths["split"])  # a folder means all four in it
