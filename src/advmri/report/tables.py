"""Read the evaluation and statistics tables the report is drawn from.

The report depends only on the files of the evaluation and statistics contracts (study §6-§7), never on
the internals of the code that wrote them: evaluation CSVs (one row per test image of one network) and
the statistics folder (``anova.csv``, ``emmeans.csv``, ``table1.csv``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.errors import DataError
from advmri.grid import Cell

#: The five responses in the order of Table 1 (study §7).
RESPONSES: tuple[str, ...] = ("ge", "sharpness", "ece", "mie", "ssim")
#: Responses modelled on the natural-log scale; SSIM is modelled as is.
LOG_RESPONSES: frozenset[str] = frozenset({"ge", "sharpness", "ece", "mie"})
#: +1 where larger is better, -1 where smaller is better (study §6).
BETTER: dict[str, int] = {"ge": -1, "sharpness": 1, "ece": -1, "mie": -1, "ssim": 1}
NAMES: dict[str, str] = {
    "ge": "GE",
    "sharpness": "Sharpness",
    "ece": "ECE",
    "mie": "MIE",
    "ssim": "SSIM",
}

EVAL_COLUMNS: tuple[str, ...] = ("sample", "subject", "w_per", "w_adv", "lr", *RESPONSES)
#: How many of the 8 edge profiles fitted per image; kept when an evaluation CSV has it.
PROFILES_FITTED = "sharpness_profiles_fitted"
EMMEANS_COLUMNS: tuple[str, ...] = (
    "response",
    "w_per",
    "w_adv",
    "lr",
    "estimate",
    "se",
    "df",
    "ci_low",
    "ci_high",
)
TABLE1_COLUMNS: tuple[str, ...] = (
    "level",
    "w_per",
    "lr",
    "vgg_w_adv",
    "vgg_lr",
    "gan_w_adv",
    "gan_lr",
    *(f"{r}_{s}" for r in RESPONSES for s in ("F", "p")),
)
ANOVA_COLUMNS: tuple[str, ...] = ("response", "term", "num_df", "den_df", "F", "p")


def response_label(response: str) -> str:
    """Axis label of a response on the model scale: ``ln(GE)`` ... ``SSIM``."""
    name = NAMES[response]
    return f"ln({name})" if response in LOG_RESPONSES else name


def _require_columns(table: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {', '.join(missing)} "
            f"(found {', '.join(map(str, table.columns))}); regenerate it with the current advmri"
        )


def read_table(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read one CSV and check that it has ``columns``; a missing file or column is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; run the stage that writes it first")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc}); regenerate it") from exc
    _require_columns(table, columns, str(path))
    return table


def load_evaluations(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate the networks' evaluation CSVs (one row per network x test image).

    Returns columns ``sample, subject, w_per, w_adv, lr`` and the five raw responses, with ``w_per``,
    ``w_adv`` and ``lr`` as floats, plus ``sharpness_profiles_fitted`` when the files have it. The files are checked as the statistics check them
    (``advmri.stats.read_eval_tables``): an empty list, a missing, empty or header-only file, a
    missing column, a non-numeric or unexplained empty value, a file of another test set or a
    single network is a DataError naming the file (and line).
    """
    if not paths:
        raise DataError("report: no evaluation CSV given; evaluate at least one network first")
    from advmri.stats.design import read_eval_tables

    evals = read_eval_tables(paths)
    _require_columns(evals, EVAL_COLUMNS, f"{len(paths)} evaluation CSV(s)")
    columns = list(EVAL_COLUMNS)
    if PROFILES_FITTED in evals.columns:
        columns.append(PROFILES_FITTED)
    return evals.loc[:, columns]


def to_model_scale(evals: pd.DataFrame) -> pd.DataFrame:
    """The responses as the mixed model sees them: ln of GE, Sharpness, ECE, MIE; SSIM as is.

    Non-positive values have no logarithm and become NaN (dropped per response, as the model does).
    """
    scaled = evals.copy()
    for response in LOG_RESPONSES:
        values = scaled[response].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled[response] = np.where(values > 0, np.log(values), np.nan)
    return scaled


