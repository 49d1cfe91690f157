"""Per-response fit and its tables: type-III ANOVA, cell EMMs, Tukey HSD families.

Every quantity is a linear function of the network (cell) means of :mod:`advmri.stats.mixed`,
so the factorial hypotheses are built as cell-mean contrasts (Kronecker products of per-factor
contrasts and averages, the 'type III' hypotheses of an all-cells-filled factorial, as lmerTest
and emmeans test them), with Satterthwaite df throughout.

Networks left out (``allow_missing_networks``, an incomplete grid): the model is fitted on the
present cells, and every full-grid contrast is used only where it does not need a missing cell.
An EMM or Tukey comparison that averages over a missing cell is NaN (not estimable); an F test
keeps the estimable part of its term's hypothesis (:meth:`ResponseFit.f_test`, SAS's type-IV
idea), and says so in anova.csv's ``note`` column.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd
from scipy import special

from advmri.stats.design import FACTORS, Design, Layout, build_design, response_values
from advmri.stats.mixed import MixedFit, fit_mixed
from advmri.stats.ptukey import studentized_range_sf

#: Weights below this (relative to the largest of L) count as zero in a type-IV contrast.
_ZERO = 1e-10

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
#: ``note``: empty on a full grid; on an incomplete one, how much of the term was testable.
ANOVA_COLUMNS = ["response", "term", "num_df", "den_df", "F", "p", "note"]
VARIANCE_COLUMNS = ["response", "sample_var", "residual_var"]
# Factor columns in the order of every CSV of the study: w_per, w_adv, lr (advmri.grid.Cell's).
EMMEANS_COLUMNS = ["response", "w_per", "w_adv", "lr", "estimate", "se", "df", "ci_low", "ci_high"]
TUKEY_COLUMNS = [
    "response", "family", "by_w_per", "by_lr",
    "a_w_per", "a_w_adv", "a_lr", "b_w_per", "b_w_adv", "b_lr",
    "estimate", "se", "df", "t_ratio", "p_adj",
]  # fmt: skip


@dataclass
class ResponseFit:
    """A response's design and its fitted mixed model.

    ``fit`` is on the present cells only (``design.present_cells``, all of them on a full grid);
    the methods below take and give full-grid quantities.
    """

    response: str
    design: Design
    fit: MixedFit

    @property
    def cell_means(self) -> np.ndarray:
        """(I,) estimated mean of every grid cell; NaN for a missing network."""
        if self.design.present is None:
            return self.fit.beta
        beta = np.full(self.design.n_cells, np.nan)
        beta[self.design.present] = self.fit.beta
        return beta

    def contrasts(self, L: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`MixedFit.contrasts` of full-grid rows ``L`` (r, I); a row with weight on a
        missing cell is not estimable: NaN estimate, se, df and t."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        missing = self.design.missing_cells
        if missing.size == 0:
            return self.fit.contrasts(L)
        out = self.fit.contrasts(L[:, self.design.present])
        touches = np.any(L[:, missing] != 0, axis=1)
        for values in out.values():
            values[touches] = np.nan
        return out

    def f_test(self, L: np.ndarray) -> tuple[dict[str, float], str]:
        """Wald F test of ``L beta = 0`` (full-grid rows) and a note ("" on a full grid).

        With missing cells only the estimable part of the hypothesis is tested: the
        combinations c'L of its rows that put zero weight on every missing cell (c in the left
        null space of L[:, missing], from its SVD), restricted to the present cells; the rank
        comes from :meth:`MixedFit.f_test`'s eigen-decomposition as on a full grid. This is the
        idea of SAS's type-IV hypotheses (hypotheses built from the filled cells only); it is
        not SAS's construction, which picks other (and not unique) contrasts. A term none of
        whose combinations avoids the missing cells (e.g. the main effect of a two-level factor
        when one cell is missing) gets NaN F, df and p.
        """
        L = np.atleast_2d(np.asarray(L, dtype=float))
        missing = self.design.missing_cells
        if missing.size == 0:
            return self.fit.f_test(L), ""
        u, s, _ = np.linalg.svd(L[:, missing], full_matrices=True)
        rank = int(np.sum(s > max(L.shape) * np.finfo(float).eps * s[0])) if s.size else 0
        kept = (u[:, rank:].T @ L)[:, self.design.present]
        n_missing = f"{missing.size} network(s) missing"
        nan = {"F": np.nan, "num_df": np.nan, "den_df": np.nan, "p": np.nan}
        if kept.shape[0] == 0 or not np.any(np.abs(kept) > _ZERO * np.abs(L).max()):
            return (
                nan,
                f"not estimable: every contrast of the term needs a missing network ({n_missing})",
            )
        try:
            test = self.fit.f_test(kept)
        except ValueError:
            return nan, f"not estimable on the present networks ({n_missing})"
        if test["num_df"] == L.shape[0]:
            return test, f"all {L.shape[0]} df estimable ({n_missing})"
        return test, (
            f"type IV: {test['num_df']} of {L.shape[0]} df estimable without the missing "
            f"cells ({n_missing})"
        )


def fit_response(
    table: pd.DataFrame,
    response: str,
    scale: str | None = None,
    samples=None,
    layout: Layout | None = None,
    allow_missing_networks: bool = False,
) -> ResponseFit:
    """Fit ``y ~ lr * w_per * w_adv + (1 | sample)`` by REML to one response.

    Parameters
    ----------
    table : long evaluation table (see :func:`advmri.stats.design.read_eval_tables`).
    response : metric column (ge, sharpness, ece, mie, ssim).
    scale : "log" or "identity"; default the study's (ln for all but ssim).
    samples : restrict to these images (split-half selection); default all.
    layout : ``advmri.stats.design.table_layout(table)``, when already computed.
    allow_missing_networks : accept a grid with networks absent from ``table`` (the cell-means
        model is then fitted on the present networks); otherwise an incomplete grid is a
        DataError.

    Returns
    -------
    ResponseFit; the closed form is used when every present network has every image, REML
    otherwise.
    """
    y = response_values(table, response, scale)
    design = build_design(table, y, response, samples, layout, allow_missing_networks)
    return ResponseFit(response, design, fit_mixed(design.y, design.fit_cell, design.sample))


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

    Returns columns ``response, term, num_df, den_df, F, p, note`` (term names as R writes
    them, e.g. ``lr:w_per``). A term whose factors have one level is left out. ``note`` is empty
    on a full grid; with missing networks it says how much of the term could be tested
    (:meth:`ResponseFit.f_test`), and a term with nothing testable has NaN F and p.
    """
    rows = []
    for term in TERMS:
        if any(rf.design.levels[f].size < 2 for f in term):
            continue
        test, note = rf.f_test(term_contrast(rf.design, term))
        rows.append({"response": rf.response, "term": ":".join(term), **test, "note": note})
    return pd.DataFrame(rows, columns=ANOVA_COLUMNS)


