"""Gather the images of Figures 6-7: LQ input, the two winners' outputs and the ground truth."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.data.dataset import read_dataset
from advmri.errors import DataError
from advmri.grid import Cell

SAMPLE_COLUMNS = ("sample", "subject", "bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1")


def load_example(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one examples file: ``sample`` int (k,) and ``enhanced`` float32 (k, H, W)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: examples file not found; run the evaluation that writes it")
    with np.load(path) as archive:
        if "sample" not in archive or "enhanced" not in archive:
            raise DataError(
                f"{path}: keys {sorted(archive.files)}; expected 'sample' and 'enhanced'"
            )
        samples, enhanced = archive["sample"].astype(np.int64), archive["enhanced"]
    if enhanced.ndim != 3 or enhanced.shape[0] != samples.shape[0]:
        raise DataError(
            f"{path}: 'enhanced' has shape {enhanced.shape} for {samples.shape[0]} samples; "
            "expected (k, H, W)"
        )
    return samples, enhanced


def example_images(
    vgg: Cell,
    gan: Cell,
    examples: Mapping[str, str | Path],
    dataset: Mapping[str, str | Path],
) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, str]]:
    """The example samples both networks kept, with LQ input, both outputs and ground truth.

    Parameters
    ----------
    vgg, gan : the networks shown (best VGG-Enhanced and best VGG+GAN-Enhanced).
    examples : cell name -> ``results/examples/{cell}.npz``.
    dataset : ``hq``, ``lq`` (.npy, (N, H, W)) and ``samples`` (samples.csv) paths. The arrays are
        memory-mapped: only the shown rows are read.

    Returns
    -------
    samples : samples.csv rows of the shown samples, in the examples' order.
    images : column title -> (k, H, W) array: ``LQ input``, ``VGG-Enhanced``,
        ``VGG+GAN-Enhanced``, ``Ground truth``.
    networks : column title -> the network behind it (cell name, ``input`` or ``ground truth``).
    """
    outputs = {}
    for cell in (vgg, gan):
        if cell.name not in examples:
            raise DataError(
                f"report: no examples file for {cell.name}; expected results/examples/"
                f"{cell.name}.npz among the report's inputs"
            )
        outputs[cell.name] = load_example(examples[cell.name])
    shown = [int(s) for s in outputs[vgg.name][0] if s in set(outputs[gan.name][0].tolist())]
    if not shown:
        raise DataError(f"report: {vgg.name} and {gan.name} kept no example sample in common")

    table_path = Path(dataset["samples"])
    loaded = read_dataset(dataset["hq"], dataset["lq"], table_path, columns=SAMPLE_COLUMNS)
    table = loaded.samples
    rows = table.set_index("sample", drop=False).reindex(shown)
    if rows["subject"].isna().any():
        raise DataError(f"{table_path}: example samples {shown} are not all in the table")

    arrays = {"lq": loaded.lq, "hq": loaded.hq}
    index = np.asarray(shown)
    images = {"LQ input": np.asarray(arrays["lq"][index], dtype=np.float32)}
    for title, cell in (("VGG-Enhanced", vgg), ("VGG+GAN-Enhanced", gan)):
        kept, enhanced = outputs[cell.name]
        position = {int(s): i for i, s in enumerate(kept)}
        images[title] = np.asarray(enhanced[[position[s] for s in shown]], dtype=np.float32)
    images["Ground truth"] = np.asarray(arrays["hq"][index], dtype=np.float32)
    networks = {
        "LQ input": "input",
        "VGG-Enhanced": vgg.name,
        "VGG+GAN-Enhanced": gan.name,
        "Ground truth": "ground truth",
    }
    return rows.reset_index(drop=True), images, networks
