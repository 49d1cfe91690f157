"""The study's statistics from evaluation CSVs to the files the report reads."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from advmri.logs import logger
from advmri.stats.analysis import (
    ResponseFit,
    anova_table,
    emmeans_table,
    fit_response,
    tukey_table,
    variance_table,
)
from advmri.stats.design import (
    Layout,
    missing_values,
    read_eval_tables,
    study_responses,
    table_layout,
)
from advmri.stats.diagnostics import BackgroundPlot, diagnostic_fits, diagnostics_table
from advmri.stats.mixed import single_thread_blas
from advmri.stats.table1 import table1, table1_markdown

#: Files written by :func:`run_study_statistics`, the contract with the report.
OUTPUT_FILES = (
    "anova.csv", "variance.csv", "emmeans.csv", "tukey.csv",
    "table1.csv", "table1.md", "diagnostics.csv", "missing.csv",
)  # fmt: skip


def fit_all(
    table: pd.DataFrame, layout: Layout | None = None, allow_missing_networks: bool = False
) -> dict[str, ResponseFit]:
    """Fit the study model to every response of the table (:func:`study_responses`), each on its
    registered scale (the paper's: ln for ge, sharpness, ece, mie; ssim as is);
    ``allow_missing_networks`` as in :func:`advmri.stats.analysis.fit_response`."""
    layout = table_layout(table) if layout is None else layout
    fits = {}
    for response in study_responses(table):
        fits[response] = fit_response(
            table, response, layout=layout, allow_missing_networks=allow_missing_networks
        )
        fit = fits[response]
        logger.info(
            "stats: %s: %d rows, %s fit, image var %.4g, residual var %.4g",
            response, fit.design.y.size, fit.fit.method, fit.fit.sample_var, fit.fit.residual_var,
        )  # fmt: skip
    return fits


def run_study_statistics(
    eval_csvs: list[str | Path],
    out_dir: str | Path,
    table1_test: str = "paired",
    table1_selection: str = "all",
    seed: int = 2024,
    allow_missing_networks: bool = False,
    responses: Sequence[str] | None = None,
) -> None:
    """Mixed-model ANOVA, EMMs, Tukey HSD, Table 1 and diagnostics from evaluation CSVs.

    Parameters
    ----------
    eval_csvs : one CSV per network (columns sample, w_per, w_adv, lr and the study's responses,
        e.g. ge, sharpness, ece, mie, ssim; the registered responses among the columns are
        analysed, see :mod:`advmri.metrics.registry`); together they must cover the full lr x w_per x w_adv grid, unless
        ``allow_missing_networks``.
    out_dir : folder (created) for anova.csv, variance.csv, emmeans.csv, tukey.csv,
        table1.csv, table1.md, diagnostics.csv, diagnostics.png and missing.csv (the values
        left out of the model, counted per network, response and reason).
    table1_test : "paired" (two networks' rows) or "pooled" (contrast in the full model).
    table1_selection : "all" or "split_half" (pick winners on one half of the images, test on
        the other).
    seed : seed of the split-half permutation.
    allow_missing_networks : analyse a grid with networks absent (e.g. left out as diverged)
        instead of refusing it. The model is fitted on the present networks; a missing
        network's EMM, the Tukey comparisons and level averages that need it are NaN; each
        ANOVA term tests only its part that avoids the missing cells (anova.csv ``note``);
        Table 1's winners are chosen among the present networks, and a group without a
        present W_adv = 0 network gets NaN F and p with a ``note``.
    responses : the study's responses (the config's ``metrics.responses``), each required in
        every CSV; default: the registered responses the CSVs have
        (:func:`advmri.stats.design.read_eval_tables`).

    Notes
    -----
    All numbers are on the model scale, each response's registered one (the paper's: ln for
    ge, sharpness, ece, mie; ssim untransformed). The ``response`` column holds the metric's
    name.
    """
    with single_thread_blas():
        _run(
            eval_csvs,
            Path(out_dir),
            table1_test,
            table1_selection,
            seed,
            allow_missing_networks,
            responses,
        )


def _run(
    eval_csvs,
    out: Path,
    table1_test: str,
    table1_selection: str,
    seed: int,
    allow_missing: bool,
    responses: Sequence[str] | None,
) -> None:
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    # the residual plot's process imports matplotlib now and draws while the tables are made
    with BackgroundPlot(out / "diagnostics.png") as plot:
        table = read_eval_tables(eval_csvs, responses)
        logger.info("stats: %d rows from %d evaluation tables", len(table), len(list(eval_csvs)))
        layout = table_layout(table)
        if allow_missing and layout.n_present < layout.cells.shape[0]:
            logger.warning(
                "stats: %d of the %d grid networks are missing; the statistics use the %d "
                "present ones (tests limited to what they identify, see anova.csv's note)",
                layout.cells.shape[0] - layout.n_present,
                layout.cells.shape[0],
                layout.n_present,
            )
        missing = missing_values(table, layout)
        missing.to_csv(out / "missing.csv", index=False)
        for (response, reason), count in (
            missing.groupby(["response", "reason"], sort=False)["count"].sum().items()
        ):
            logger.info("stats: %s: %d value(s) left out of the model: %s", response, count, reason)
        fits = fit_all(table, layout, allow_missing)
        by_scale = diagnostic_fits(table, fits, layout, allow_missing)
        plot.draw(by_scale)
        pd.concat([anova_table(f) for f in fits.values()], ignore_index=True).to_csv(
            out / "anova.csv", index=False
        )
        pd.concat([variance_table(f) for f in fits.values()], ignore_index=True).to_csv(
            out / "variance.csv", index=False
        )
        pd.concat([emmeans_table(f) for f in fits.values()], ignore_index=True).to_csv(
            out / "emmeans.csv", index=False
        )
        pd.concat([tukey_table(f) for f in fits.values()], ignore_index=True).to_csv(
            out / "tukey.csv", index=False
        )
        t1 = table1(
            table,
            fits,
            test=table1_test,
            selection=table1_selection,
            seed=seed,
            layout=layout,
            allow_missing_networks=allow_missing,
        )
        t1.to_csv(out / "table1.csv", index=False)
        (out / "table1.md").write_text(table1_markdown(t1, table1_test, table1_selection, seed))
        diagnostics_table(by_scale).to_csv(out / "diagnostics.csv", index=False)
    logger.info("stats: wrote %s in %.1f s", out, time.perf_counter() - start)
