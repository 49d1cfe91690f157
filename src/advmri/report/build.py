"""The study report: Figures 3-7, Table 1 and the verdict on the paper's findings.

``build_report`` is the one call behind the workflow's ``report`` rule (figures and the report files,
from the statistics folder); ``write_statistics`` (in ``advmri.report.statistics``) the one
behind its ``stats`` rule. ``make_figures`` and ``evaluate_findings`` (in ``findings``) are usable
on their own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.errors import DataError
from advmri.grid import Cell, format_number
from advmri.logs import logger
from advmri.report.document import Block, render_html, render_markdown
from advmri.report.examples import example_images
from advmri.report.figures import (
    plot_distributions,
    plot_examples,
    plot_interaction_lr,
    plot_interaction_wper,
)
from advmri.report.findings import Finding, evaluate_findings
from advmri.report.health import (
    excluded_networks,
    flag_label,
    plot_training_curves,
    read_train_log,
    status_of,
)
from advmri.report.sections import (
    report_blocks,
    supplementary_blocks,
)
from advmri.report.statistics import (
    TRAINING_HEALTH_FILE,
    StatsTables,
    read_stats,
    read_training_health,
    write_statistics,
)
from advmri.report.tables import (
    EVAL_COLUMNS,
    best_by_ge,
    has_winners,
    labels_phrase,
    load_evaluations,
    read_table,
    select_level,
    study_responses,
    table1_rows,
    winners,
)

__all__ = ["build_report", "figure_winners", "make_figures", "make_supplementary_figures"]

#: The report's title, at the top of both files.
REPORT_TITLE = "advmri: adversarial training in low-resolution MRI enhancement — study report"


def figure_winners(stats: StatsTables, w_per: float) -> tuple[Cell, Cell]:
    """The networks Figures 4, 6 and 7 mark: Table 1's level I pair at ``w_per``.

    Falls back to the best by estimated ln(GE) when Table 1 has no row with both winners for
    ``w_per``.
    """
    rows = table1_rows(stats.table1, "I")
    rows = rows[select_level(rows["w_per"], w_per)]
    rows = rows[[has_winners(row) for _, row in rows.iterrows()]]
    if rows.empty:
        return best_by_ge(stats.emmeans, w_per)
    return winners(rows.iloc[0])


def make_figures(
    evals: pd.DataFrame,
    stats: StatsTables,
    examples: Mapping[str, str | Path],
    dataset: Mapping[str, str | Path],
    w_per: float,
    lr: float,
    out_dir: str | Path,
    references: Mapping[str, pd.DataFrame] | None = None,
    statuses: Mapping[str, str] | None = None,
) -> dict[str, tuple[Path, str]]:
    """Write Figures 3-7 (PNG + CSV each) into ``out_dir``.

    Parameters
    ----------
    evals : evaluation rows of all networks (``load_evaluations``).
    stats : the statistics tables (``read_stats``).
    examples : cell name -> examples ``.npz`` (only the two winners' files are read).
    dataset : ``hq``, ``lq``, ``samples`` paths (see ``example_images``).
    w_per, lr : the W_per of Figures 3, 4, 6, 7 and the LR of Figure 5 (``stats.figures``).
    references : label -> reference evaluation rows (``LQ input`` scores the input column).
    statuses : cell name -> training-health status; Figures 4-5 cross out flagged networks and
        Figures 6-7 name them with their status.

    Returns
    -------
    dict
        figure key (``fig3`` ... ``fig7``) -> (PNG path, caption). Fig 7 is left out when fewer
        than two example samples exist (Fig 6 then shows the one there is).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, tuple[Path, str]] = {}
    started = time.perf_counter()
    wp, lr_text = format_number(w_per), format_number(lr)

    plot_distributions(evals, w_per, out / "fig3_distributions.png", out / "fig3_distributions.csv")
    figures["fig3"] = (
        out / "fig3_distributions.png",
        f"Fig 3. Per-image distributions of {labels_phrase(study_responses(evals.columns))} over "
        f"the test images for every W_adv x LR network at W_per = {wp}; box = quartiles, "
        "whiskers = 1.5 IQR, diamond = mean.",
    )
    vgg, gan = figure_winners(stats, w_per)
    plot_interaction_lr(
        stats.emmeans,
        w_per,
        vgg,
        gan,
        out / "fig4_interaction_lr.png",
        out / "fig4_interaction_lr.csv",
        statuses=statuses,
    )
    figures["fig4"] = (
        out / "fig4_interaction_lr.png",
        f"Fig 4. W_adv x LR interaction at W_per = {wp}: estimated marginal means of the mixed "
        f"model with 95% confidence intervals, one line per LR; red ring = best VGG-Enhanced "
        f"({flag_label(vgg.name, statuses or {})}), green ring = best VGG+GAN-Enhanced "
        f"({flag_label(gan.name, statuses or {})}), ranked by ln(GE); black cross = a network "
        "flagged by the training-health section.",
    )
    plot_interaction_wper(
        stats.emmeans,
        lr,
        out / "fig5_interaction_wper.png",
        out / "fig5_interaction_wper.csv",
        statuses=statuses,
    )
    figures["fig5"] = (
        out / "fig5_interaction_wper.png",
        f"Fig 5. W_adv x W_per interaction at LR = {lr_text}: estimated marginal means with 95% "
        "confidence intervals, one line per W_per; arrow = each W_per's GE-optimal VGG+GAN-Enhanced "
        "network (the W_adv > 0 of the smallest estimated ln GE at this LR), in every panel; "
        "black cross = a network flagged by the training-health section.",
    )

    figures.update(
        example_figures(evals, vgg, gan, examples, dataset, w_per, out, references, statuses)
    )
    logger.info("figures written to %s in %.1f s", out, time.perf_counter() - started)
    return figures


