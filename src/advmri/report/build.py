"""The study report: Figures 3-7, Table 1 and the verdict on the paper's findings.

``build_report`` is the one call behind the workflow's ``report`` rule (figures and the report files,
from the statistics folder); ``write_statistics`` (in ``statistics``, importable from here) the one
behind its ``stats`` rule. ``make_figures`` and ``evaluate_findings`` (in ``findings``) are usable
on their own.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

import advmri
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
from advmri.report.findings import Finding, evaluate_findings, table1_differences
from advmri.report.health import (
    excluded_networks,
    flag_label,
    plot_training_curves,
    read_train_log,
    status_of,
)
from advmri.report.missing import missing_value_blocks
from advmri.report.statistics import (
    TRAINING_HEALTH_FILE,
    StatsTables,
    read_stats,
    read_training_health,
    write_statistics,
    write_training_health,
)
from advmri.report.tables import (
    ANOVA_COLUMNS,
    EVAL_COLUMNS,
    PROFILES_FITTED,
    best_by_ge,
    better_phrase,
    has_winners,
    labels_phrase,
    load_evaluations,
    raw_better_phrase,
    read_table,
    response_label,
    scale_phrase,
    select_level,
    study_responses,
    table1_columns,
    table1_responses,
    table1_rows,
    winners,
)

__all__ = [
    "PAPER_GE_F",
    "RANDOM_VGG_FLAG",
    "TRAINING_HEALTH_FILE",
    "StatsTables",
    "build_report",
    "figure_winners",
    "flatten",
    "make_figures",
    "make_supplementary_figures",
    "read_stats",
    "read_training_health",
    "write_statistics",
    "write_training_health",
]

#: The words that flag a run whose perceptual loss used a random VGG19 (as advmri.models says it).
RANDOM_VGG_FLAG = "random VGG19, not ImageNet"

#: Paper Table 1, GE F-ratios per W_per, as study §9 lists them ("in order LR 0.001 then 0.01").
PAPER_GE_F: dict[float, tuple[float, float]] = {
    0.5: (45.01, 15.06),
    0.7: (30.04, 61.65),
    1.0: (26.15, 32.28),
    1.2: (57.85, 81.67),
    1.5: (36.75, 24.31),
    2.0: (51.81, 18.55),
}


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
    logger.info("figures written to %s in %.1f s", out, time.perf_counter() - started)
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


def supplementary_blocks(figures: Sequence[tuple[Path, str]]) -> list[Block]:
    """The report's section of supplementary figures (nothing when there are none)."""
    if not figures:
        return []
    blocks = [
        Block("heading", "Supplementary figures"),
        Block(
            "text",
            "Figures 3 and 4 at every other W_per and Figure 5 at every other LR, as the paper's "
            "Supplementary Figs 1-11 show them for its grid.",
        ),
    ]
    blocks += [Block("figure", caption, path=path) for path, caption in figures]
    return blocks


