"""Build, write and read the synthesised dataset in its ``results/dataset/`` contract layout.

Files (the contract later stages and users rely on):

- ``hq.npy``, ``lq.npy``: float32 (N, 208, 176) in [0, 1]; ``lesion.npy``: bool (N, 208, 176).
- ``samples.csv``: sample, subject, session, augmentation, bbox_r0, bbox_c0, bbox_r1, bbox_c1
  (half-open, tight around the mask), lesion_tissue (wm | gm), lesion_area_px.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from advmri.data.anatomy import Subject  # noqa: E402
from advmri.data.mni152 import load_mni152_subjects  # noqa: E402
from advmri.data.nifti import load_nifti_subjects  # noqa: E402
from advmri.data.oasis1 import load_oasis1_subjects  # noqa: E402
from advmri.data.synthesis import Dataset, synthesize_dataset  # noqa: E402
from advmri.data.tables import read_table  # noqa: E402
from advmri.errors import DataError  # noqa: E402


def load_subjects(data: dict) -> list[Subject]:
    """The subjects of the configured anatomy source (the config's ``data`` section)."""
    if data["source"] == "mni152":
        return list(load_mni152_subjects(**data["mni152"]))
    if data["source"] == "nifti":
        return list(load_nifti_subjects(**data["nifti"]))
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
    """Write the four contract files; a DataError, and nothing written, for an image sample with
    NaN/inf or values outside [0, 1] (:func:`check_images`)."""
    for array, path in ((dataset.hq, hq), (dataset.lq, lq)):
        check_images(
            array, path, dataset.samples, "nothing was written; check the synthesis settings"
        )
    for path in (hq, lq, lesion, samples):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.save(hq, dataset.hq)
    np.save(lq, dataset.lq)
    np.save(lesion, dataset.lesion)
    dataset.samples.to_csv(samples, index=False)


#: dtype of each array file of the contract.
ARRAY_DTYPES = {"hq": np.dtype(np.float32), "lq": np.dtype(np.float32), "lesion": np.dtype(bool)}
#: Samples per block when scanning the image arrays for NaN and range.
_SCAN_BLOCK = 64
_RERUN = "rerun the synthesize rule (snakemake --forcerun synthesize)"


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of a ``.npy`` file, read from its header alone."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        return tuple(shape), np.dtype(dtype), handle.tell()


def open_array(path: str | Path, name: str) -> np.ndarray:
    """Memory-map one array file of the dataset, checking that it is whole and of its dtype.

    Parameters
    ----------
    path : path
        ``hq.npy``, ``lq.npy`` or ``lesion.npy``.
    name : {"hq", "lq", "lesion"}
        Which one (sets the expected dtype, :data:`ARRAY_DTYPES`).

    Raises
    ------
    DataError
        Missing; not a ``.npy`` file; shorter than its header says (truncated: a killed write, a
        partial copy) or longer; not ``(N, H, W)``; another dtype.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset: {path} does not exist; run the synthesize rule first")
    try:
        shape, dtype, offset = _npy_header(path)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise DataError(
            f"dataset: {path} is not a .npy array file ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no message'}); {_RERUN}"
        ) from None
    expected_dtype = ARRAY_DTYPES[name]
    if dtype != expected_dtype or len(shape) != 3:
        raise DataError(
            f"dataset: {path} holds {dtype} {shape}, expected {expected_dtype} (N, H, W); {_RERUN}"
        )
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    found = path.stat().st_size
    if found != expected:
        what = "is truncated" if found < expected else "is longer than its header says"
        raise DataError(
            f"dataset: {path} {what} (expected {expected:,} bytes for {dtype} {shape}, found "
            f"{found:,}); {_RERUN}"
        )
    return np.load(path, mmap_mode="r")


def read_samples(
    path: str | Path, n: int | None = None, columns: tuple[str, ...] = ("sample", "subject")
) -> pd.DataFrame:
    """``samples.csv``, checked: the ``columns`` present, ``sample`` = 0..n-1 each once.

    ``n`` is the number of images in the arrays; None (a reader of the table alone, such as the
    split rule) takes the table's own length.

    Raises
    ------
    DataError
        Missing, unreadable, a column missing, or sample indices that do not match the arrays.
    """
    table = read_table(path, columns, "run the synthesize rule first", _RERUN, prefix="dataset: ")
    if n is None:
        n = len(table)
    if len(table) != n:
        raise DataError(f"dataset: {path} has {len(table)} rows for {n} images in the arrays")
    indices = pd.to_numeric(table["sample"], errors="coerce")
    if indices.isna().any() or (indices != indices.round()).any():
        raise DataError(f"dataset: {path}: column 'sample' holds a value that is not an integer")
    if sorted(indices.astype(np.int64)) != list(range(n)):
        raise DataError(
            f"dataset: {path}: sample indices must be 0..{n - 1}, each once (an index outside "
            "the arrays or twice)"
        )
    return table


def _describe_sample(table: pd.DataFrame, index: int) -> str:
    """``sample 17 (subject s3, session OAS1_0042_MR1, augmentation 2)``."""
    row = table.loc[table["sample"] == index]
    parts = [
        f"{column} {row.iloc[0][column]}"
        for column in ("subject", "session", "augmentation")
        if column in table.columns and len(row)
    ]
    return f"sample {index}" + (f" ({', '.join(parts)})" if parts else "")


def _more(count: int) -> str:
    """``; 3 more samples too`` (empty for none)."""
    return f"; {count} more sample{'s' if count > 1 else ''} too" if count else ""


def check_images(
    array: np.ndarray, path: str | Path, table: pd.DataFrame, advice: str = _RERUN
) -> None:
    """DataError naming ``path`` and its first sample with a NaN/inf pixel or a value outside [0, 1].

    Scans the whole array in blocks of :data:`_SCAN_BLOCK` samples (a memory map stays one);
    ``advice`` ends the message.
    """
    bad_finite: list[int] = []
    bad_range: list[int] = []
    for start in range(0, array.shape[0], _SCAN_BLOCK):
        block = np.asarray(array[start : start + _SCAN_BLOCK])
        finite = np.isfinite(block).all(axis=(1, 2))
        bad_finite.extend(start + np.flatnonzero(~finite))
        with np.errstate(invalid="ignore"):
            inside = (block.min(axis=(1, 2)) >= 0) & (block.max(axis=(1, 2)) <= 1)
        bad_range.extend(start + np.flatnonzero(finite & ~inside))
    if bad_finite:
        index = int(bad_finite[0])
        count = int((~np.isfinite(np.asarray(array[index]))).sum())
        more = _more(len(bad_finite) - 1)
        raise DataError(
            f"dataset: {path}: {_describe_sample(table, index)} holds {count:,} NaN or infinite "
            f"pixels{more}; {advice}"
        )
    if bad_range:
        index = int(bad_range[0])
        image = np.asarray(array[index])
        more = _more(len(bad_range) - 1)
        raise DataError(
            f"dataset: {path}: {_describe_sample(table, index)} has values in "
            f"[{float(image.min()):.4g}, {float(image.max()):.4g}], outside [0, 1]{more}; {advice}"
        )


@dataclass(frozen=True)
class DatasetFiles:
    """Paths of the dataset stage's contract files (a rule's declared inputs).

    ``lesion`` is None for a reader that does not need the lesion masks (training).
    """

    hq: Path
    lq: Path
    samples: Path
    lesion: Path | None = None

    @classmethod
    def in_folder(cls, folder: str | Path, lesion: bool = True) -> DatasetFiles:
        """The files as the synthesize rule names them in ``folder`` (``results/dataset/``)."""
        folder = Path(folder)
        return cls(
            hq=folder / "hq.npy",
            lq=folder / "lq.npy",
            samples=folder / "samples.csv",
            lesion=folder / "lesion.npy" if lesion else None,
        )

    def read(self, columns: tuple[str, ...] = ("sample", "subject")) -> Dataset:
        """:func:`read_dataset` of these files."""
        return read_dataset(self.hq, self.lq, self.samples, self.lesion, columns)


def read_dataset(
    hq: str | Path,
    lq: str | Path,
    samples: str | Path,
    lesion: str | Path | None = None,
    columns: tuple[str, ...] = ("sample", "subject"),
) -> Dataset:
    """The dataset stage's files, checked, as memory maps: what every later stage reads.

    Parameters
    ----------
    hq, lq, samples : path
        ``hq.npy``, ``lq.npy``, ``samples.csv``.
    lesion : path, optional
        ``lesion.npy``; not read when None (``Dataset.lesion`` is then None).
    columns : tuple of str
        Columns ``samples.csv`` must have.

    Returns
    -------
    Dataset
        ``hq``, ``lq``, ``lesion`` read-only memory maps (index them to load), ``samples`` as read.

    Raises
    ------
    DataError
        One line naming the file: missing, not whole (truncated), wrong dtype or shape, arrays of
        different shapes, a table that does not match them (:func:`read_samples`), or an image
        sample holding NaN/inf or values outside [0, 1] (the first such sample named,
        :func:`check_images`).
    """
    paths = {"hq": Path(hq), "lq": Path(lq)}
    if lesion is not None:
        paths["lesion"] = Path(lesion)
    arrays = {name: open_array(path, name) for name, path in paths.items()}
    shape = arrays["hq"].shape
    for name, array in arrays.items():
        if array.shape != shape:
            raise DataError(
                f"dataset: {paths[name]} is {array.shape} but {paths['hq']} is {shape}; the "
                f"arrays must be of one shape; {_RERUN}"
            )
    table = read_samples(samples, shape[0], columns)
    for name in ("hq", "lq"):
        check_images(arrays[name], paths[name], table)
    return Dataset(hq=arrays["hq"], lq=arrays["lq"], lesion=arrays.get("lesion"), samples=table)


def take_samples(dataset: Dataset, rows: np.ndarray) -> Dataset:
    """The samples ``rows`` (``sample`` indices) of ``dataset``, loaded into memory.

    Returns
    -------
    Dataset
        ``hq``, ``lq`` float32 and ``lesion`` bool (None when ``dataset`` has none) arrays of
        ``len(rows)`` images in the order of ``rows``; ``samples`` their rows of the table,
        index reset.
    """
    rows = np.asarray(rows, dtype=np.int64)
    table = dataset.samples.set_index("sample", drop=False).loc[rows].reset_index(drop=True)
    return Dataset(
        hq=np.asarray(dataset.hq[rows], dtype=np.float32),
        lq=np.asarray(dataset.lq[rows], dtype=np.float32),
        lesion=None if dataset.lesion is None else np.asarray(dataset.lesion[rows], dtype=bool),
        samples=table,
    )


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
