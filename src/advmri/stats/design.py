"""Evaluation tables in, one response's model-ready design out.

The study is a full factorial of networks (cells: LR x W_per x W_adv) crossed with test images
(``sample``); networks may be left out only on request (``allow_missing_networks``, e.g. the
report's ``stats.exclude: diverged``). A :class:`Design` holds one response's observations with
every row mapped to its cell and image, the factor levels in numeric order, and the cell order
used by every contrast in this package: lexicographic in (lr, w_per, w_adv), w_adv varying
fastest.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.errors import DataError
from advmri.logs import logger
from advmri.metrics.registry import (
    REASON_SUFFIX,
    Response,
    registered,
    responses_in,
    select_responses,
)

#: Factors of the model, in the order used for cells and contrasts.
FACTORS: tuple[str, ...] = ("lr", "w_per", "w_adv")
#: The response Table 1 picks its winners by; every study has it.
RANKING_RESPONSE = "ge"
#: Columns every evaluation CSV must have. The responses analysed are the registered responses
#: (:mod:`advmri.metrics.registry`) that have a column, each on its registered scale: "log" =
#: natural log (a 0 is left out and counted in missing.csv; a negative value is refused when the
#: CSVs are read), "identity" = as is (:func:`study_responses`).
EVAL_COLUMNS: tuple[str, ...] = ("sample", "w_per", "w_adv", "lr", RANKING_RESPONSE)
#: Reason recorded for a value left out because it is 0 under a log response.
ZERO_UNDER_LOG = "zero_no_logarithm"
#: Reason recorded for an (image, network) pair without a row (only a CSV holding several
#: networks can lack one: a per-network CSV with other images than the rest is an error).
NO_ROW = "no_row"
#: Columns of ``missing.csv`` (:func:`missing_values`).
MISSING_COLUMNS = ["network", "w_per", "w_adv", "lr", "response", "reason", "count"]


class _Origin:
    """Where each row of a concatenated table came from, for error messages."""

    def __init__(self, paths: list[Path], raw: list[bytes], rows: list[int]):
        self.paths, self.raw = paths, raw
        self.file = np.repeat(np.arange(len(paths)), rows)
        self.row = np.concatenate([np.arange(n) for n in rows]) if rows else np.zeros(0, int)

    def __call__(self, i: int) -> str:
        """``<file>, line <n>`` of table row ``i`` (the line as an editor numbers it)."""
        f = int(self.file[i])
        lines = self.raw[f].splitlines()
        # pandas skips blank lines; the header is the first non-blank one
        data_lines = [k + 1 for k, line in enumerate(lines) if line.strip()][1:]
        row = int(self.row[i])
        where = f"line {data_lines[row]}" if row < len(data_lines) else f"data row {row + 1}"
        return f"{self.paths[f]}, {where}"


def study_responses(table: pd.DataFrame | Sequence[str]) -> dict[str, str]:
    """The responses of a study, name -> scale (``log`` or ``identity``), in registration order:
    the registered responses that are columns of ``table`` (or among the names given)."""
    columns = table.columns if isinstance(table, pd.DataFrame) else table
    return {r.name: r.scale for r in responses_in(columns)}


def _response_names(responses: Sequence[Response]) -> str:
    return ", ".join(r.name for r in responses) or "none"


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text[:200]


def _parse(path: Path, data: bytes) -> pd.DataFrame:
    """One evaluation CSV's bytes as a DataFrame; DataError naming the file when unreadable."""
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except pd.errors.EmptyDataError as error:
        raise DataError(
            f"stats: {path} holds no table (empty or blank); re-run the evaluation of its network"
        ) from error
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"stats: {path} is not a readable CSV: {_one_line(error)}") from error
    if not isinstance(frame.index, pd.RangeIndex):
        raise DataError(
            f"stats: {path}: its rows have more fields than its header (a decimal comma or a "
            "stray separator?); write one value per column"
        )
    return frame


