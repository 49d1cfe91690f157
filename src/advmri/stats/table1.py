"""Table 1 (study §7): best VGG-Enhanced versus best VGG+GAN-Enhanced network per group.

Level I: per W_per, the best W_adv = 0 network (either LR) against the best W_adv > 0 network
(either LR). Level II: per W_per x LR, the W_adv = 0 network against the best W_adv > 0 one.
"Best" = smallest estimated ln(GE) cell mean. Each pair is compared on every response with an
F test: ``paired`` = the mixed model ``y ~ net + (1 | sample)`` on the two networks' rows (with
complete pairs and a positive image variance this is the paired F on (1, n-1)); ``pooled`` =
the one-df contrast of the two cell means in the full model (Satterthwaite df).

Winners picked and tested on the same images make the F optimistic; ``selection="split_half"``
picks them on a seeded random half of the test images and tests on the other half.

On an incomplete grid (networks left out, ``allow_missing_networks``) winners are chosen among
the present networks only; a group without a present W_adv = 0 (or W_adv > 0) network has NaN
for that side's LR and W_adv and for every F and p, and its ``note`` says why.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from advmri.errors import AdvmriError, ConfigError
from advmri.metrics.registry import get_response
from advmri.stats.analysis import ResponseFit, fit_response
from advmri.stats.design import (
    RANKING_RESPONSE,
    Layout,
    response_values,
    study_responses,
    table_layout,
)
from advmri.stats.mixed import fit_mixed

#: Factor columns in the order of every CSV of the study: w_per, w_adv, lr.
TABLE1_KEYS = ["level", "w_per", "lr", "vgg_w_adv", "vgg_lr", "gan_w_adv", "gan_lr"]


def table1_columns(responses: Sequence[str]) -> list[str]:
    """Columns of Table 1 for the study's ``responses`` (names, in study order):
    :data:`TABLE1_KEYS`, ``<response>_F`` and ``<response>_p`` for each, then ``note`` (empty,
    or why a row has no test: its VGG or VGG+GAN network is missing)."""
    return TABLE1_KEYS + [f"{r}_{s}" for r in responses for s in ("F", "p")] + ["note"]


TESTS = ("paired", "pooled")
SELECTIONS = ("all", "split_half")


def select_winners(ge_fit: ResponseFit) -> pd.DataFrame:
    """The pairs of Table 1 from the ln(GE) cell means of ``ge_fit``.

    Returns
    -------
    DataFrame with columns ``level, w_per, lr, vgg_w_adv, vgg_lr, gan_w_adv, gan_lr, note``:
    level "I" rows (lr NaN) for every W_per, then level "II" rows for every W_per x LR. Empty
    when the grid lacks W_adv = 0 or W_adv > 0 networks. Missing networks (NaN cell means)
    cannot win; a side with no present network is NaN and ``note`` says so.
    """
    cells = ge_fit.design.cell_frame()
    cells["estimate"] = ge_fit.cell_means
    rows = []

    def best(group: pd.DataFrame) -> tuple[float, float]:
        """(w_adv, lr) of the group's smallest estimate; NaN, NaN for a group with none."""
        group = group[np.isfinite(group["estimate"])]
        if group.empty:
            return np.nan, np.nan
        winner = group.loc[group["estimate"].idxmin()]
        return winner.w_adv, winner.lr

    def note(vgg: tuple, gan: tuple) -> str:
        sides = [
            name
            for name, pick in (("VGG (W_adv = 0)", vgg), ("VGG+GAN (W_adv > 0)", gan))
            if np.isnan(pick[0])
        ]
        return f"no {' and no '.join(sides)} network in the statistics (left out)" if sides else ""

    if not ((cells["w_adv"] == 0).any() and (cells["w_adv"] > 0).any()):
        return pd.DataFrame(columns=[*TABLE1_KEYS, "note"])
    for w_per, group in cells.groupby("w_per", sort=True):
        vgg, gan = best(group[group["w_adv"] == 0]), best(group[group["w_adv"] > 0])
        rows.append(["I", w_per, np.nan, *vgg, *gan, note(vgg, gan)])
    for (w_per, lr), group in cells.groupby(["w_per", "lr"], sort=True):
        vgg, gan = best(group[group["w_adv"] == 0]), best(group[group["w_adv"] > 0])
        rows.append(["II", w_per, lr, *vgg, *gan, note(vgg, gan)])
    return pd.DataFrame(rows, columns=[*TABLE1_KEYS, "note"])