def example_figures(
    evals: pd.DataFrame,
    vgg: Cell,
    gan: Cell,
    examples: Mapping[str, str | Path],
    dataset: Mapping[str, str | Path],
    w_per: float,
    out: Path,
    references: Mapping[str, pd.DataFrame] | None = None,
    statuses: Mapping[str, str] | None = None,
) -> dict[str, tuple[Path, str]]:
    """Figures 6 and 7: the example samples, split in two halves, through the two winners.

    Each image is scored with its GE and SSIM (the input column from the ``LQ input`` reference).
    Returns figure key (``fig6``, ``fig7``) -> (PNG path, caption), Fig 7 left out when fewer than
    two example samples exist.
    """
    figures: dict[str, tuple[Path, str]] = {}
    samples, images, networks = example_images(vgg, gan, examples, dataset)
    scores = evals[
        select_level(evals["w_per"], w_per) & evals[["w_adv", "lr"]].notna().all(axis=1)
    ].copy()
    scores["network"] = [
        Cell(float(p), float(a), float(r)).name
        for p, a, r in zip(scores["w_per"], scores["w_adv"], scores["lr"], strict=True)
    ]
    scores = scores[scores["network"].isin([vgg.name, gan.name])]
    if references and "LQ input" in references:
        scores = pd.concat(
            [scores, references["LQ input"].assign(network="input")], ignore_index=True
        )
    halves = np.array_split(np.arange(len(samples)), 2)
    for key, part in zip(("fig6", "fig7"), halves, strict=True):
        if len(part) == 0:
            continue
        number = key[-1]
        title = (
            f"Fig {number}. Test samples {', '.join(str(s) for s in samples['sample'].iloc[part])}: "
            f"LQ input, {flag_label(vgg.name, statuses or {})}, "
            f"{flag_label(gan.name, statuses or {})}, ground truth"
        )
        plot_examples(
            samples.iloc[part].reset_index(drop=True),
            {k: v[part] for k, v in images.items()},
            networks,
            scores,
            title,
            out / f"{key}_examples.png",
            out / f"{key}_examples.csv",
        )
        figures[key] = (
            out / f"{key}_examples.png",
            f"{title}. Top of each pair: the whole image with the zoom window (yellow); bottom: "
            "the lesion zoomed (dashed: its bounding box), with the image's GE and SSIM.",
        )
    return figures


