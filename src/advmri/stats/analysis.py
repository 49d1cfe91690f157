"""Per-response fit and its tables: type-III ANOVA, cell EMMs, Tukey HSD families.

Every quantity is a linear function of the network (cell) means of :mod:`advmri.stats.mixed`,
so the factorial hypotheses are built as cell-mean contrasts (Kronecker products of per-factor
contrasts and averages, the 'type III' hypotheses of an all-cells-filled factorial, as lmerTest
and emmeans test them), with Satterthwaite df throughout.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd
from scipy import stats as sps

from advmri.stats.design import FACTORS, Design, build_design, response_values
from advmri.stats.mixed import MixedFit, fit_mixed
from advmri.stats.ptukey import studentized_range_sf

#: ANOVA terms in R's order.
TERMS: tuple[tuple[str, ...], ...] = (
    ("lr",), ("w_per",), ("w_adv",),
    ("lr", "w_per"), ("lr", "w_adv"), ("w_per", "w_adv"),
    ("lr", "w_per", "w_adv"),
)  # fmt: skip
#: Tukey families: name -> (by factors, compared factors); compared levels are averaged over
#: the factors in neither list (equal weights, as emmeans does).
TUKEY_FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "w_adv|w_per,lr": (("w_per", "lr"), ("w_adv",)),
    "lr:w_adv|w_per": (("w_per",), ("lr", "w_adv")),
    "w_adv": ((), ("w_adv",)),
    "w_per": ((), ("w_per",)),
    "lr": ((), ("lr",)),
}
ANOVA_COLUMNS = ["response", "term", "num_df", "den_df", "F", "p"]
VARIANCE_COLUMNS = ["response", "sample_var", "residual_var"]
EMMEANS_COLUMNS = ["response", "lr", "w_per", "w_adv", "estimate", "se", "df", "ci_low", "ci_high"]
TUKEY_COLUMNS = [
    "response", "family", "by_w_per", "by_lr",
    "a_lr", "a_w_per", "a_w_adv", "b_lr", "b_w_per", "b_w_adv",
    "estimate", "se", "df", "t_ratio", "p_adj",
]  # fmt: skip


@dataclass
class ResponseFit:
    """A response's design and its fitted mixed model."""

    response: str
    design: Design
    fit: MixedFit


def fit_response(
    table: pd.DataFrame,
    response: str,
    scale: str | None = None,
    samples=None,
) -> ResponseFit:
    """Fit ``y ~ lr * w_per * w_adv + (1 | sample)`` by REML to one response.

    Parameters
    ----------
    table : long evaluation table (see :func:`advmri.stats.design.read_eval_tables`).
    response : metric column (ge, sharpness, ece, mie, ssim).
    scale : "log" or "identity"; default the study's (ln for all but ssim).
    samples : restrict to these images (split-half selection); default all.

    Returns
    -------
    ResponseFit; the closed form is used when every network has every image, REML otherwise.
    """
    y = response_values(table, response, scale)
    design = build_design(table, y, response, samples)
    return ResponseFit(response, design, fit_mixed(design.y, design.cell, design.sample))


def _factor_matrix(n: int, kind: str) -> np.ndarray:
    if kind == "mean":
        return np.full((1, n), 1.0 / n)
    # Successive differences span the (n-1)-dim contrast space; F does not depend on the basis.
    return np.eye(n)[:-1] - np.eye(n)[1:]


def term_contrast(design: Design, term: tuple[str, ...]) -> np.ndarray:
    """Cell-mean contrast matrix of a factorial term (type III), rows spanning its hypothesis."""
    mats = [
        _factor_matrix(design.levels[f].size, "contrast" if f in term else "mean") for f in FACTORS
    ]
    return reduce(np.kron, mats)


def anova_table(rf: ResponseFit) -> pd.DataFrame:
    """Type-III F tests of the seven factorial terms (Satterthwaite denominator df).

    Returns columns ``response, term, num_df, den_df, F, p`` (term names as R writes them,
    e.g. ``lr:w_per``). A term whose factors have one level is left out.
    """
    rows = []
    for term in TERMS:
        if any(rf.design.levels[f].size < 2 for f in term):
            continue
        test = rf.fit.f_test(term_contrast(rf.design, term))
        rows.append({"response": rf.response, "term": ":".join(term), **test})
    return pd.DataFrame(rows, columns=ANOVA_COLUMNS)