def variance_table(rf: ResponseFit) -> pd.DataFrame:
    """REML variance components: ``response, sample_var, residual_var``."""
    return pd.DataFrame(
        [[rf.response, rf.fit.sample_var, rf.fit.residual_var]], columns=VARIANCE_COLUMNS
    )


def emmeans_table(rf: ResponseFit, level: float = 0.95) -> pd.DataFrame:
    """Estimated cell (network) means with SE, Satterthwaite df and ``level`` CI, model scale;
    one row per grid cell, NaN for a missing network's."""
    c = rf.contrasts(np.eye(rf.design.n_cells))
    half = special.stdtrit(c["df"], 0.5 + level / 2) * c["se"]
    frame = rf.design.cell_frame()
    frame.insert(0, "response", rf.response)
    frame["estimate"] = c["estimate"]
    frame["se"] = c["se"]
    frame["df"] = c["df"]
    frame["ci_low"] = c["estimate"] - half
    frame["ci_high"] = c["estimate"] + half
    return frame[EMMEANS_COLUMNS]


def _level_weights(design: Design, by: tuple[str, ...], compared: tuple[str, ...]):
    """Cell weights giving the EMM of every (by, compared) level, in emmeans' order.

    Returns ``(weights, by_codes, cmp_codes)``: ``weights`` is (G k, I) for G by-groups of k
    compared levels each, group after group (the by factors in itertools.product order), levels
    within a group with the first compared factor varying fastest (emmeans' grid order); each
    row averages the cells of its level with equal weights. ``by_codes`` (G, len(by)) and
    ``cmp_codes`` (k, len(compared)) are the level indices of the groups and the levels.
    """
    shape = design.shape
    codes = np.stack(np.unravel_index(np.arange(design.n_cells), shape), axis=1)
    idx = [FACTORS.index(f) for f in by]
    jdx = [FACTORS.index(f) for f in compared]
    by_shape = tuple(shape[i] for i in idx)
    cmp_shape = tuple(shape[j] for j in reversed(jdx))  # first compared factor fastest
    n_groups = int(np.prod(by_shape)) if by else 1
    k = int(np.prod(cmp_shape))
    group = np.ravel_multi_index([codes[:, i] for i in idx], by_shape) if by else 0
    level = np.ravel_multi_index([codes[:, j] for j in reversed(jdx)], cmp_shape)
    row = np.asarray(group) * k + level
    weights = np.zeros((n_groups * k, design.n_cells))
    weights[row, np.arange(design.n_cells)] = 1.0
    weights /= weights.sum(axis=1, keepdims=True)
    by_codes = (
        np.stack(np.unravel_index(np.arange(n_groups), by_shape), axis=1)
        if by
        else np.zeros((1, 0), dtype=np.int64)
    )
    cmp_codes = np.stack(np.unravel_index(np.arange(k), cmp_shape), axis=1)[:, ::-1]
    return weights, by_codes, cmp_codes