def make_supplementary_figures(
    evals: pd.DataFrame,
    stats: StatsTables,
    w_per: float,
    lr: float,
    out_dir: str | Path,
    statuses: Mapping[str, str] | None = None,
) -> list[tuple[Path, str]]:
    """The paper's supplementary figures: Figs 3 and 4 at every other W_per, Fig 5 at every other LR.

    Numbered as the paper numbers them on its grid: first Fig 3 at each other W_per (Supplementary
    Figs 1-5), then Fig 4 at each (6-10), then Fig 5 at each other LR (11). Written into ``out_dir``
    as ``suppNN_fig3_wper{W_per}``, ``suppNN_fig4_wper{W_per}`` and ``suppNN_fig5_lr{LR}``, PNG + CSV
    each (the CSVs as Figures 3-5's).

    Returns
    -------
    list of (PNG path, caption), in number order; empty for a grid of one W_per and one LR.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    other_w_per = [v for v in sorted(set(map(float, evals["w_per"]))) if v != float(w_per)]
    other_lr = [v for v in sorted(set(map(float, stats.emmeans["lr"]))) if v != float(lr)]
    jobs = [("fig3", v) for v in other_w_per] + [("fig4", v) for v in other_w_per]
    jobs += [("fig5", v) for v in other_lr]
    figures = []
    for number, (figure, level) in enumerate(jobs, start=1):
        text = format_number(level)
        name = f"supp{number:02d}_{figure}_{'lr' if figure == 'fig5' else 'wper'}{text}"
        png, csv = out / f"{name}.png", out / f"{name}.csv"
        label = f"Supplementary Fig {number}"
        if figure == "fig3":
            plot_distributions(evals, level, png, csv, label=label)
            caption = f"{label}. Fig 3 at W_per = {text}: per-image distributions per W_adv x LR."
        elif figure == "fig4":
            vgg, gan = figure_winners(stats, level)
            plot_interaction_lr(
                stats.emmeans, level, vgg, gan, png, csv, label=label, statuses=statuses
            )
            caption = (
                f"{label}. Fig 4 at W_per = {text}: W_adv x LR interaction; red ring = best "
                f"VGG-Enhanced ({vgg.name}), green ring = best VGG+GAN-Enhanced ({gan.name})."
            )
        else:
            plot_interaction_wper(stats.emmeans, level, png, csv, label=label, statuses=statuses)
            caption = (
                f"{label}. Fig 5 at LR = {text}: W_adv x W_per interaction; arrow = each "
                "W_per's GE-optimal VGG+GAN-Enhanced network."
            )
        figures.append((png, caption))
    return figures


def uses_random_vgg(config: Mapping, perceptual_weights: str | None = None) -> bool:
    """True when the perceptual loss used a random VGG19 (config or an explicit override)."""
    source = perceptual_weights or config.get("perceptual", {}).get("weights")
    return str(source).lower() == "random"


def build_report(
    eval_csvs: Sequence[str | Path],
    *,
    references: Mapping[str, str | Path],
    examples: Sequence[str | Path],
    dataset: Mapping[str, str | Path],
    config: Mapping,
    html_path: str | Path,
    md_path: str | Path,
    stats_dir: str | Path,
    figures_dir: str | Path,
    compute_statistics: bool = True,
    perceptual_weights: str | None = None,
    train_logs: Mapping[str, str | Path] | None = None,
    pretrain_log: str | Path | None = None,
) -> list[Finding]:
    """Draw Figures 3-7 and the supplementary figures from the statistics, write the report files.

    Parameters
    ----------
    eval_csvs : ``results/eval/{cell}.csv`` of every grid network.
    references : label -> reference CSV, e.g. ``{"LQ input": lq.csv, "pretrained generator":
        pretrain.csv}`` (same columns as the evaluation CSVs, factors empty).
    examples : ``results/examples/{cell}.npz`` files (their stem is the cell name).
    dataset : ``hq``, ``lq`` (.npy) and ``samples`` (samples.csv) paths.
    config : the study settings the report prints: its ``stats`` section names the Table 1 test
        and selection, ``stats.exclude`` and ``stats.divergence_ratio``, and picks the figures'
        W_per / LR; the whole of it is printed as the settings table.
    html_path, md_path : the two report files.
    stats_dir : folder of the statistics tables; written first by :func:`write_statistics`
        (with ``config``'s seed and ``stats`` section) when ``compute_statistics``, else read as
        it is (the workflow's ``stats`` rule wrote it).
    figures_dir : folder of the figures' PNGs and CSVs (Figures 3-7, then ``suppNN_*``).
    perceptual_weights : the perceptual VGG's source when known better than from ``config``
        (e.g. from the networks' metadata); ``random`` raises the report's warning.
    train_logs, pretrain_log : cell name -> ``train_log.csv``, and the pretrained generator's;
        given together, the training curves are drawn (``figures_dir/training_curves.png``).
        The training-health section, and the flags on unhealthy networks wherever they appear,
        come from ``stats_dir/training_health.csv`` when it is there (the statistics stage
        writes it from the same logs).

    Returns
    -------
    list of Finding
        The verdicts printed in the report.
    """
    started = time.perf_counter()
    stats_cfg = config.get("stats", {})
    table1_cfg = stats_cfg.get("table1", {})
    figures_cfg = stats_cfg.get("figures", {})
    test = table1_cfg.get("test", "paired")
    selection = table1_cfg.get("selection", "all")
    stats_dir, figures_dir = Path(stats_dir), Path(figures_dir)

    check_dataset(dataset)
    if compute_statistics:
        write_statistics(
            eval_csvs,
            stats_dir,
            settings=config,
            lq_reference=references.get("LQ input"),
            train_logs=train_logs,
            pretrain_log=pretrain_log,
        )
    # the study's responses (metrics.responses); without the key, those the CSVs have
    evals = load_evaluations(eval_csvs, config.get("metrics", {}).get("responses"))
    logger.info("read %d evaluation rows from %d files", len(evals), len(eval_csvs))
    reference_tables = {label: read_table(path, EVAL_COLUMNS) for label, path in references.items()}
    divergence_ratio = float(stats_cfg.get("divergence_ratio", 2.0))
    stats = read_stats(stats_dir)
    health = read_training_health(stats_dir)
    excluded = [] if health is None else excluded_networks(health, stats_cfg.get("exclude", "none"))
    if train_logs is not None and pretrain_log is not None:
        draw_training_curves(train_logs, pretrain_log, health, stats_dir, figures_dir)

    w_per = float(figures_cfg.get("w_per", 0.5))
    lr = float(figures_cfg.get("lr", 0.001))
    example_files = {Path(p).stem: p for p in examples}
    statuses = status_of(health)
    figures = make_figures(
        evals, stats, example_files, dataset, w_per, lr, figures_dir, reference_tables, statuses
    )
    grid_w_adv = sorted(set(evals["w_adv"]))
    findings = evaluate_findings(stats.table1, stats.emmeans, stats.anova, grid_w_adv)
    vgg, gan = figure_winners(stats, w_per)

    random_vgg = uses_random_vgg(config, perceptual_weights)
    n_networks = len(evals[["w_per", "w_adv", "lr"]].drop_duplicates())
    blocks = report_blocks(
        config=config,
        stats=stats,
        evals=evals,
        n_networks=n_networks,
        references=reference_tables,
        figures=figures,
        findings=findings,
        vgg=vgg,
        gan=gan,
        random_vgg=random_vgg,
        test=test,
        selection=selection,
        stats_dir=stats_dir,
        health=health,
        excluded=excluded,
        curves=figures_dir / "training_curves.png",
        divergence_ratio=divergence_ratio,
    )
    supplementary = make_supplementary_figures(evals, stats, w_per, lr, figures_dir, statuses)
    blocks += supplementary_blocks(supplementary)
    html_path, md_path = write_report_files(blocks, html_path, md_path)
    logger.info(
        "report written to %s and %s in %.1f s", html_path, md_path, time.perf_counter() - started
    )
    return findings


def draw_training_curves(
    train_logs: Mapping[str, str | Path],
    pretrain_log: str | Path,
    health: pd.DataFrame | None,
    stats_dir: Path,
    figures_dir: Path,
) -> None:
    """``figures_dir/training_curves.png`` (and ``.csv``) from the train logs, titles coloured by
    ``health``; DataError when the statistics stage wrote no ``training_health.csv``."""
    if health is None:
        raise DataError(
            f"report: {stats_dir / TRAINING_HEALTH_FILE} not found; the statistics stage "
            "writes it when given the train logs (write_statistics)"
        )
    figures_dir.mkdir(parents=True, exist_ok=True)
    plot_training_curves(
        {name: read_train_log(path) for name, path in train_logs.items()},
        read_train_log(pretrain_log),
        health,
        figures_dir / "training_curves.png",
        figures_dir / "training_curves.csv",
    )


def write_report_files(
    blocks: Sequence[Block], html_path: str | Path, md_path: str | Path
) -> tuple[Path, Path]:
    """Render the report's blocks into its HTML and Markdown files (folders created)."""
    html_path, md_path = Path(html_path), Path(md_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(REPORT_TITLE, blocks), encoding="utf-8")
    md_path.write_text(render_markdown(REPORT_TITLE, blocks, md_path.parent), encoding="utf-8")
    return html_path, md_path


def check_dataset(dataset: Mapping[str, str | Path]) -> None:
    """DataError naming the first missing dataset key (``hq``, ``lq``, ``samples``)."""
    for key in ("hq", "lq", "samples"):
        if key not in dataset:
            raise DataError(f"report: dataset path {key!r} not given")