def variance_table(rf: ResponseFit) -> pd.DataFrame:
    """REML variance components: ``response, sample_var, residual_var``."""
    return pd.DataFrame(
        [[rf.response, rf.fit.sample_var, rf.fit.residual_var]], columns=VARIANCE_COLUMNS
    )


def emmeans_table(rf: ResponseFit, level: float = 0.95) -> pd.DataFrame:
    """Estimated cell (network) means with SE, Satterthwaite df and ``level`` CI, model scale."""
    c = rf.fit.contrasts(np.eye(rf.design.n_cells))
    half = sps.t.ppf(0.5 + level / 2, c["df"]) * c["se"]
    frame = rf.design.cell_frame()
    frame.insert(0, "response", rf.response)
    frame["estimate"] = c["estimate"]
    frame["se"] = c["se"]
    frame["df"] = c["df"]
    frame["ci_low"] = c["estimate"] - half
    frame["ci_high"] = c["estimate"] + half
    return frame[EMMEANS_COLUMNS]


def _level_means(design: Design, by: tuple[str, ...], compared: tuple[str, ...]):
    """Rows of cell weights giving the EMM of each (by, compared) level, emmeans' grid order.

    Yields (by values dict, list of (compared values dict, weight row)).
    """
    shape = design.shape
    grid = np.array(list(itertools.product(*(range(n) for n in shape))))
    by_levels = list(itertools.product(*(range(design.levels[f].size) for f in by)))
    # emmeans orders a multi-factor level grid with the first factor varying fastest.
    cmp_levels = [
        tuple(reversed(t))
        for t in itertools.product(*(range(design.levels[f].size) for f in reversed(compared)))
    ]
    idx = {f: FACTORS.index(f) for f in FACTORS}
    for b in by_levels:
        mask_b = np.all([grid[:, idx[f]] == b[i] for i, f in enumerate(by)], axis=0)
        levels = []
        for c in cmp_levels:
            mask = mask_b & np.all(
                [grid[:, idx[f]] == c[i] for i, f in enumerate(compared)], axis=0
            )
            weights = mask / mask.sum()
            values = {f: design.levels[f][c[i]] for i, f in enumerate(compared)}
            levels.append((values, weights))
        yield {f: design.levels[f][b[i]] for i, f in enumerate(by)}, levels


def tukey_table(rf: ResponseFit, families: dict | None = None) -> pd.DataFrame:
    """Tukey HSD pairwise comparisons for each family (default :data:`TUKEY_FAMILIES`).

    Within each by-group every pair (a, b) of levels, a before b in emmeans' level order, gets
    estimate = EMM(a) - EMM(b) with its SE and Satterthwaite df, t = estimate / SE and
    p_adj = P(Q > sqrt(2) |t|) for the studentized range of k = number of levels in the group
    and the contrast's df. Columns: :data:`TUKEY_COLUMNS` (NaN where one does not apply).
    """
    families = TUKEY_FAMILIES if families is None else families
    frames = []
    for name, (by, compared) in families.items():
        if any(rf.design.levels[f].size < 2 for f in compared):
            continue
        meta, rows, k_sizes = [], [], []
        for by_values, levels in _level_means(rf.design, by, compared):
            for (va, wa), (vb, wb) in itertools.combinations(levels, 2):
                meta.append(
                    {
                        "by_w_per": by_values.get("w_per", np.nan),
                        "by_lr": by_values.get("lr", np.nan),
                        **{f"a_{f}": va.get(f, np.nan) for f in FACTORS},
                        **{f"b_{f}": vb.get(f, np.nan) for f in FACTORS},
                    }
                )
                rows.append(wa - wb)
                k_sizes.append(len(levels))
        c = rf.fit.contrasts(np.array(rows))
        frame = pd.DataFrame(meta)
        frame.insert(0, "family", name)
        frame.insert(0, "response", rf.response)
        frame["estimate"] = c["estimate"]
        frame["se"] = c["se"]
        frame["df"] = c["df"]
        frame["t_ratio"] = c["t"]
        k = int(k_sizes[0])
        frame["p_adj"] = studentized_range_sf(np.sqrt(2) * np.abs(c["t"]), k, c["df"])
        frames.append(frame[TUKEY_COLUMNS])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TUKEY_COLUMNS)
