"""The study's statistics from evaluation CSVs to the files the report reads."""

from __future__ import annotations

import time
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
    RESPONSES,
    Layout,
    missing_values,
    read_eval_tables,
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


def fit_all(table: pd.DataFrame, layout: Layout | None = None) -> dict[str, ResponseFit]:
    """Fit the study model to every response (ln for ge, sharpness, ece, mie; ssim as is)."""
    layout = table_layout(table) if layout is None else layout
    fits = {}
    for response in RESPONSES:
        fits[response] = fit_response(table, response, layout=layout)
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
) -> None:
    """Mixed-model ANOVA, EMMs, Tukey HSD, Table 1 and diagnostics from evaluation CSVs.

    Parameters
    ----------
    eval_csvs : one CSV per network (columns sample, w_per, w_adv, lr, ge, sharpness, ece, mie,
        ssim, ...); together they must cover the full lr x w_per x w_adv grid.
    out_dir : folder (created) for anova.csv, variance.csv, emmeans.csv, tukey.csv,
        table1.csv, table1.md, diagnostics.csv, diagnostics.png and missing.csv (the values
        left out of the model, counted per network, response and reason).
    table1_test : "paired" (two networks' rows) or "pooled" (contrast in the full model).
    table1_selection : "all" or "split_half" (pick winners on one half of the images, test on
        the other).
    seed : seed of the split-half permutation.

    Notes
    -----
    All numbers are on the model scale: ln for ge, sharpness, ece, mie; ssim untransformed. The
    ``response`` column holds the metric's name.
    """
    with single_thread_blas():
        _run(eval_csvs, Path(out_dir), table1_test, table1_selection, seed)


def _run(eval_csvs, out: Path, table1_test: str, table1_selection: str, seed: int) -> None:
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    # the residual plot's process imports matplotlib now and draws while the tables are made
    with BackgroundPlot(out / "diagnostics.png") as plot:
        table = read_eval_tables(eval_csvs)
        logger.info("stats: %d rows from %d evaluation tables", len(table), len(list(eval_csvs)))
        layout = table_layout(table)
        missing = missing_values(table, layout)
        missing.to_csv(out / "missing.csv", index=False)
        for (response, reason), count in (
            missing.groupby(["response", "reason"], sort=False)["count"].sum().items()
        ):
            logger.info("stats: %s: %d value(s) left out of the model: %s", response, count, reason)
        fits = fit_all(table, layout)
        by_scale = diagnostic_fits(table, fits, layout)
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
            table, fits, test=table1_test, selection=table1_selection, seed=seed, layout=layout
        )
        t1.to_csv(out / "table1.csv", index=False)
        (out / "table1.md").write_text(table1_markdown(t1, table1_test, table1_selection, seed))
        diagnostics_table(by_scale).to_csv(out / "diagnostics.csv", index=False)
    logger.info("stats: wrote %s in %.1f s", out, time.perf_counter() - start)