def _require(path: Path, frame: pd.DataFrame, required: Sequence[str] = EVAL_COLUMNS) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"stats: {path}: missing column(s) {', '.join(missing)} "
            f"(expected {', '.join(required)})"
        )
    if len(frame) == 0:
        raise DataError(
            f"stats: {path} has a header but no rows; re-run the evaluation of its network"
        )


def _body(data: bytes) -> tuple[bytes, bytes, int | None]:
    """Header line, body (newline-terminated) and its number of rows; None rows when the body
    has quotes or blank lines (then the file is parsed on its own)."""
    text = data if data.endswith(b"\n") else data + b"\n"
    head, _, body = text.partition(b"\n")
    irregular = b'"' in body or b"\n\n" in body or b"\n\r\n" in body or body[:1] in (b"\n", b"\r")
    return head.rstrip(b"\r"), body, None if irregular else body.count(b"\n")


def read_eval_tables(
    paths: Iterable[str | Path], responses: Sequence[str] | None = None
) -> pd.DataFrame:
    """Concatenate evaluation CSVs (one per network, or several networks in one) into one long
    table, refusing anything that would silently change the analysis.

    Parameters
    ----------
    paths : evaluation CSVs with at least the columns of ``EVAL_COLUMNS``.
    responses : the study's responses (the config's ``metrics.responses``): each must be a
        column of every file, and the other registered responses' columns are dropped. Default:
        the registered responses the files have (every file the same).

    Returns
    -------
    DataFrame with one row per (network, test image): ``sample`` int64, factors and responses
    float. Empty response cells stay NaN: only those with a recorded reason are accepted (see
    :func:`check_eval_table`), and :func:`missing_values` counts them.

    Raises
    ------
    DataError
        one line naming the file (and line) for: no paths, a missing, 0-byte, blank or
        header-only file, an unreadable CSV, a missing column, a non-numeric, empty or infinite
        ``sample``/factor/response value, a negative log-scale response, an empty response
        without a reason, a file whose test samples or responses differ from the others', a
        (network, sample) pair present twice, or a single network.
    """
    paths = [Path(p) for p in paths]
    required = list(EVAL_COLUMNS)
    if responses is not None:
        chosen = [r.name for r in select_responses(responses, key="responses")]
        required += [r for r in chosen if r not in required]
    if not paths:
        raise DataError("stats: no evaluation CSVs given; pass results/eval/<cell>.csv files")
    raw = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"stats: evaluation table {path} does not exist")
        data = path.read_bytes()
        if not data.strip():
            raise DataError(
                f"stats: {path} is empty ({len(data)} bytes); re-run the evaluation of its network"
            )
        raw.append(data)
    split = [_body(d) for d in raw]
    table = None
    if len({head for head, _, _ in split}) == 1 and all(n is not None for _, _, n in split):
        # fast path: one parse of every body under the shared header
        rows = [n for _, _, n in split]
        try:
            joined = pd.read_csv(io.BytesIO(split[0][0] + b"\n" + b"".join(b for _, b, _ in split)))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            joined = None
        if (
            joined is not None
            and len(joined) == sum(rows)
            and isinstance(joined.index, pd.RangeIndex)
            and all(n > 0 for n in rows)
            and all(c in joined.columns for c in required)
        ):
            table = joined
    if table is None:  # the slow path finds and names the bad file
        frames = []
        for path, data in zip(paths, raw, strict=True):
            frame = _parse(path, data)
            _require(path, frame, required)
            if frames and responses_in(frame.columns) != responses_in(frames[0].columns):
                raise DataError(
                    f"stats: {path}: its responses ({_response_names(responses_in(frame.columns))}) "
                    f"differ from those of {paths[0]} "
                    f"({_response_names(responses_in(frames[0].columns))}); evaluate every network "
                    "with the same metrics.responses"
                )
            frames.append(frame)
        rows = [len(f) for f in frames]
        table = pd.concat(frames, ignore_index=True)
    origin = _Origin(paths, raw, rows)
    if responses is not None:
        unselected = [r for r in responses_in(table.columns) if r.name not in chosen]
        table = table.drop(
            columns=[c for r in unselected for c in (r.name, r.reason_column) if c in table.columns]
        )
    table = check_eval_table(table, origin)
    _check_same_samples(table, origin)
    return table