def flatten(settings: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    """``{"a": {"b": 1}}`` -> ``[("a.b", "1")]``, lists written inline."""
    rows = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += flatten(value, f"{name}.")
        else:
            rows.append((name, str(value)))
    return rows


def uses_random_vgg(config: Mapping, perceptual_weights: str | None = None) -> bool:
    """True when the perceptual loss used a random VGG19 (config or an explicit override)."""
    source = perceptual_weights or config.get("perceptual", {}).get("weights")
    return str(source).lower() == "random"


def reference_summary(
    references: Mapping[str, pd.DataFrame],
    evals: pd.DataFrame,
    vgg: Cell,
    gan: Cell,
    statuses: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Mean of each raw metric over the test images: references, network families, winners.

    ``profiles fitted`` is the mean number of the 8 edge profiles whose sigmoid fitted per image
    (the Sharpness behind the mean); ``statuses`` flags winners whose training is not ``ok``.
    """
    rows = []

    def add(label: str, table: pd.DataFrame, networks: int | None) -> None:
        row = {"rows": label, "networks": networks, "images": table["sample"].nunique()}
        row.update({r: float(table[r].mean()) for r in study_responses(evals.columns)})
        if PROFILES_FITTED in table.columns:
            row["profiles fitted (of 8)"] = float(table[PROFILES_FITTED].mean())
        rows.append(row)

    for label, table in references.items():
        add(label, table, None)
    keys = evals[["w_per", "w_adv", "lr"]]
    n_vgg = len(keys[evals["w_adv"] == 0].drop_duplicates())
    n_gan = len(keys[evals["w_adv"] > 0].drop_duplicates())
    add("all VGG-Enhanced networks (W_adv = 0)", evals[evals["w_adv"] == 0], n_vgg)
    add("all VGG+GAN-Enhanced networks (W_adv > 0)", evals[evals["w_adv"] > 0], n_gan)
    for label, cell in (("best VGG-Enhanced", vgg), ("best VGG+GAN-Enhanced", gan)):
        mask = (
            select_level(evals["w_per"], cell.w_per)
            & select_level(evals["w_adv"], cell.w_adv)
            & select_level(evals["lr"], cell.lr)
        )
        add(f"{label}: {flag_label(cell.name, statuses or {})}", evals[mask], 1)
    return pd.DataFrame(rows)


def findings_table(findings: Sequence[Finding], flagged: str = "") -> pd.DataFrame:
    """The verdicts; ``flagged`` names the flagged networks they rest on (a column when given)."""
    table = pd.DataFrame(
        {
            "finding (study §9)": [f.claim for f in findings],
            "holds on this run": [
                "n/a" if f.holds is None else ("YES" if f.holds else "NO") for f in findings
            ],
            "evidence": [f.evidence for f in findings],
            "p": [np.nan if f.p_value is None else f.p_value for f in findings],
        }
    )
    if flagged:
        table["rests on flagged networks"] = flagged
    return table


def table1_display(table1: pd.DataFrame, statuses: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Table 1 ordered level I then II, each by W_per and LR, as the report prints it.

    With ``statuses`` (training health), a ``flags`` column names each row's winners whose
    training is not ``ok``. Table 1's ``note`` (a row without a test: a winner left out of the
    statistics) is shown when any row has one.
    """
    parts = [table1_rows(table1, level) for level in ("I", "II")]
    table = pd.concat(parts, ignore_index=True)
    display = table[table1_columns(table)].copy()
    if statuses:
        display["flags"] = [
            ", ".join(
                flag_label(cell.name, statuses)
                for cell in (winners(row) if has_winners(row) else ())
                if statuses.get(cell.name, "ok") != "ok"
            )
            for _, row in table.iterrows()
        ]
    if "note" in table.columns:
        notes = table["note"].astype(object).fillna("").astype(str)
        if (notes != "").any():
            display["note"] = notes
    return display


def flagged_winners(table1: pd.DataFrame, statuses: Mapping[str, str]) -> str:
    """The Table 1 winners whose training is not ``ok``, as ``name [status]``, comma-separated."""
    names = sorted(
        {
            cell.name
            for _, row in table1.iterrows()
            if has_winners(row)
            for cell in winners(row)
            if statuses.get(cell.name, "ok") != "ok"
        }
    )
    return ", ".join(flag_label(name, statuses) for name in names)


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
    blocks = _blocks(
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
    title = "advmri: adversarial training in low-resolution MRI enhancement — study report"
    html_path, md_path = Path(html_path), Path(md_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(title, blocks), encoding="utf-8")
    md_path.write_text(render_markdown(title, blocks, md_path.parent), encoding="utf-8")
    logger.info(
        "report written to %s and %s in %.1f s", html_path, md_path, time.perf_counter() - started
    )
    return findings


def _blocks(
    *,
    config: Mapping,
    stats: StatsTables,
    evals: pd.DataFrame,
    n_networks: int,
    references: Mapping[str, pd.DataFrame],
    figures: Mapping[str, tuple[Path, str]],
    findings: Sequence[Finding],
    vgg: Cell,
    gan: Cell,
    random_vgg: bool,
    test: str,
    selection: str,
    stats_dir: Path,
    health: pd.DataFrame | None = None,
    excluded: Sequence[str] = (),
    curves: Path | None = None,
    divergence_ratio: float = 2.0,
) -> list[Block]:
    """The report's content, in reading order."""
    blocks: list[Block] = []
    statuses = status_of(health)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    blocks.append(
        Block(
            "text",
            f"advmri {advmri.__version__}, generated {now}. {n_networks} networks evaluated on "
            f"{evals['sample'].nunique()} test images ({len(evals)} network x image rows). "
            "Reproduces Javadi et al. 2024, J Imaging Inform Med, doi 10.1007/s10278-024-01205-8.",
        )
    )
    if random_vgg:
        blocks.append(
            Block(
                "warning",
                f"The perceptual loss of this run used a {RANDOM_VGG_FLAG} (perceptual.weights: "
                "random). Its networks and every number below do not reproduce the paper's "
                "VGG-Enhanced / VGG+GAN-Enhanced comparison; use them as a pipeline check only.",
            )
        )

    if health is not None and (health["status"] != "ok").any():
        counts = health["status"].value_counts()
        parts = [f"{counts[s]} {s}" for s in ("diverged", "not learning") if s in counts]
        blocks.append(
            Block(
                "warning",
                f"Training health: {' and '.join(parts)} of {len(health)} networks "
                "(see Training health below); flagged networks are marked [diverged] or "
                "[not learning] wherever they appear. "
                + (
                    f"Left out of the statistics (stats.exclude: diverged): {', '.join(excluded)}."
                    if excluded
                    else "All networks are in the statistics (stats.exclude: none)."
                ),
            )
        )

    blocks.append(Block("heading", "Findings of the paper on this run"))
    blocks.append(
        Block(
            "text",
            f"Table 1 test: {test}; winner selection: {selection}"
            + (
                " (winners picked and tested on the same test images, so p-values are optimistic)."
                if selection == "all"
                else " (winners picked on one half of the test images, tested on the other)."
            )
            + " Directions come from the estimated marginal means, p-values from Table 1 (the "
            "last row: the mixed-model ANOVA). Column p: for claims about every group the largest "
            "p among the groups, for claims about most groups the median, for the ECE claim the "
            "smallest p among the groups where ECE rose.",
        )
    )
    blocks.append(
        Block("table", table=findings_table(findings, flagged_winners(stats.table1, statuses)))
    )

    blocks.append(Block("heading", "Table 1: best VGG-Enhanced versus best VGG+GAN-Enhanced"))
    tested = table1_responses(stats.table1)
    blocks.append(
        Block(
            "text",
            "Level I: per W_per, the best W_adv = 0 network (either LR) versus the best W_adv > 0 "
            "network (either LR). Level II: per W_per x LR, the W_adv = 0 network versus the best "
            "W_adv > 0 network. Winners ranked by the estimated ln(GE); F and p compare the two "
            f"networks per response ({scale_phrase(tested)}).",
        )
    )
    blocks.append(Block("table", table=table1_display(stats.table1, statuses)))
    diffs = table1_differences(stats.table1, stats.emmeans)
    diff_columns = ["level", "w_per", "lr", *(f"{r}_diff" for r in tested)]
    blocks.append(
        Block(
            "table",
            f"Estimated differences VGG+GAN minus VGG per Table 1 group (model scale: "
            f"{scale_phrase(tested)}; {better_phrase(tested)}).",
            table=diffs[diff_columns],
        )
    )
    paper = pd.DataFrame(
        [(w, f[0], f[1]) for w, f in PAPER_GE_F.items()],
        columns=["w_per", "paper GE F (LR 0.001)", "paper GE F (LR 0.01)"],
    )
    blocks.append(
        Block(
            "table",
            "For comparison, the paper's Table 1 GE F-ratios (all p < 0.001), as study §9 lists "
            "them per W_per.",
            table=paper,
        )
    )

    blocks.append(Block("heading", "Reference rows"))
    blocks.append(
        Block(
            "table",
            "Mean of each metric over the test images (raw scale; "
            f"{raw_better_phrase(study_responses(evals.columns))}).",
            table=reference_summary(references, evals, vgg, gan, statuses),
        )
    )
    if "HQ truth" in references:
        blocks.append(
            Block(
                "text",
                "HQ truth: the ground truth scored against itself, so GE, ECE and MIE are 0 and "
                "SSIM is 1 by definition; its Sharpness and fitted profiles are the truth's own "
                "lesion edges. A network above it is sharper than the truth, not only than its "
                "input.",
            )
        )

    if health is not None:
        blocks.append(Block("heading", "Training health"))
        blocks.append(
            Block(
                "text",
                "Each network's status from its train_log.csv and its lesion metrics: diverged = a "
                "non-finite logged value, or a final validation L1 more than "
                f"{divergence_ratio:g}x its own best or the pretrained generator's "
                "(stats.divergence_ratio); not learning = worse than the LQ input on mean MIE or "
                "SSIM inside the lesions; ok = neither. Table: stats/training_health.csv.",
            )
        )
        blocks.append(Block("table", table=health_display(health)))
        if curves is not None and curves.is_file():
            blocks.append(
                Block(
                    "figure",
                    "Per-epoch training curves of every network in grid order (rows W_per x LR, "
                    "columns W_adv; the pretrained generator first): generator terms on a log "
                    "scale (top; dashed: the pretrained generator's final validation L1) and the "
                    "discriminator's mean logits on real and enhanced images (bottom). Titles of "
                    "diverged networks are red, of not-learning ones orange. Data: "
                    "figures/training_curves.csv.",
                    path=curves,
                )
            )

    blocks.append(Block("heading", "Figures"))
    for key in ("fig3", "fig4", "fig5", "fig6", "fig7"):
        if key in figures:
            path, caption = figures[key]
            blocks.append(Block("figure", caption, path=path))

    blocks.append(Block("heading", "Mixed-model ANOVA"))
    blocks.append(
        Block(
            "text",
            "Per response, y ~ LR * W_per * W_adv + (1 | test image), REML; type-III F tests with "
            "Satterthwaite denominator df. Responses: "
            + ", ".join(response_label(r) for r in study_responses(stats.anova["response"]))
            + ".",
        )
    )
    blocks.append(Block("table", table=stats.anova[list(ANOVA_COLUMNS)]))
    blocks += missing_value_blocks(stats_dir)
    if stats.variance is not None:
        blocks.append(Block("table", "Variance components (model scale).", table=stats.variance))
    if stats.tukey is not None:
        tukey = stats.tukey
        main = tukey[
            (tukey["family"] == "w_adv")
            & (tukey["response"] == "ge")
            & ((tukey["a_w_adv"] == 0) | (tukey["b_w_adv"] == 0))
        ]
        if not main.empty:
            columns = ["a_w_adv", "b_w_adv", "estimate", "se", "df", "t_ratio", "p_adj"]
            blocks.append(
                Block(
                    "table",
                    "Tukey HSD, main effect of W_adv on ln(GE) (averaged over W_per and LR): each "
                    "W_adv level against W_adv = 0 (estimate = a - b). All families: "
                    "stats/tukey.csv.",
                    table=main[columns],
                )
            )

    blocks.append(Block("heading", "Model diagnostics"))
    if stats.diagnostics is not None:
        blocks.append(
            Block(
                "table",
                "Residual normality and homoscedasticity per response, raw and log scale.",
                table=stats.diagnostics,
            )
        )
    for png in sorted(stats_dir.glob("*.png")):
        blocks.append(
            Block(
                "figure",
                f"Model diagnostics written by the statistics stage ({png.name}).",
                path=png,
            )
        )
    if stats.diagnostics is None and not list(stats_dir.glob("*.png")):
        blocks.append(Block("text", "No diagnostics were written by the statistics stage."))

    blocks.append(Block("heading", "Settings"))
    settings = pd.DataFrame(flatten(config), columns=["key", "value"])
    blocks.append(
        Block(
            "table",
            "The study settings of this run (the workflow leaves out `resources` and the "
            "speed-only `compute` switches, which change no number).",
            table=settings,
        )
    )
    return blocks


def health_display(health: pd.DataFrame) -> pd.DataFrame:
    """The training-health table as the report prints it (flagged networks first)."""
    columns = [
        "network",
        "status",
        "reason",
        "epochs",
        "final_val_l1",
        "best_val_l1",
        "mie",
        "ssim",
    ]
    order = health["status"].map({"diverged": 0, "not learning": 1, "ok": 2})
    table = health.assign(_order=order).sort_values(["_order"], kind="stable")[columns]
    return table.reset_index(drop=True)


def check_dataset(dataset: Mapping[str, str | Path]) -> None:
    """DataError naming the first missing dataset key (``hq``, ``lq``, ``samples``)."""
    for key in ("hq", "lq", "samples"):
        if key not in dataset:
            raise DataError(f"report: dataset path {key!r} not given")