def select_level(values: pd.Series, level: float) -> pd.Series:
    """Boolean mask of ``values`` equal to the factor level ``level`` (float-tolerant)."""
    return pd.Series(np.isclose(values.to_numpy(dtype=float), float(level)), index=values.index)


def check_level(available: Sequence[float], level: float, what: str, key: str) -> None:
    """DataError when ``level`` is not among ``available`` (a figure setting outside the grid)."""
    if not np.any(np.isclose(np.asarray(available, dtype=float), float(level))):
        levels = ", ".join(f"{v:g}" for v in sorted(set(map(float, available))))
        raise DataError(
            f"report: {what} = {level:g} ({key}) is not a level of the evaluated grid ({levels}); "
            f"set {key} to one of them"
        )


def table1_level(level: object) -> str:
    """Normalise Table 1's ``level`` column to ``"I"`` (per W_per) or ``"II"`` (per W_per x LR)."""
    text = str(level).strip().upper()
    if text in {"I", "1", "1.0"}:
        return "I"
    if text in {"II", "2", "2.0"}:
        return "II"
    raise DataError(f"table1.csv: unknown level {level!r}; expected I or II")


def table1_rows(table1: pd.DataFrame, level: str) -> pd.DataFrame:
    """Table 1's rows of one analysis level (``"I"`` or ``"II"``), sorted by W_per then LR."""
    levels = table1["level"].map(table1_level)
    rows = table1.loc[levels == level].copy()
    rows["level"] = level
    return rows.sort_values(["w_per", "lr"], na_position="first").reset_index(drop=True)


def winners(table1_row: pd.Series) -> tuple[Cell, Cell]:
    """The (best VGG-Enhanced, best VGG+GAN-Enhanced) networks of one Table 1 row."""
    w_per = float(table1_row["w_per"])
    vgg = Cell(w_per, float(table1_row["vgg_w_adv"]), float(table1_row["vgg_lr"]))
    gan = Cell(w_per, float(table1_row["gan_w_adv"]), float(table1_row["gan_lr"]))
    return vgg, gan


def has_winners(table1_row: pd.Series) -> bool:
    """False for a Table 1 row without a VGG or VGG+GAN network (left out of the statistics,
    e.g. by ``stats.exclude: diverged``): its LR / W_adv and its F and p are empty."""
    values = [table1_row[c] for c in ("vgg_lr", "vgg_w_adv", "gan_lr", "gan_w_adv")]
    return bool(np.all(np.isfinite(np.asarray(values, dtype=float))))


def emmeans_lookup(emmeans: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    """Index the EMM rows by (response, cell name) so networks named in Table 1 can be found."""
    lookup = {}
    for _, row in emmeans.iterrows():
        cell = Cell(float(row["w_per"]), float(row["w_adv"]), float(row["lr"]))
        lookup[(str(row["response"]), cell.name)] = row
    return lookup


def best_by_ge(emmeans: pd.DataFrame, w_per: float, lr: float | None = None) -> tuple[Cell, Cell]:
    """Best W_adv = 0 and best W_adv > 0 network at ``w_per`` (and ``lr``) by estimated ln(GE).

    The ranking Table 1 uses with ``selection: all``; used when no Table 1 row names the winners.
    """
    rows = emmeans[(emmeans["response"] == "ge") & select_level(emmeans["w_per"], w_per)]
    if lr is not None:
        rows = rows[select_level(rows["lr"], lr)]
    rows = rows[np.isfinite(rows["estimate"])]  # a network left out has no estimate
    vgg_rows = rows[rows["w_adv"] == 0]
    gan_rows = rows[rows["w_adv"] > 0]
    if vgg_rows.empty or gan_rows.empty:
        raise DataError(
            f"emmeans.csv: W_per = {w_per:g} lacks a W_adv = 0 or a W_adv > 0 network; "
            "the grid needs both to compare VGG-Enhanced with VGG+GAN-Enhanced"
        )
    pick = []
    for group in (vgg_rows, gan_rows):
        row = group.loc[group["estimate"].idxmin()]
        pick.append(Cell(float(row["w_per"]), float(row["w_adv"]), float(row["lr"])))
    return pick[0], pick[1]