def _float_column(table: pd.DataFrame, column: str, where) -> np.ndarray:
    """A column as float; DataError naming the first cell that is text, not a number."""
    values = table[column]
    if values.dtype.kind in "fiu":
        return values.to_numpy(dtype=float)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(numbers) & values.notna().to_numpy())
    if bad.size:
        text = str(values.iloc[bad[0]])
        hint = " (a decimal comma? write 1.5, not 1,5)" if "," in text else ""
        raise DataError(
            f"stats: {where(bad[0])}: {column} = {text!r} is not a number{hint}; "
            f"{bad.size} such cell(s) in all"
        )
    return numbers


def _reasons(table: pd.DataFrame, response: str) -> np.ndarray:
    """Per row, the recorded reason for an empty ``response`` ("" when none)."""
    reasons = np.full(len(table), "", dtype=object)
    column = response + REASON_SUFFIX
    if column in table.columns:
        given = table[column]
        text = given.astype(str).str.strip().to_numpy(dtype=object)
        reasons = np.where(given.notna().to_numpy() & (text != ""), text, reasons)
    count = _explaining_count(response)
    if count is not None and count in table.columns:
        none_fitted = (table[count] == 0).to_numpy()
        reasons = np.where((reasons == "") & none_fitted, "no_profile_fitted", reasons)
    return reasons


def _explaining_count(response: str) -> str | None:
    """The count column whose 0 explains an empty ``response`` (registry's ``empty_when_zero``)."""
    by_name = {r.name: r for r in registered()}
    return by_name[response].empty_when_zero if response in by_name else None