def tukey_table(rf: ResponseFit, families: dict | None = None) -> pd.DataFrame:
    """Tukey HSD pairwise comparisons for each family (default :data:`TUKEY_FAMILIES`).

    Within each by-group every pair (a, b) of levels, a before b in emmeans' level order, gets
    estimate = EMM(a) - EMM(b) with its SE and Satterthwaite df, t = estimate / SE and
    p_adj = P(Q > sqrt(2) |t|) for the studentized range of k = number of levels in the group
    and the contrast's df. Columns: :data:`TUKEY_COLUMNS` (NaN where one does not apply, and
    in estimate to p_adj where a compared level averages over a missing network).
    """
    families = TUKEY_FAMILIES if families is None else families
    design = rf.design
    frames = []
    for name, (by, compared) in families.items():
        if any(design.levels[f].size < 2 for f in compared):
            continue
        weights, by_codes, cmp_codes = _level_weights(design, by, compared)
        k = cmp_codes.shape[0]
        n_groups = by_codes.shape[0]
        ia, ib = np.triu_indices(k, 1)  # itertools.combinations order
        group = np.repeat(np.arange(n_groups), ia.size)
        a_row = group * k + np.tile(ia, n_groups)
        b_row = group * k + np.tile(ib, n_groups)
        c = rf.contrasts(weights[a_row] - weights[b_row])
        frame = {"response": rf.response, "family": name}
        for f in ("w_per", "lr"):
            if f in by:
                values = design.levels[f][by_codes[:, by.index(f)]]
                frame[f"by_{f}"] = values[group]
            else:
                frame[f"by_{f}"] = np.nan
        for side, rows in (("a", ia), ("b", ib)):
            for f in FACTORS:
                if f in compared:
                    values = design.levels[f][cmp_codes[:, compared.index(f)]]
                    frame[f"{side}_{f}"] = np.tile(values[rows], n_groups)
                else:
                    frame[f"{side}_{f}"] = np.nan
        frame.update(estimate=c["estimate"], se=c["se"], df=c["df"], t_ratio=c["t"])
        frame["p_adj"] = studentized_range_sf(np.sqrt(2) * np.abs(c["t"]), k, c["df"])
        frames.append(pd.DataFrame(frame, columns=TUKEY_COLUMNS))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TUKEY_COLUMNS)
