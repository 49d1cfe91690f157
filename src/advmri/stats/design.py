"""Evaluation tables in, one response's model-ready design out.

The study is a full factorial of networks (cells: LR x W_per x W_adv) crossed with test images
(``sample``). A :class:`Design` holds one response's observations with every row mapped to its
cell and image, the factor levels in numeric order, and the cell order used by every contrast
in this package: lexicographic in (lr, w_per, w_adv), w_adv varying fastest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.errors import DataError

#: Factors of the model, in the order used for cells and contrasts.
FACTORS: tuple[str, ...] = ("lr", "w_per", "w_adv")
#: Responses analysed and their transform: "log" = natural log (non-positive -> dropped).
RESPONSES: dict[str, str] = {
    "ge": "log",
    "sharpness": "log",
    "ece": "log",
    "mie": "log",
    "ssim": "identity",
}
#: Columns every evaluation CSV must have.
EVAL_COLUMNS: tuple[str, ...] = ("sample", "w_per", "w_adv", "lr", *RESPONSES)


def read_eval_tables(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate evaluation CSVs (one per network) into one long table.

    Parameters
    ----------
    paths : evaluation CSVs with at least the columns of ``EVAL_COLUMNS``.

    Returns
    -------
    DataFrame with one row per (network, test image).

    Raises
    ------
    DataError
        no paths, a missing file or column, or one (network, sample) pair present twice.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("stats: no evaluation CSVs given; pass results/eval/<cell>.csv files")
    frames = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"stats: evaluation table {path} does not exist")
        frame = pd.read_csv(path)
        missing = [c for c in EVAL_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(
                f"stats: {path} lacks column(s) {', '.join(missing)}; "
                f"expected {', '.join(EVAL_COLUMNS)}"
            )
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    return check_eval_table(table)


def check_eval_table(table: pd.DataFrame) -> pd.DataFrame:
    """Validate a long evaluation table (as :func:`read_eval_tables` returns) and return it.

    Raises
    ------
    DataError
        a missing column, a non-numeric factor value, or a duplicated (network, sample) row.
    """
    missing = [c for c in EVAL_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"stats: evaluation table lacks column(s) {', '.join(missing)}")
    for factor in FACTORS:
        values = pd.to_numeric(table[factor], errors="coerce")
        if values.isna().any():
            raise DataError(f"stats: column {factor} has missing or non-numeric values")
        table[factor] = values.astype(float)
    duplicated = table.duplicated(["sample", *FACTORS])
    if duplicated.any():
        row = table.loc[duplicated].iloc[0]
        raise DataError(
            f"stats: sample {row['sample']} appears twice for network lr={row['lr']:g} "
            f"w_per={row['w_per']:g} w_adv={row['w_adv']:g}; give each network's CSV once"
        )
    return table


def response_values(table: pd.DataFrame, response: str, scale: str | None = None) -> np.ndarray:
    """The model-scale values of one response: ln(x) for log responses, x for ssim.

    ``scale`` overrides the default transform ("log" or "identity"). NaN, infinite values and,
    under a log, values <= 0 come back as NaN (dropped for this response only).
    """
    if response not in table.columns:
        raise DataError(f"stats: evaluation table has no column {response!r}")
    scale = RESPONSES.get(response, "identity") if scale is None else scale
    x = pd.to_numeric(table[response], errors="coerce").to_numpy(dtype=float)
    x = np.where(np.isfinite(x), x, np.nan)
    if scale == "log":
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
    elif scale != "identity":
        raise ValueError(f"unknown scale {scale!r} (log | identity)")
    return x


@dataclass(frozen=True)
class Design:
    """One response's observations in the network x image layout.

    Attributes
    ----------
    y : (n,) model-scale response, no NaN.
    cell : (n,) index of each row's network in ``cells`` order.
    sample : (n,) index of each row's image in ``samples``.
    levels : numeric levels of each factor, ascending, keyed by factor name.
    cells : (I, 3) factor values of each network, rows lexicographic in (lr, w_per, w_adv).
    samples : (J,) image identifiers.
    """

    y: np.ndarray
    cell: np.ndarray
    sample: np.ndarray
    levels: dict[str, np.ndarray]
    cells: np.ndarray
    samples: np.ndarray

    @property
    def n_cells(self) -> int:
        return self.cells.shape[0]

    @property
    def n_samples(self) -> int:
        return self.samples.size

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of levels per factor, in ``FACTORS`` order."""
        return tuple(self.levels[f].size for f in FACTORS)

    @property
    def is_complete(self) -> bool:
        """True when every network has exactly one row for every image."""
        return self.y.size == self.n_cells * self.n_samples

    def cell_frame(self) -> pd.DataFrame:
        """One row per network: lr, w_per, w_adv (cell order)."""
        return pd.DataFrame(self.cells, columns=list(FACTORS))


