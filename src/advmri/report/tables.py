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
from advmri.metrics.registry import PAPER_RESPONSES, PROFILES_FITTED, get_response, responses_in

#: The paper's five responses in the order of Table 1 (study §7): the default study. A study's
#: own responses are those its tables have (:func:`study_responses`); each one's label, unit,
#: scale and better direction come from :mod:`advmri.metrics.registry`.
RESPONSES: tuple[str, ...] = PAPER_RESPONSES

#: Columns every evaluation CSV has (the study's responses follow, see :func:`load_evaluations`).
EVAL_ID_COLUMNS: tuple[str, ...] = ("sample", "subject", "w_per", "w_adv", "lr")
#: Columns the report requires of an evaluation CSV: GE ranks Table 1's networks in every study.
EVAL_COLUMNS: tuple[str, ...] = (*EVAL_ID_COLUMNS, "ge")
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
TABLE1_KEYS: tuple[str, ...] = (
    "level",
    "w_per",
    "lr",
    "vgg_w_adv",
    "vgg_lr",
    "gan_w_adv",
    "gan_lr",
)
#: Columns the report requires of Table 1 (every study has GE's test; the others follow).
TABLE1_COLUMNS: tuple[str, ...] = (*TABLE1_KEYS, "ge_F", "ge_p")
ANOVA_COLUMNS: tuple[str, ...] = ("response", "term", "num_df", "den_df", "F", "p")


def study_responses(columns: Sequence[str]) -> tuple[str, ...]:
    """The study's responses among ``columns`` (an evaluation table's columns, or the names in
    a statistics file's ``response`` column), in registration order."""
    return tuple(r.name for r in responses_in(columns))


def table1_responses(table1: pd.DataFrame) -> tuple[str, ...]:
    """The responses Table 1 tests (those with ``<response>_F`` and ``<response>_p``)."""
    columns = set(table1.columns)
    return study_responses(
        [c[: -len("_F")] for c in columns if c.endswith("_F") and c[:-2] + "_p" in columns]
    )


def table1_columns(table1: pd.DataFrame) -> list[str]:
    """Table 1's columns as the report shows them: the keys, then F and p per response."""
    return [*TABLE1_KEYS, *(f"{r}_{s}" for r in table1_responses(table1) for s in ("F", "p"))]


def scale_phrase(responses: Sequence[str]) -> str:
    """How the model sees ``responses``, in words: ``GE, Sharpness on the ln scale; SSIM as is``."""
    logged = [get_response(r).label for r in responses if get_response(r).scale == "log"]
    raw = [get_response(r).label for r in responses if get_response(r).scale != "log"]
    parts = [f"{', '.join(logged)} on the ln scale"] if logged else []
    parts += [f"{', '.join(raw)} as is"] if raw else []
    return "; ".join(parts)


def better_phrase(responses: Sequence[str], who: str = "VGG+GAN") -> str:
    """Which sign of a difference ``who`` minus the other favours ``who``, in words:
    ``negative GE/MIE and positive Sharpness/SSIM favour VGG+GAN``."""
    lower = [get_response(r).label for r in responses if get_response(r).better == "lower"]
    higher = [get_response(r).label for r in responses if get_response(r).better == "higher"]
    parts = [f"negative {'/'.join(lower)}"] if lower else []
    parts += [f"positive {'/'.join(higher)}"] if higher else []
    return f"{' and '.join(parts)} favour {who}"


def labels_phrase(responses: Sequence[str]) -> str:
    """The responses' model-scale labels in words: ``ln(GE), ln(MIE) and SSIM``."""
    labels = [response_label(r) for r in responses]
    return " and ".join([", ".join(labels[:-1]), labels[-1]]) if len(labels) > 1 else labels[0]


def raw_better_phrase(responses: Sequence[str]) -> str:
    """Which raw values are better, in words: ``smaller GE, MIE and larger SSIM are better``."""
    lower = [get_response(r).label for r in responses if get_response(r).better == "lower"]
    higher = [get_response(r).label for r in responses if get_response(r).better == "higher"]
    parts = [f"smaller {', '.join(lower)}"] if lower else []
    parts += [f"larger {', '.join(higher)}"] if higher else []
    return f"{' and '.join(parts)} {'is' if len(lower) + len(higher) == 1 else 'are'} better"


def response_label(response: str) -> str:
    """Axis label of a response on the model scale: ``ln(GE)`` ... ``SSIM``."""
    return get_response(response).model_label


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


def load_evaluations(
    paths: Sequence[str | Path], responses: Sequence[str] | None = None
) -> pd.DataFrame:
    """Concatenate the networks' evaluation CSVs (one row per network x test image).

    Returns columns ``sample, subject, w_per, w_adv, lr`` and the study's raw responses (the
    registered ones the files have, :func:`study_responses`), with ``w_per``, ``w_adv`` and ``lr``
    as floats, plus ``sharpness_profiles_fitted`` when the files have it. The files are checked
    as the statistics check them
    (``advmri.stats.read_eval_tables``): an empty list, a missing, empty or header-only file, a
    missing column, a non-numeric or unexplained empty value, a file of another test set or a
    single network is a DataError naming the file (and line). ``responses`` (the config's
    ``metrics.responses``) must each be a column of every file; default: the registered
    responses the files have.
    """
    if not paths:
        raise DataError("report: no evaluation CSV given; evaluate at least one network first")
    from advmri.stats.design import read_eval_tables

    evals = read_eval_tables(paths, responses)
    _require_columns(evals, EVAL_COLUMNS, f"{len(paths)} evaluation CSV(s)")
    columns = [*EVAL_ID_COLUMNS, *study_responses(evals.columns)]
    if PROFILES_FITTED in evals.columns:
        columns.append(PROFILES_FITTED)
    return evals.loc[:, columns]


def to_model_scale(evals: pd.DataFrame) -> pd.DataFrame:
    """The responses as the mixed model sees them, each on its registered scale (the paper's:
    ln of GE, Sharpness, ECE, MIE; SSIM as is).

    Non-positive values have no logarithm and become NaN (dropped per response, as the model does).
    """
    scaled = evals.copy()
    for response in responses_in(evals.columns):
        if response.scale != "log":
            continue
        response = response.name
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