def check_eval_table(table: pd.DataFrame, where=None) -> pd.DataFrame:
    """Validate a long evaluation table (as :func:`read_eval_tables` returns) and return it.

    ``sample`` must be integer ids, the factors and responses (:func:`study_responses`)
    numbers. An empty (NaN) response is accepted only with a reason: a non-empty
    ``<response>_reason`` cell, or a 0 in the response's explaining count column (registry's
    ``empty_when_zero``: for sharpness and ECE ``sharpness_profiles_fitted = 0``, no edge profile
    could be fitted, so neither metric exists; the evaluation stage writes NaN then). Under the
    log a value must not be negative; 0 is accepted and counted by :func:`missing_values`.

    Parameters
    ----------
    where : callable giving the location of row ``i`` for messages (default ``row i``).

    Raises
    ------
    DataError
        a missing column, a non-numeric, empty or infinite value where a number is needed, an
        empty response without a reason, a duplicated (network, sample) row, or one network.
    """
    where = where or (lambda i: f"evaluation table row {i}")
    missing = [c for c in EVAL_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"stats: evaluation table lacks column(s) {', '.join(missing)}")
    table = table.copy()
    sample = _float_column(table, "sample", where)
    bad = np.flatnonzero(~np.isfinite(sample) | (sample != np.round(sample)))
    if bad.size:
        value = table["sample"].iloc[bad[0]]
        raise DataError(
            f"stats: {where(bad[0])}: sample = {value!r} is not an integer test-image id"
            if pd.notna(value)
            else f"stats: {where(bad[0])}: sample is empty; every row needs its test image's id"
        )
    table["sample"] = sample.astype(np.int64)
    for factor in FACTORS:
        values = _float_column(table, factor, where)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise DataError(
                f"stats: {where(bad[0])}: empty w_per/w_adv/lr ({factor}); a grid network's "
                "evaluation is expected here, not a reference (LQ input or pretrained generator)"
                if np.isnan(values[bad[0]])
                else f"stats: {where(bad[0])}: {factor} = {values[bad[0]]} is not finite"
            )
        table[factor] = values
    responses = study_responses(table)
    for count in {_explaining_count(r) for r in responses} - {None}:
        if count in table.columns:
            table[count] = _float_column(table, count, where)
    for response, scale in responses.items():
        values = _float_column(table, response, where)
        bad = np.flatnonzero(np.isinf(values))
        if bad.size:
            raise DataError(f"stats: {where(bad[0])}: {response} = {values[bad[0]]} is infinite")
        if scale == "log":
            bad = np.flatnonzero(values < 0)
            if bad.size:
                raise DataError(
                    f"stats: {where(bad[0])}: {response} = {values[bad[0]]:g} is negative; "
                    f"{response} cannot be (it is analysed on the log scale)"
                )
        empty = np.isnan(values)
        if empty.any():
            reasons = _reasons(table, response)
            bad = np.flatnonzero(empty & (reasons == ""))
            if bad.size:
                count = _explaining_count(response)
                fitted = table[count].iloc[bad[0]] if count in table.columns else None
                says = (
                    f" although {count} = {fitted:g} says it was fitted"
                    if fitted is not None and fitted > 0
                    else ""
                )
                raise DataError(
                    f"stats: {where(bad[0])}: {response} is empty{says} and no reason is "
                    f"recorded ({response}{REASON_SUFFIX} column); {bad.size} such cell(s) in "
                    "all; only a value with a recorded reason may be missing"
                )
        table[response] = values
    keys = table[["sample", *FACTORS]]
    duplicated = keys.duplicated(keep=False).to_numpy()
    if duplicated.any():
        first, second = np.flatnonzero(duplicated)[:1], []
        row = table.iloc[first[0]]
        same = (keys == keys.iloc[first[0]]).all(axis=1).to_numpy()
        second = np.flatnonzero(same)[1]
        raise DataError(
            f"stats: {where(second)}: sample {row['sample']} appears twice for network "
            f"lr={row['lr']:g} w_per={row['w_per']:g} w_adv={row['w_adv']:g} (first at "
            f"{where(first[0])}); give each network's CSV once"
        )
    networks = table[list(FACTORS)].drop_duplicates()
    if len(networks) < 2:
        net = networks.iloc[0]
        raise DataError(
            f"stats: {where(0).rsplit(', ', 1)[0]}: only one network (lr={net['lr']:g} "
            f"w_per={net['w_per']:g} w_adv={net['w_adv']:g}) in the evaluation tables given; "
            "the statistics compare networks, so give the CSVs of the whole grid"
        )
    return table


