"""Evaluate a network (or the LQ input, or the HQ truth) on the test split of the dataset.

Reads the test split (:func:`load_test_set`), runs the network over it
(:func:`advmri.models.inference.run_network`) and computes the lesion metrics with the pure
functions of :mod:`advmri.metrics.evaluate`. Used by the rules ``evaluate`` and
``evaluate_reference``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advmri.data.dataset import DatasetFiles, take_samples
from advmri.data.split import rows_of_split
from advmri.data.synthesis import Dataset
from advmri.errors import DataError
from advmri.logs import logger
from advmri.metrics.evaluate import (
    BBOX_COLUMNS,
    CELL_COLUMNS,
    ID_COLUMNS,
    MetricSettings,
    evaluate_arrays,
)
from advmri.models import load_generator
from advmri.models.inference import nonfinite_images, resolve_device, run_network


def dataset_files(dataset: DatasetFiles | str | Path) -> DatasetFiles:
    """``dataset`` as the four contract files: a folder stands for the synthesize rule's
    ``hq.npy``, ``lq.npy``, ``lesion.npy`` and ``samples.csv`` in it."""
    return dataset if isinstance(dataset, DatasetFiles) else DatasetFiles.in_folder(dataset)


def load_test_set(dataset: DatasetFiles | str | Path, split_csv: str | Path) -> Dataset:
    """The test samples of the dataset according to ``split_csv``, in ``sample`` order.

    Parameters
    ----------
    dataset : DatasetFiles or path
        The contract files (a rule's declared inputs), or the folder holding them; ``lesion``
        is required.
    split_csv : path
        ``split.csv``.

    Returns
    -------
    Dataset
        Only the test rows, loaded into memory: ``lq``, ``hq`` float32 and ``lesion`` bool
        (n, H, W) stacks, ``samples`` their rows of ``samples.csv`` (index reset).

    Raises
    ------
    DataError
        Anything :func:`advmri.data.dataset.read_dataset` refuses (a missing, truncated or
        corrupt file, NaN in an image, naming the file and sample) or
        :func:`advmri.data.split.rows_of_split` (an unusable split table, an empty test split).
    """
    files = dataset_files(dataset)
    if files.lesion is None:
        raise ValueError("evaluation needs the lesion masks: DatasetFiles.lesion is None")
    whole = files.read(columns=("sample", "subject", *BBOX_COLUMNS))
    return take_samples(whole, rows_of_split(whole.samples, split_csv, "test", "evaluate"))


def cell_of(metadata: dict) -> dict[str, float]:
    """``w_per, w_adv, lr`` of a fine-tuned generator's metadata (``settings.cell``); NaN for
    a generator that is not a grid cell's (the pretrained one)."""
    cell = (metadata.get("settings") or {}).get("cell") or {}
    return {key: float(cell[key]) if key in cell else np.nan for key in CELL_COLUMNS}


def _with_cell(table: pd.DataFrame, cell: dict[str, float]) -> pd.DataFrame:
    out = table.copy()
    for key in CELL_COLUMNS:
        out[key] = cell[key]
    # the cell's factors after sample and subject, then the study's metric columns in order
    return out[[*ID_COLUMNS, *(c for c in table.columns if c not in ID_COLUMNS)]]


def save_examples(path: str | Path, samples: np.ndarray, enhanced: np.ndarray) -> None:
    """Write ``sample`` (int64, k) and ``enhanced`` (float32, (k, H, W)) to an ``.npz`` file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        sample=np.asarray(samples, dtype=np.int64),
        enhanced=np.asarray(enhanced, dtype=np.float32),
    )


def evaluate_network(
    network_path: str | Path,
    dataset: DatasetFiles | str | Path,
    split_csv: str | Path,
    settings: dict,
    device: str = "cpu",
    threads: int | None = None,
    examples_path: str | Path | None = None,
) -> pd.DataFrame:
    """Evaluate one generator file on the test split.

    Parameters
    ----------
    network_path : path
        A ``generator.pt`` written by :func:`advmri.models.save_generator`.
    dataset : DatasetFiles or path
        ``hq.npy``, ``lq.npy``, ``lesion.npy``, ``samples.csv`` (:func:`load_test_set`).
    split_csv : path
        ``split.csv`` (subject, split).
    settings : dict
        The config's ``metrics`` section (``batch_size`` is the inference batch).
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    threads : int, optional
        CPU threads for torch (the rule's ``threads``).
    examples_path : path, optional
        Where to save the enhanced images of the first ``metrics.example_samples`` test
        samples (in sample order) as ``.npz`` (keys ``sample``, ``enhanced``).

    Returns
    -------
    DataFrame
        :func:`advmri.metrics.evaluate.columns` of the study ``settings`` selects, one row per
        test sample in sample order; ``w_per, w_adv, lr`` from the generator's metadata (NaN
        for the pretrained generator).
    """
    cfg = MetricSettings.from_config(settings)
    if threads:
        torch.set_num_threads(int(threads))
    torch_device = resolve_device(device)
    model, metadata = load_generator(network_path, torch_device)
    test = load_test_set(dataset, split_csv)
    started = time.perf_counter()
    enhanced = run_network(model, test.lq, cfg.batch_size, torch_device)
    bad = nonfinite_images(enhanced)
    if bad.size:  # NaN metrics rows would look like fit failures
        raise DataError(
            f"{network_path} gave NaN or infinite values on {bad.size} of {len(enhanced)} test "
            f"images (the first: sample {int(test.samples['sample'].iloc[bad[0]])}); nothing "
            "was written"
        )
    inferred = time.perf_counter()
    table = evaluate_arrays(enhanced, test.hq, test.lesion, test.samples, cfg, str(network_path))
    logger.info(
        "%s: %d test images, inference %.1f s on %s, metrics %.1f s",
        network_path,
        len(table),
        inferred - started,
        torch_device,
        time.perf_counter() - inferred,
    )
    if examples_path is not None:
        k = min(cfg.example_samples, len(table))
        save_examples(examples_path, test.samples["sample"].to_numpy()[:k], enhanced[:k])
    out = _with_cell(table, cell_of(metadata))
    out.attrs.update(table.attrs)
    return out


def evaluate_lq(
    dataset: DatasetFiles | str | Path, split_csv: str | Path, settings: dict
) -> pd.DataFrame:
    """Reference evaluation of the LQ network input itself (no network) on the test split.

    Same columns as :func:`evaluate_network`, with ``w_per, w_adv, lr`` NaN.
    """
    return _evaluate_reference_images("lq", dataset, split_csv, settings)


def evaluate_truth(
    dataset: DatasetFiles | str | Path, split_csv: str | Path, settings: dict
) -> pd.DataFrame:
    """Reference evaluation of the HQ ground truth against itself on the test split.

    GE, ECE and MIE are 0 and SSIM is 1 by definition (NaN where the metric itself is undefined,
    e.g. GE in a box without gradients); what this row adds is the Sharpness of the truth's own
    lesion edges and how many of their profiles fit, so a network's Sharpness can be read as
    "sharper than the truth" or only "sharper than the input". Same columns as
    :func:`evaluate_network`, with ``w_per, w_adv, lr`` NaN.
    """
    return _evaluate_reference_images("hq", dataset, split_csv, settings)


def _evaluate_reference_images(
    which: str, dataset: DatasetFiles | str | Path, split_csv: str | Path, settings: dict
) -> pd.DataFrame:
    """Evaluate the test split's ``lq`` or ``hq`` images themselves (no network)."""
    cfg = MetricSettings.from_config(settings)
    test = load_test_set(dataset, split_csv)
    images, label = (test.lq, "LQ input") if which == "lq" else (test.hq, "HQ truth")
    table = evaluate_arrays(images, test.hq, test.lesion, test.samples, cfg, label)
    out = _with_cell(table, dict.fromkeys(CELL_COLUMNS, np.nan))
    out.attrs.update(table.attrs)
    return out