def _cell_index(layout: Layout, net: tuple) -> int:
    """Index of network (lr, w_per, w_adv) in the layout's cells; -1 when absent."""
    hit = np.flatnonzero(np.all(layout.cells == np.asarray(net, dtype=float), axis=1))
    return int(hit[0]) if hit.size else -1


def paired_test(
    table: pd.DataFrame, response: str, vgg: tuple, gan: tuple, samples=None
) -> tuple[float, float]:
    """F and p of ``y ~ net + (1 | sample)`` on two networks' rows (net = (lr, w_per, w_adv)).

    Rows with a NaN (or, under the log, non-positive) response are dropped; NaN, NaN when the
    pair leaves too few rows to fit.
    """
    layout = table_layout(table)
    keep = None
    if samples is not None:
        keep = np.isin(layout.samples, np.asarray(list(samples)))[layout.sample]
    y = response_values(table, response)
    return _paired_test(y, layout, _cell_index(layout, vgg), _cell_index(layout, gan), keep)


def _paired_test(
    y: np.ndarray, layout: Layout, vgg: int, gan: int, rows: np.ndarray | None
) -> tuple[float, float]:
    """:func:`paired_test` on model-scale ``y`` with cell indices and an optional row mask."""
    is_v, is_g = layout.cell == vgg, layout.cell == gan
    keep = (is_v | is_g) & np.isfinite(y)
    if rows is not None:
        keep &= rows
    if is_g[keep].sum() == 0 or is_v[keep].sum() == 0:
        return np.nan, np.nan
    _, sample = np.unique(layout.sample[keep], return_inverse=True)
    try:
        fit = fit_mixed(y[keep], is_g[keep].astype(np.int64), sample.astype(np.int64).ravel())
    except AdvmriError:
        return np.nan, np.nan
    test = fit.f_test(np.array([[-1.0, 1.0]]))
    return test["F"], test["p"]


def pooled_test(rf: ResponseFit, vgg: tuple, gan: tuple) -> tuple[float, float]:
    """F = t^2 and p of the contrast gan - vgg between two cell means of the full model; NaN
    when either network is not in the grid or missing from the fit."""
    if np.isnan(np.asarray(vgg, dtype=float)).any() or np.isnan(np.asarray(gan, dtype=float)).any():
        return np.nan, np.nan
    cells = rf.design.cells
    L = np.zeros(rf.design.n_cells)
    L[np.flatnonzero(np.all(cells == np.array(gan), axis=1))] = 1.0
    L[np.flatnonzero(np.all(cells == np.array(vgg), axis=1))] = -1.0
    c = rf.contrasts(L[None, :])
    F = float(c["t"][0] ** 2)
    return F, float(special.fdtrc(1, c["df"][0], F))