@dataclass(frozen=True)
class Layout:
    """Where every row of a long evaluation table sits: its network (cell) and its image.

    Computed once per table (:func:`table_layout`) and shared by every response's design.

    Attributes
    ----------
    levels : numeric levels of each factor, ascending, keyed by factor name.
    cells : (I, 3) factor values of the full lr x w_per x w_adv grid, cell order.
    cell : (n,) cell index of each row of the table.
    samples : (J,) image identifiers, ascending.
    sample : (n,) index of each row's image in ``samples``.
    n_present : number of grid cells (networks) with at least one row.
    """

    levels: dict[str, np.ndarray]
    cells: np.ndarray
    cell: np.ndarray
    samples: np.ndarray
    sample: np.ndarray
    n_present: int


def table_layout(table: pd.DataFrame) -> Layout:
    """The :class:`Layout` of a long evaluation table (factor columns numeric, as
    :func:`check_eval_table` leaves them)."""
    levels = {f: np.sort(table[f].unique().astype(float)) for f in FACTORS}
    shape = tuple(levels[f].size for f in FACTORS)
    grid = np.array(np.meshgrid(*(levels[f] for f in FACTORS), indexing="ij")).reshape(3, -1).T
    codes = [np.searchsorted(levels[f], table[f].to_numpy(dtype=float)) for f in FACTORS]
    cell = np.ravel_multi_index(codes, shape).astype(np.int64)
    n_present = int(np.count_nonzero(np.bincount(cell, minlength=grid.shape[0])))
    samples, sample = np.unique(table["sample"].to_numpy(), return_inverse=True)
    return Layout(levels, grid, cell, samples, sample.astype(np.int64).ravel(), n_present)


def build_design(
    table: pd.DataFrame,
    y: np.ndarray,
    response: str = "response",
    samples: Sequence | None = None,
    layout: Layout | None = None,
) -> Design:
    """Map the rows of ``table`` with finite ``y`` onto the cell x image layout.

    Parameters
    ----------
    table : long evaluation table (factor columns lr, w_per, w_adv and sample).
    y : model-scale values, one per row of ``table``; NaN rows are dropped.
    response : name used in error messages.
    samples : restrict to these images (others dropped); default all.
    layout : ``table_layout(table)`` when already computed (it is the same for every response).

    Raises
    ------
    DataError
        the networks do not form a full factorial, or a network has no usable row.
    """
    layout = table_layout(table) if layout is None else layout
    levels, grid = layout.levels, layout.cells
    if layout.n_present != grid.shape[0]:
        raise DataError(
            f"stats: the {layout.n_present} networks do not form the full "
            f"{' x '.join(str(levels[f].size) for f in FACTORS)} grid of lr x w_per x w_adv; "
            "give one evaluation CSV per grid cell"
        )
    keep = np.isfinite(y)
    if samples is not None:
        keep &= np.isin(layout.samples, np.asarray(list(samples)))[layout.sample]
    cell = layout.cell[keep]
    counts = np.bincount(cell, minlength=grid.shape[0])
    if np.any(counts == 0):
        empty = grid[np.flatnonzero(counts == 0)[0]]
        raise DataError(
            f"stats: network lr={empty[0]:g} w_per={empty[1]:g} w_adv={empty[2]:g} has no usable "
            f"{response} value (all NaN or non-positive under the log); check its evaluation CSV"
        )
    # images left without any row are dropped and the rest renumbered, in ascending id order
    sample_all = layout.sample[keep]
    used = np.bincount(sample_all, minlength=layout.samples.size) > 0
    renumber = np.cumsum(used) - 1
    return Design(
        y=np.asarray(y[keep], dtype=float),
        cell=cell,
        sample=renumber[sample_all].astype(np.int64),
        levels=levels,
        cells=grid,
        samples=layout.samples[used],
    )
