"""Build, write and read the synthesised dataset in its ``results/dataset/`` contract layout.

Files (the contract later stages and users rely on):

- ``hq.npy``, ``lq.npy``: float32 (N, 208, 176) in [0, 1]; ``lesion.npy``: bool (N, 208, 176).
- ``samples.csv``: sample, subject, session, augmentation, bbox_r0, bbox_c0, bbox_r1, bbox_c1
  (half-open, tight around the mask), lesion_tissue (wm | gm), lesion_area_px.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from advmri.data.anatomy import IMAGE_SHAPE, Subject  # noqa: E402
from advmri.data.mni152 import load_mni152_subjects  # noqa: E402
from advmri.data.oasis1 import load_oasis1_subjects  # noqa: E402
from advmri.data.synthesis import SAMPLE_COLUMNS, Dataset, synthesize_dataset  # noqa: E402
from advmri.errors import DataError  # noqa: E402


def load_subjects(data: dict) -> list[Subject]:
    """The subjects of the configured anatomy source (the config's ``data`` section)."""
    if data["source"] == "mni152":
        return list(load_mni152_subjects(**data["mni152"]))
    options = data["oasis1"]
    return list(
        load_oasis1_subjects(options["root"], options["slice_index"], options["on_bad_session"])
    )


def build_dataset(config: dict, workers: int = 1) -> Dataset:
    """Synthesise the whole dataset of a validated study config."""
    return synthesize_dataset(
        load_subjects(config["data"]), config["synthesis"], config["seed"], workers
    )


def write_dataset(dataset: Dataset, hq: Path, lq: Path, lesion: Path, samples: Path) -> None:
    """Write the four contract files."""
    for path in (hq, lq, lesion, samples):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.save(hq, dataset.hq)
    np.save(lq, dataset.lq)
    np.save(lesion, dataset.lesion)
    dataset.samples.to_csv(samples, index=False)


def read_dataset(hq: Path, lq: Path, lesion: Path, samples: Path, mmap: bool = True) -> Dataset:
    """Read the contract files back, checking that shapes, dtypes and the table agree."""
    mode = "r" if mmap else None
    try:
        arrays = {
            name: np.load(path, mmap_mode=mode)
            for name, path in (("hq", hq), ("lq", lq), ("lesion", lesion))
        }
        table = pd.read_csv(samples)
    except (OSError, ValueError) as error:
        raise DataError(f"dataset: cannot read {error}") from error
    n = len(table)
    for name, array in arrays.items():
        expected_dtype = bool if name == "lesion" else np.float32
        if array.shape != (n, *IMAGE_SHAPE) or array.dtype != expected_dtype:
            raise DataError(
                f"dataset: {name}.npy is {array.dtype} {array.shape}, expected "
                f"{np.dtype(expected_dtype)} {(n, *IMAGE_SHAPE)} to match samples.csv"
            )
    missing = [c for c in SAMPLE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"dataset: samples.csv lacks columns {missing}")
    return Dataset(hq=arrays["hq"], lq=arrays["lq"], lesion=arrays["lesion"], samples=table)


def write_preview(dataset: Dataset, path: Path, n_samples: int = 6) -> None:
    """HQ, LQ and the lesion outline of ``n_samples`` samples spread over the dataset, as a PNG."""
    n = len(dataset.samples)
    picks = np.unique(np.linspace(0, n - 1, min(n_samples, n)).round().astype(int))
    fig, axes = plt.subplots(len(picks), 3, figsize=(7.5, 3.1 * len(picks)), squeeze=False)
    for row, index in enumerate(picks):
        info = dataset.samples.iloc[index]
        hq, lq, lesion = dataset.hq[index], dataset.lq[index], dataset.lesion[index]
        r0, c0, r1, c1 = (int(info[k]) for k in ("bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"))
        panels = [("HQ (truth)", hq), ("LQ (network input)", lq), ("lesion outline on HQ", hq)]
        for col, (title, image) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            if col == 2:
                ax.contour(lesion, levels=[0.5], colors="red", linewidths=0.8)
                ax.add_patch(
                    plt.Rectangle(
                        (c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, ec="yellow", lw=0.6
                    )
                )
            ax.set_title(title if row == 0 else "", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(
            f"#{index} {info['session']} aug {info['augmentation']}\n"
            f"{info['lesion_tissue']} lesion, {info['lesion_area_px']} px",
            fontsize=8,
        )
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
