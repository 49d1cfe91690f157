"""The report's sections, in reading order, as document blocks, and the tables they print.

``report_blocks`` lays the report out from one function per section (the run, the findings,
Table 1, the reference rows, training health, the figures, the mixed models, the diagnostics,
the settings); ``supplementary_blocks`` adds the supplementary figures after them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

import advmri
from advmri.grid import Cell
from advmri.report.document import Block
from advmri.report.findings import Finding, table1_differences
from advmri.report.health import flag_label, status_of
from advmri.report.missing import missing_value_blocks
from advmri.report.statistics import StatsTables
from advmri.report.tables import (
    ANOVA_COLUMNS,
    PROFILES_FITTED,
    better_phrase,
    has_winners,
    raw_better_phrase,
    response_label,
    scale_phrase,
    select_level,
    study_responses,
    table1_columns,
    table1_responses,
    table1_rows,
    winners,
)

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


def report_blocks(
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
    """The report's content, in reading order: one section function per part of the report."""
    statuses = status_of(health)
    return [
        *run_blocks(evals, n_networks, random_vgg),
        *health_warning_blocks(health, excluded),
        *findings_blocks(findings, stats.table1, statuses, test, selection),
        *table1_blocks(stats, statuses),
        *reference_blocks(references, evals, vgg, gan, statuses),
        *training_health_blocks(health, curves, divergence_ratio),
        *figure_blocks(figures),
        *anova_blocks(stats, stats_dir),
        *diagnostics_blocks(stats, stats_dir),
        *settings_blocks(config),
    ]


def run_blocks(evals: pd.DataFrame, n_networks: int, random_vgg: bool) -> list[Block]:
    """The run's line (version, time, networks, images) and the random-VGG warning when it holds."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    blocks = [
        Block(
            "text",
            f"advmri {advmri.__version__}, generated {now}. {n_networks} networks evaluated on "
            f"{evals['sample'].nunique()} test images ({len(evals)} network x image rows). "
            "Reproduces Javadi et al. 2024, J Imaging Inform Med, doi 10.1007/s10278-024-01205-8.",
        )
    ]
    if random_vgg:
        blocks.append(
            Block(
                "warning",
                f"The perceptual loss of this run used a {RANDOM_VGG_FLAG} (perceptual.weights: "
                "random). Its networks and every number below do not reproduce the paper's "
                "VGG-Enhanced / VGG+GAN-Enhanced comparison; use them as a pipeline check only.",
            )
        )
    return blocks


def health_warning_blocks(health: pd.DataFrame | None, excluded: Sequence[str]) -> list[Block]:
    """The warning that names how many networks training health flagged (nothing when none)."""
    if health is None or not (health["status"] != "ok").any():
        return []
    counts = health["status"].value_counts()
    parts = [f"{counts[s]} {s}" for s in ("diverged", "not learning") if s in counts]
    return [
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
    ]


def findings_blocks(
    findings: Sequence[Finding],
    table1: pd.DataFrame,
    statuses: Mapping[str, str],
    test: str,
    selection: str,
) -> list[Block]:
    """The section of the paper's findings: how Table 1 was tested, then the verdicts."""
    return [
        Block("heading", "Findings of the paper on this run"),
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
        ),
        Block("table", table=findings_table(findings, flagged_winners(table1, statuses))),
    ]


def table1_blocks(stats: StatsTables, statuses: Mapping[str, str]) -> list[Block]:
    """The Table 1 section: the tests, the estimated differences, the paper's GE F-ratios."""
    tested = table1_responses(stats.table1)
    diffs = table1_differences(stats.table1, stats.emmeans)
    diff_columns = ["level", "w_per", "lr", *(f"{r}_diff" for r in tested)]
    paper = pd.DataFrame(
        [(w, f[0], f[1]) for w, f in PAPER_GE_F.items()],
        columns=["w_per", "paper GE F (LR 0.001)", "paper GE F (LR 0.01)"],
    )
    return [
        Block("heading", "Table 1: best VGG-Enhanced versus best VGG+GAN-Enhanced"),
        Block(
            "text",
            "Level I: per W_per, the best W_adv = 0 network (either LR) versus the best W_adv > 0 "
            "network (either LR). Level II: per W_per x LR, the W_adv = 0 network versus the best "
            "W_adv > 0 network. Winners ranked by the estimated ln(GE); F and p compare the two "
            f"networks per response ({scale_phrase(tested)}).",
        ),
        Block("table", table=table1_display(stats.table1, statuses)),
        Block(
            "table",
            f"Estimated differences VGG+GAN minus VGG per Table 1 group (model scale: "
            f"{scale_phrase(tested)}; {better_phrase(tested)}).",
            table=diffs[diff_columns],
        ),
        Block(
            "table",
            "For comparison, the paper's Table 1 GE F-ratios (all p < 0.001), as study §9 lists "
            "them per W_per.",
            table=paper,
        ),
    ]