def _check_same_samples(table: pd.DataFrame, origin: _Origin) -> None:
    """DataError naming the first CSV whose set of test samples differs from the most common."""
    if len(origin.paths) < 2:
        return
    sample = table["sample"].to_numpy()
    bounds = np.concatenate([[0], np.cumsum(np.bincount(origin.file, minlength=len(origin.paths)))])
    sets = [np.unique(sample[bounds[k] : bounds[k + 1]]) for k in range(len(origin.paths))]
    keys = [s.tobytes() for s in sets]
    counts: dict[bytes, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    reference_key = max(counts, key=counts.get)  # ties: the first file's set
    if len(counts) == 1:
        return
    reference = sets[keys.index(reference_key)]
    k = next(i for i, key in enumerate(keys) if key != reference_key)
    extra = np.setdiff1d(sets[k], reference)
    absent = np.setdiff1d(reference, sets[k])

    def some(ids: np.ndarray) -> str:
        return f"{ids.size} ({', '.join(str(i) for i in ids[:3])}{', ...' if ids.size > 3 else ''})"

    raise DataError(
        f"stats: {origin.paths[k]}: its test samples differ from those of the "
        f"{counts[reference_key]} other CSV(s) like {origin.paths[keys.index(reference_key)]}: "
        f"{some(extra)} not among theirs, {some(absent)} of theirs absent; evaluate every network "
        "on the same test split"
    )


def missing_values(table: pd.DataFrame, layout: Layout | None = None) -> pd.DataFrame:
    """Count, per network, response and reason, the values the model leaves out.

    A value is left out when its cell is empty (with its recorded reason, see
    :func:`check_eval_table`), when it is 0 under the log (``zero_no_logarithm``), or when the
    network has no row for one of the study's test images (``no_row``).

    Returns
    -------
    DataFrame with :data:`MISSING_COLUMNS`, one row per (network, response, reason) with a count
    above 0, ordered by response (study order), then network (lr, w_per, w_adv), then reason.
    ``layout`` is ``table_layout(table)`` when already computed.
    """
    from advmri.grid import Cell

    layout = table_layout(table) if layout is None else layout
    n_cells, n_samples = layout.cells.shape[0], layout.samples.size
    present = np.bincount(layout.cell, minlength=n_cells)
    parts = []
    for order, (response, scale) in enumerate(study_responses(table).items()):
        values = pd.to_numeric(table[response], errors="coerce").to_numpy(dtype=float)
        reasons = _reasons(table, response)
        reasons = np.where(np.isnan(values) & (reasons == ""), "not_a_number", reasons)
        if scale == "log":
            reasons = np.where(values == 0, ZERO_UNDER_LOG, reasons)
        left_out = np.isnan(values) | ((values == 0) if scale == "log" else False)
        frame = pd.DataFrame(
            {"cell": layout.cell[left_out], "reason": reasons[left_out].astype(str)}
        )
        counts = frame.groupby(["cell", "reason"]).size().reset_index(name="count")
        absent = np.flatnonzero((present > 0) & (present < n_samples))
        if absent.size:
            extra = pd.DataFrame(
                {"cell": absent, "reason": NO_ROW, "count": n_samples - present[absent]}
            )
            counts = pd.concat([counts, extra], ignore_index=True)
        counts["response"] = response
        counts["order"] = order
        parts.append(counts)
    counts = pd.concat(parts, ignore_index=True)
    counts = counts.sort_values(["order", "cell", "reason"], kind="stable")
    cells = layout.cells[counts["cell"].to_numpy(dtype=np.int64)]
    out = pd.DataFrame(
        {
            "network": [Cell(w_per=c[1], w_adv=c[2], lr=c[0]).name for c in cells],
            "lr": cells[:, 0],
            "w_per": cells[:, 1],
            "w_adv": cells[:, 2],
            "response": counts["response"].to_numpy(),
            "reason": counts["reason"].to_numpy(),
            "count": counts["count"].to_numpy(dtype=np.int64),
        },
        columns=MISSING_COLUMNS,
    )
    return out.reset_index(drop=True)


def response_values(table: pd.DataFrame, response: str, scale: str | None = None) -> np.ndarray:
    """The model-scale values of one response: ln(x) for a log-scale response, else x.

    ``scale`` overrides the registered scale ("log" or "identity"; "identity" for a column that
    is no registered response). NaN, infinite values and,
    under a log, values <= 0 come back as NaN (dropped for this response only).
    """
    if response not in table.columns:
        raise DataError(f"stats: evaluation table has no column {response!r}")
    scale = study_responses([response]).get(response, "identity") if scale is None else scale
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
    cells : (I, 3) factor values of each network of the full grid, rows lexicographic in
        (lr, w_per, w_adv).
    samples : (J,) image identifiers.
    present : indices (ascending) of the grid cells that have observations; None when every
        cell has (the full factorial). Only :func:`build_design` with
        ``allow_missing_networks=True`` leaves cells out.
    """

    y: np.ndarray
    cell: np.ndarray
    sample: np.ndarray
    levels: dict[str, np.ndarray]
    cells: np.ndarray
    samples: np.ndarray
    present: np.ndarray | None = None

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

    @property
    def present_cells(self) -> np.ndarray:
        """Indices of the grid cells with observations (all of them on a full grid)."""
        return np.arange(self.n_cells) if self.present is None else self.present

    @property
    def missing_cells(self) -> np.ndarray:
        """Indices of the grid cells without observations (empty on a full grid)."""
        if self.present is None:
            return np.zeros(0, dtype=np.int64)
        return np.setdiff1d(np.arange(self.n_cells), self.present)

    @property
    def fit_cell(self) -> np.ndarray:
        """Each row's network as a code 0..K-1 among the K present cells (what the model fits)."""
        return self.cell if self.present is None else np.searchsorted(self.present, self.cell)

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
    allow_missing_networks: bool = False,
) -> Design:
    """Map the rows of ``table`` with finite ``y`` onto the cell x image layout.

    Parameters
    ----------
    table : long evaluation table (factor columns lr, w_per, w_adv and sample).
    y : model-scale values, one per row of ``table``; NaN rows are dropped.
    response : name used in error messages.
    samples : restrict to these images (others dropped); default all.
    layout : ``table_layout(table)`` when already computed (it is the same for every response).
    allow_missing_networks : accept networks (grid cells) without any row in ``table``, e.g.
        networks left out because their training diverged; the design then records the present
        cells (``Design.present``) and the tests use only what they identify (see
        :mod:`advmri.stats.analysis`).

    Raises
    ------
    DataError
        the networks do not form a full factorial (unless ``allow_missing_networks``), or a
        network that has rows has no usable one.
    """
    layout = table_layout(table) if layout is None else layout
    levels, grid = layout.levels, layout.cells
    in_table = None
    if layout.n_present != grid.shape[0]:
        in_table = np.bincount(layout.cell, minlength=grid.shape[0]) > 0
        if not allow_missing_networks:
            absent = grid[np.flatnonzero(~in_table)]
            first = ", ".join(f"lr={c[0]:g} w_per={c[1]:g} w_adv={c[2]:g}" for c in absent[:2]) + (
                ", ..." if len(absent) > 2 else ""
            )
            raise DataError(
                f"stats: the {layout.n_present} networks do not form the full "
                f"{' x '.join(str(levels[f].size) for f in FACTORS)} grid of lr x w_per x w_adv "
                f"({len(absent)} missing: {first}); give one evaluation CSV per grid cell, or "
                "analyse the incomplete grid with --allow-missing-networks "
                "(allow_missing_networks=True)"
            )
    keep = np.isfinite(y)
    if samples is not None:
        keep &= np.isin(layout.samples, np.asarray(list(samples)))[layout.sample]
    cell = layout.cell[keep]
    counts = np.bincount(cell, minlength=grid.shape[0])
    present_mask = np.ones(grid.shape[0], dtype=bool) if in_table is None else in_table.copy()
    unusable = (counts == 0) & present_mask
    if np.any(unusable):
        # every value of this response is legitimately missing for these networks (the strict
        # reader accepted each NaN only with its reason, counted in missing.csv): this response's
        # model is fitted without them, as for networks left out of the statistics
        names = ", ".join(
            f"lr={c[0]:g} w_per={c[1]:g} w_adv={c[2]:g}" for c in grid[np.flatnonzero(unusable)]
        )
        logger.warning(
            "stats: %s: no usable value for network(s) %s (all NaN with a recorded reason, or "
            "non-positive under the log); %s is fitted without them",
            response,
            names,
            response,
        )
        present_mask &= ~unusable
        if np.count_nonzero(present_mask) < 2:
            raise DataError(
                f"stats: {response} has a usable value in {np.count_nonzero(present_mask)} "
                "network(s) only (all NaN with a recorded reason, or non-positive under the log; "
                "see the evaluation CSVs' reason columns); the model compares networks and needs "
                "at least two"
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
        present=None if present_mask.all() else np.flatnonzero(present_mask),
    )