def split_samples(table: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random halves of the test images: (selection half, test half), each sorted."""
    samples = np.unique(table["sample"].to_numpy())
    order = np.random.default_rng(seed).permutation(samples.size)
    half = samples.size // 2
    return np.sort(samples[order[:half]]), np.sort(samples[order[half:]])


def table1(
    table: pd.DataFrame,
    fits: dict[str, ResponseFit] | None = None,
    test: str = "paired",
    selection: str = "all",
    seed: int = 2024,
    layout: Layout | None = None,
    allow_missing_networks: bool = False,
) -> pd.DataFrame:
    """Table 1: winners per group and the F test of each response between them.

    Parameters
    ----------
    table : long evaluation table.
    fits : full-model fits per response on all images (reused when selection is "all").
    test : "paired" or "pooled" (see the module docstring).
    selection : "all" (pick and test on all images) or "split_half".
    seed : seed of the split-half permutation.
    layout : ``advmri.stats.design.table_layout(table)``, when already computed.
    allow_missing_networks : accept an incomplete grid (see the module docstring).

    Returns
    -------
    DataFrame with :func:`table1_columns` of the table's responses; F and p NaN where a test
    cannot be computed.
    """
    if test not in TESTS:
        raise ConfigError(f"stats.table1.test = {test!r}; use one of {', '.join(TESTS)}")
    if selection not in SELECTIONS:
        raise ConfigError(
            f"stats.table1.selection = {selection!r}; use one of {', '.join(SELECTIONS)}"
        )
    fits = dict(fits or {})
    layout = table_layout(table) if layout is None else layout
    if selection == "all":
        pick_samples = test_samples = test_rows = None
        pick_fit = fits.get(RANKING_RESPONSE) or fit_response(
            table, RANKING_RESPONSE, layout=layout, allow_missing_networks=allow_missing_networks
        )
        test_fits = fits
    else:
        pick_samples, test_samples = split_samples(table, seed)
        pick_fit = fit_response(
            table,
            RANKING_RESPONSE,
            samples=pick_samples,
            layout=layout,
            allow_missing_networks=allow_missing_networks,
        )
        test_fits = {}
        test_rows = np.isin(layout.samples, test_samples)[layout.sample]
    winners = select_winners(pick_fit)
    out = winners.copy()
    responses = list(study_responses(table))
    for response in responses:
        if test == "pooled" and len(winners):
            rf = test_fits.get(response) or fit_response(
                table,
                response,
                samples=test_samples,
                layout=layout,
                allow_missing_networks=allow_missing_networks,
            )
        elif test == "paired":
            y = response_values(table, response)
        results = []
        for row in winners.itertuples(index=False):
            vgg = (row.vgg_lr, row.w_per, row.vgg_w_adv)
            gan = (row.gan_lr, row.w_per, row.gan_w_adv)
            if test == "paired":
                i_vgg, i_gan = _cell_index(layout, vgg), _cell_index(layout, gan)
                results.append(_paired_test(y, layout, i_vgg, i_gan, test_rows))
            else:
                results.append(pooled_test(rf, vgg, gan))
        values = np.array(results, dtype=float).reshape(-1, 2)
        out[f"{response}_F"] = values[:, 0]
        out[f"{response}_p"] = values[:, 1]
    return out.reindex(columns=table1_columns(responses))


def _fmt(value: float, kind: str) -> str:
    if not np.isfinite(value):
        return "n/a"
    if kind == "p":
        return "< 0.001" if value < 0.001 else f"{value:.3f}"
    return f"{value:.2f}"


def _network(lr: float, w_adv: float) -> str:
    if not (np.isfinite(lr) and np.isfinite(w_adv)):
        return "none in the statistics (left out)"
    return f"{lr:g}, {w_adv:g}"


def table1_markdown(t1: pd.DataFrame, test: str, selection: str, seed: int) -> str:
    """Table 1 as Markdown, headed by which test and which winner selection were used."""
    how_test = {
        "paired": "mixed model `y ~ net + (1 | sample)` on the two networks' rows "
        "(the paired F on (1, n-1) when both networks have every image)",
        "pooled": "the contrast between the two networks' means in the full model "
        "`y ~ lr * w_per * w_adv + (1 | sample)` (Satterthwaite df)",
    }[test]
    how_sel = {
        "all": "winners were picked and tested on the same (all) test images, so the F ratios "
        "are optimistic",
        "split_half": f"winners were picked on a random half of the test images (seed {seed}) "
        "and tested on the other half",
    }[selection]
    lines = [
        "# Table 1: best VGG-Enhanced vs best VGG+GAN-Enhanced network",
        "",
        f"- Test (`table1.test: {test}`): {how_test}.",
        f"- Selection (`table1.selection: {selection}`): {how_sel}.",
        "- Winners: smallest estimated ln(GE) cell mean. Level I: per W_per (either LR); "
        "level II: per W_per x LR.",
        "",
    ]
    header = ["Level", "W_per", "LR", "VGG (LR, W_adv)", "VGG+GAN (LR, W_adv)"]
    responses = [c[: -len("_F")] for c in t1.columns if c.endswith("_F")]
    header += [f"{get_response(r).label} F (p)" for r in responses]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in t1.itertuples(index=False):
        cells = [
            row.level,
            f"{row.w_per:g}",
            "either" if not np.isfinite(row.lr) else f"{row.lr:g}",
            _network(row.vgg_lr, row.vgg_w_adv),
            _network(row.gan_lr, row.gan_w_adv),
        ]
        for r in responses:
            F, p = getattr(row, f"{r}_F"), getattr(row, f"{r}_p")
            cells.append(f"{_fmt(F, 'F')} ({_fmt(p, 'p')})")
        lines.append("| " + " | ".join(cells) + " |")
    notes = (
        t1["note"].astype(object).fillna("").astype(str)
        if "note" in t1.columns
        else pd.Series([], dtype=str)
    )
    if (notes != "").any():
        lines.append("")
        lines.append(
            "Rows without a test: their VGG or VGG+GAN network was left out of the statistics "
            "(e.g. `stats.exclude: diverged`); winners are chosen among the networks present."
        )
    if t1.empty:
        lines.append("")
        lines.append("No rows: the grid needs both W_adv = 0 and W_adv > 0 networks.")
    return "\n".join(lines) + "\n"