def reference_blocks(
    references: Mapping[str, pd.DataFrame],
    evals: pd.DataFrame,
    vgg: Cell,
    gan: Cell,
    statuses: Mapping[str, str],
) -> list[Block]:
    """The reference rows: each metric's mean for the references, network families and winners."""
    blocks = [
        Block("heading", "Reference rows"),
        Block(
            "table",
            "Mean of each metric over the test images (raw scale; "
            f"{raw_better_phrase(study_responses(evals.columns))}).",
            table=reference_summary(references, evals, vgg, gan, statuses),
        ),
    ]
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
    return blocks


def training_health_blocks(
    health: pd.DataFrame | None, curves: Path | None, divergence_ratio: float
) -> list[Block]:
    """The training-health section: every network's status and the training curves (nothing
    without a health table)."""
    if health is None:
        return []
    blocks = [
        Block("heading", "Training health"),
        Block(
            "text",
            "Each network's status from its train_log.csv and its lesion metrics: diverged = a "
            "non-finite logged value, or a final validation L1 more than "
            f"{divergence_ratio:g}x its own best or the pretrained generator's "
            "(stats.divergence_ratio); not learning = worse than the LQ input on mean MIE or "
            "SSIM inside the lesions; ok = neither. Table: stats/training_health.csv.",
        ),
        Block("table", table=health_display(health)),
    ]
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
    return blocks


def figure_blocks(figures: Mapping[str, tuple[Path, str]]) -> list[Block]:
    """The Figures section: Figures 3-7 with their captions, those that were drawn."""
    blocks = [Block("heading", "Figures")]
    for key in ("fig3", "fig4", "fig5", "fig6", "fig7"):
        if key in figures:
            path, caption = figures[key]
            blocks.append(Block("figure", caption, path=path))
    return blocks


def anova_blocks(stats: StatsTables, stats_dir: Path) -> list[Block]:
    """The mixed-model section: the ANOVA, missing values, variance components and Tukey's W_adv."""
    blocks = [
        Block("heading", "Mixed-model ANOVA"),
        Block(
            "text",
            "Per response, y ~ LR * W_per * W_adv + (1 | test image), REML; type-III F tests with "
            "Satterthwaite denominator df. Responses: "
            + ", ".join(response_label(r) for r in study_responses(stats.anova["response"]))
            + ".",
        ),
        Block("table", table=stats.anova[list(ANOVA_COLUMNS)]),
        *missing_value_blocks(stats_dir),
    ]
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
    return blocks


def diagnostics_blocks(stats: StatsTables, stats_dir: Path) -> list[Block]:
    """The model-diagnostics section: the residual tests and the statistics stage's plots."""
    blocks = [Block("heading", "Model diagnostics")]
    if stats.diagnostics is not None:
        blocks.append(
            Block(
                "table",
                "Residual normality and homoscedasticity per response, raw and log scale.",
                table=stats.diagnostics,
            )
        )
    pngs = sorted(stats_dir.glob("*.png"))
    for png in pngs:
        blocks.append(
            Block(
                "figure",
                f"Model diagnostics written by the statistics stage ({png.name}).",
                path=png,
            )
        )
    if stats.diagnostics is None and not pngs:
        blocks.append(Block("text", "No diagnostics were written by the statistics stage."))
    return blocks


def settings_blocks(config: Mapping) -> list[Block]:
    """The Settings section: the study settings of the run, one dotted key per row."""
    settings = pd.DataFrame(flatten(config), columns=["key", "value"])
    return [
        Block("heading", "Settings"),
        Block(
            "table",
            "The study settings of this run (the workflow leaves out `resources` and the "
            "speed-only `compute` switches, which change no number).",
            table=settings,
        ),
    ]


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
