"""The paper's Figures 3-7 (study §8), each written as a PNG plus the CSV of what it shows.

Every function takes tables (the evaluation rows, the statistics' EMMs and Table 1) and writes two
files; none recomputes statistics. Factor levels sit at equally spaced positions labelled with their
values, so a 2-level demo grid and the paper's 18 W_adv levels both read well.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from advmri.errors import DataError
from advmri.grid import Cell, format_number
from advmri.report.tables import (
    check_level,
    response_label,
    select_level,
    study_responses,
    to_model_scale,
)

#: Colours of the two winners in Fig 4 (the paper's red and green).
VGG_COLOUR = "#d62728"
GAN_COLOUR = "#2ca02c"
#: LR lines avoid red and green so the winners' marks stand out.
LR_COLOURS = ("#1f4e9c", "#f08c00", "#6a3d9a", "#555555")
DPI = 110


def _levels(values: pd.Series) -> list[float]:
    return sorted({float(v) for v in values})


def _dodge(n_lines: int, step: float = 0.16, width: float = 0.6) -> np.ndarray:
    """Horizontal offsets that keep ``n_lines`` error bars at one level apart (within ``width``)."""
    if n_lines == 1:
        return np.zeros(1)
    span = min(width, step * (n_lines - 1))
    return np.linspace(-span / 2, span / 2, n_lines)


def _title(fig: Figure, text: str) -> None:
    """A suptitle wrapped to the figure's width, so long titles do not widen the PNG."""
    chars = int(fig.get_figwidth() * 11)  # ~11 characters per inch at 10 pt
    fig.suptitle(textwrap.fill(text, chars), fontsize=10, y=1.0)


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")


def _panel_width(n_positions: int) -> float:
    # about 0.4 inch per box/level, bounded so 2 levels are not tiny and 36 not huge
    return float(min(16.0, max(6.5, 0.4 * n_positions + 2.5)))


def plot_distributions(
    evals: pd.DataFrame, w_per: float, png: str | Path, csv: str | Path, label: str = "Fig 3"
) -> pd.DataFrame:
    """Fig 3: per-image distributions of the study's responses across W_adv x LR at one W_per.

    One panel per response on the model scale (the paper's: ln GE, ln Sharpness, ln ECE, ln MIE,
    SSIM); a box
    per (W_adv, LR) network over its test images, the mean marked by a white diamond.

    Parameters
    ----------
    evals : rows of the evaluation CSVs (raw responses), as ``load_evaluations`` returns.
    w_per : the W_per shown (``stats.figures.w_per``); must be a level of ``evals``.
    png, csv : output paths.
    label : how the figure's title names it (a supplementary figure says which it is).

    Returns
    -------
    pd.DataFrame
        The CSV's rows: ``response, w_per, w_adv, lr, n, mean, sd, min, q25, median, q75, max``
        per response and network, on the model scale; NaN and non-positive (log) values are left out.
    """
    check_level(evals["w_per"], w_per, "W_per", "stats.figures.w_per")
    subset = to_model_scale(evals[select_level(evals["w_per"], w_per)])
    responses = study_responses(subset.columns)
    w_advs, lrs = _levels(subset["w_adv"]), _levels(subset["lr"])
    long = subset.melt(
        id_vars=["sample", "w_adv", "lr"], value_vars=list(responses), var_name="response"
    ).dropna(subset=["value"])

    grouped = long.groupby(["response", "lr", "w_adv"])["value"]
    summary = grouped.agg(
        n="count",
        mean="mean",
        sd="std",
        min="min",
        q25=lambda v: v.quantile(0.25),
        median="median",
        q75=lambda v: v.quantile(0.75),
        max="max",
    ).reset_index()
    order = {r: i for i, r in enumerate(responses)}
    summary = summary.sort_values(
        ["response", "lr", "w_adv"], key=lambda c: c.map(order) if c.name == "response" else c
    ).reset_index(drop=True)
    summary.insert(1, "w_per", float(w_per))
    # the factors in the order of every CSV of the study: w_per, w_adv, lr
    factors = ["response", "w_per", "w_adv", "lr"]
    summary = summary[[*factors, *(c for c in summary.columns if c not in factors)]]
    Path(csv).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(csv, index=False)

    long["W_adv"] = pd.Categorical(
        long["w_adv"].map(format_number), categories=[format_number(v) for v in w_advs]
    )
    long["LR"] = pd.Categorical(
        long["lr"].map(format_number), categories=[format_number(v) for v in lrs]
    )
    fig = Figure(figsize=(_panel_width(len(w_advs) * len(lrs)), 2.6 * len(responses)))
    axes = fig.subplots(len(responses), 1, sharex=True, squeeze=False)
    for ax, response in zip(axes[:, 0], responses, strict=True):
        data = long[long["response"] == response]
        if data.empty:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
        else:
            with warnings.catch_warnings():
                # seaborn 0.13 passes matplotlib 3.11's deprecated ``vert``; not ours to fix
                warnings.simplefilter("ignore", DeprecationWarning)
                sns.boxplot(
                    data=data,
                    x="W_adv",
                    y="value",
                    hue="LR",
                    palette=list(LR_COLOURS[: len(lrs)]),
                    showmeans=True,
                    meanprops={
                        "marker": "D",
                        "markerfacecolor": "white",
                        "markeredgecolor": "black",
                        "markersize": 4,
                    },
                    fliersize=1.0,
                    linewidth=0.7,
                    ax=ax,
                    legend=ax is axes[0, 0],
                )
        ax.set_ylabel(response_label(response))
        ax.set_xlabel("")
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xlabel("W_adv")
    axes[-1, 0].tick_params(axis="x", rotation=45 if len(w_advs) > 6 else 0)
    if axes[0, 0].get_legend() is not None:
        sns.move_legend(axes[0, 0], "lower left", bbox_to_anchor=(1.0, 0.0), title="LR")
    _title(
        fig,
        f"{label}. Per-image distributions at W_per = {format_number(w_per)} "
        "(box: quartiles; diamond: mean)",
    )
    fig.tight_layout()
    _save(fig, Path(png))
    return summary


def _interaction_axes(n_levels: int, n_responses: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(_panel_width(1.6 * n_levels), 2.5 * n_responses))
    axes = fig.subplots(n_responses, 1, sharex=True, squeeze=False)
    return fig, axes[:, 0]


def _draw_lines(
    ax: Axes,
    rows: pd.DataFrame,
    line_factor: str,
    line_levels: Sequence[float],
    x_levels: Sequence[float],
    colours: Sequence,
    label: str,
) -> dict[float, float]:
    """Error-bar lines of EMM and 95% CI against the W_adv position; returns each line's offset.

    A point without an estimate (a network left out of the statistics) is skipped."""
    offsets = dict(zip(line_levels, _dodge(len(line_levels)), strict=True))
    position = {v: i for i, v in enumerate(x_levels)}
    for level, colour in zip(line_levels, colours, strict=False):
        line = rows[select_level(rows[line_factor], level)].sort_values("w_adv")
        line = line[np.isfinite(line["estimate"].to_numpy(dtype=float))]
        if line.empty:
            continue
        x = line["w_adv"].map(position).to_numpy() + offsets[level]
        estimate = line["estimate"].to_numpy()
        ax.errorbar(
            x,
            estimate,
            yerr=[estimate - line["ci_low"].to_numpy(), line["ci_high"].to_numpy() - estimate],
            color=colour,
            marker="o",
            markersize=3.5,
            linewidth=1.2,
            elinewidth=0.9,
            capsize=2,
            label=f"{label} {format_number(level)}",
        )
    return offsets


def _flag_rows(rows: pd.DataFrame, statuses: Mapping[str, str] | None) -> pd.Series:
    """Training-health status of each EMM row's network ("" when ok or unknown)."""
    statuses = statuses or {}
    return pd.Series(
        [
            statuses.get(Cell(float(p), float(a), float(r)).name, "ok").replace("ok", "")
            for p, a, r in zip(rows["w_per"], rows["w_adv"], rows["lr"], strict=True)
        ],
        index=rows.index,
        dtype=object,
    )


def _mark_flagged(
    ax: Axes,
    panel: pd.DataFrame,
    line_factor: str,
    offsets: Mapping[float, float],
    position: Mapping[float, int],
) -> None:
    """A black cross over every network the training-health section flagged (``flag`` column)."""
    flagged = panel[panel["flag"] != ""]
    if flagged.empty:
        return
    x = flagged["w_adv"].map(position).to_numpy() + [
        offsets[float(v)] for v in flagged[line_factor]
    ]
    ax.scatter(
        x,
        flagged["estimate"],
        marker="X",
        s=70,
        color="black",
        zorder=7,
        label="flagged: diverged / not learning",
    )


def _finish_interaction(axes: np.ndarray, x_levels: Sequence[float]) -> None:
    axes[-1].set_xticks(range(len(x_levels)))
    axes[-1].set_xticklabels(
        [format_number(v) for v in x_levels], rotation=45 if len(x_levels) > 6 else 0
    )
    axes[-1].set_xlabel("W_adv")
    axes[-1].set_xlim(-0.6, len(x_levels) - 0.4)
    for ax in axes:
        ax.grid(alpha=0.3)


def plot_interaction_lr(
    emmeans: pd.DataFrame,
    w_per: float,
    best_vgg: Cell,
    best_gan: Cell,
    png: str | Path,
    csv: str | Path,
    label: str = "Fig 4",
    statuses: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Fig 4: W_adv x LR interaction at one W_per: EMM and 95% CI per W_adv level, a line per LR.

    ``best_vgg`` (W_adv = 0) is ringed red and ``best_gan`` (W_adv > 0) green in every panel: the
    networks Table 1 (level I) compares at this W_per. ``label`` names the figure in its title.
    ``statuses`` (cell name -> training-health status) crosses out flagged networks; the CSV's
    ``flag`` column names their status.

    Returns
    -------
    pd.DataFrame
        The CSV's rows: the ``emmeans.csv`` rows at ``w_per`` with boolean ``best_vgg`` and
        ``best_gan`` columns.
    """
    check_level(emmeans["w_per"], w_per, "W_per", "stats.figures.w_per")
    rows = emmeans[select_level(emmeans["w_per"], w_per)].copy()
    names = [
        Cell(float(p), float(a), float(lr)).name
        for p, a, lr in zip(rows["w_per"], rows["w_adv"], rows["lr"], strict=True)
    ]
    rows["best_vgg"] = [n == best_vgg.name for n in names]
    rows["best_gan"] = [n == best_gan.name for n in names]
    rows["flag"] = _flag_rows(rows, statuses)
    for cell, column in ((best_vgg, "best_vgg"), (best_gan, "best_gan")):
        if not rows[column].any():
            raise DataError(f"emmeans.csv: no estimate for the marked network {cell.name}")
    responses = study_responses(rows["response"].unique())
    order = {r: i for i, r in enumerate(responses)}
    rows = rows.sort_values(
        ["response", "lr", "w_adv"], key=lambda c: c.map(order) if c.name == "response" else c
    ).reset_index(drop=True)
    Path(csv).parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(csv, index=False)

    w_advs, lrs = _levels(rows["w_adv"]), _levels(rows["lr"])
    position = {v: i for i, v in enumerate(w_advs)}
    fig, axes = _interaction_axes(len(w_advs), len(responses))
    for ax, response in zip(axes, responses, strict=True):
        panel = rows[rows["response"] == response]
        offsets = _draw_lines(ax, panel, "lr", lrs, w_advs, LR_COLOURS, "LR")
        _mark_flagged(ax, panel, "lr", offsets, position)
        for column, colour, text in (
            ("best_vgg", VGG_COLOUR, "best VGG-Enhanced"),
            ("best_gan", GAN_COLOUR, "best VGG+GAN-Enhanced"),
        ):
            mark = panel[panel[column]]
            if mark.empty:
                continue
            lr = float(mark["lr"].iloc[0])
            ax.scatter(
                mark["w_adv"].map(position) + offsets[lr],
                mark["estimate"],
                s=150,
                facecolors="none",
                edgecolors=colour,
                linewidths=2.2,
                zorder=5,
                label=text,
            )
        ax.set_ylabel(response_label(response))
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _finish_interaction(axes, w_advs)
    _title(
        fig,
        f"{label}. W_adv x LR at W_per = {format_number(w_per)}: estimated marginal means, 95% CI "
        f"(red: {best_vgg.name}; green: {best_gan.name})",
    )
    fig.tight_layout()
    _save(fig, Path(png))
    return rows


def _headroom(ax: Axes, top: float, points: float) -> None:
    """Raise the y-axis' upper limit so ``points`` (typographic) fit above the data value ``top``."""
    low, high = ax.get_ylim()
    height = ax.get_position().height * ax.figure.get_figheight() * 72  # axes height in points
    share = min(points / height, 0.5)
    ax.set_ylim(low, max(high, (top - share * low) / (1 - share)))


def ge_optimal_gan(emmeans: pd.DataFrame, lr: float) -> dict[float, float]:
    """Per W_per, the W_adv > 0 of the smallest estimated ln(GE) at ``lr`` (Fig 5's arrows).

    Returns
    -------
    dict
        W_per -> W_adv; ties go to the smaller W_adv; a W_per without W_adv > 0 estimates is absent.
    """
    ge = emmeans[
        (emmeans["response"] == "ge") & select_level(emmeans["lr"], lr) & (emmeans["w_adv"] > 0)
    ].dropna(subset=["estimate"])  # a network left out of the statistics has no estimate
    ge = ge.sort_values(["w_per", "w_adv"])
    return {
        float(w_per): float(group.loc[group["estimate"].idxmin(), "w_adv"])
        for w_per, group in ge.groupby("w_per")
    }


def plot_interaction_wper(
    emmeans: pd.DataFrame,
    lr: float,
    png: str | Path,
    csv: str | Path,
    label: str = "Fig 5",
    statuses: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Fig 5: W_adv x W_per interaction at one LR: EMM and 95% CI, a line per W_per.

    As in the paper, an arrow in the line's colour marks, per W_per, the GE-optimal VGG+GAN-Enhanced
    network (the W_adv > 0 of the smallest estimated ln GE at this LR, :func:`ge_optimal_gan`), at
    that network's estimate in every response panel. ``label`` names the figure in its title.
    ``statuses`` (cell name -> training-health status) crosses out flagged networks; the CSV's
    ``flag`` column names their status.

    Returns
    -------
    pd.DataFrame
        The CSV's rows: the ``emmeans.csv`` rows at ``lr`` with a boolean ``marked`` column (True
        for the marked network's row of each response and W_per).
    """
    check_level(emmeans["lr"], lr, "LR", "stats.figures.lr")
    rows = emmeans[select_level(emmeans["lr"], lr)].copy()
    responses = study_responses(rows["response"].unique())
    order = {r: i for i, r in enumerate(responses)}
    rows = rows.sort_values(
        ["response", "w_per", "w_adv"], key=lambda c: c.map(order) if c.name == "response" else c
    ).reset_index(drop=True)
    optimum = ge_optimal_gan(rows, lr)
    rows["marked"] = [
        float(p) in optimum and float(a) == optimum[float(p)]
        for p, a in zip(rows["w_per"], rows["w_adv"], strict=True)
    ]
    rows["flag"] = _flag_rows(rows, statuses)
    Path(csv).parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(csv, index=False)

    w_advs, w_pers = _levels(rows["w_adv"]), _levels(rows["w_per"])
    position = {v: i for i, v in enumerate(w_advs)}
    colours = sns.color_palette("viridis", len(w_pers))
    fig, axes = _interaction_axes(len(w_advs), len(responses))
    for ax, response in zip(axes, responses, strict=True):
        panel = rows[rows["response"] == response]
        offsets = _draw_lines(ax, panel, "w_per", w_pers, w_advs, colours, "W_per")
        _mark_flagged(ax, panel, "w_per", offsets, position)
        marked = panel[panel["marked"]]
        for w_per, colour in zip(w_pers, colours, strict=True):
            for _, mark in marked[select_level(marked["w_per"], w_per)].iterrows():
                # pointing down at the top of the network's confidence interval, outlined in black
                arrow = ax.annotate(
                    "",
                    xy=(position[float(mark["w_adv"])] + offsets[w_per], mark["ci_high"]),
                    xytext=(0, 26),
                    textcoords="offset points",
                    arrowprops={
                        "arrowstyle": "-|>,head_length=0.6,head_width=0.3",
                        "color": colour,
                        "linewidth": 2.0,
                        "shrinkA": 0,
                        "shrinkB": 1,
                    },
                    annotation_clip=False,
                    zorder=6,
                )
                arrow.arrow_patch.set_path_effects(
                    [patheffects.withStroke(linewidth=3.4, foreground="black")]
                )
        if not marked.empty:
            _headroom(ax, float(marked["ci_high"].max()), points=32)
        ax.set_ylabel(response_label(response))
    handles, labels = axes[0].get_legend_handles_labels()
    arrow = Line2D(
        [], [], marker="v", color="grey", markeredgecolor="black", markersize=8, linestyle=""
    )
    axes[0].legend(
        [*handles, arrow],
        [*labels, "GE-optimal W_adv > 0"],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
    )
    _finish_interaction(axes, w_advs)
    _title(
        fig,
        f"{label}. W_adv x W_per at LR = {format_number(lr)}: estimated marginal means, 95% CI "
        "(arrow: each W_per's GE-optimal VGG+GAN-Enhanced network, W_adv > 0)",
    )
    fig.tight_layout()
    _save(fig, Path(png))
    return rows


def zoom_window(
    bbox: tuple[int, int, int, int], shape: tuple[int, int], margin: float = 0.6, minimum: int = 24
) -> tuple[int, int, int, int]:
    """A square crop around a lesion's bounding box, inside the image.

    Parameters
    ----------
    bbox : (r0, c0, r1, c1), half-open, as in ``samples.csv``.
    shape : (rows, columns) of the image.
    margin : context added on each side, as a fraction of the box's larger side.
    minimum : smallest side of the crop in pixels (tiny lesions still get context).

    Returns
    -------
    (r0, c0, r1, c1)
        Half-open; the side is ``max(minimum, larger box side * (1 + 2 margin))`` clipped to the image.
    """
    r0, c0, r1, c1 = (int(v) for v in bbox)
    rows, cols = shape
    side = int(round(max(minimum, max(r1 - r0, c1 - c0) * (1 + 2 * margin))))
    side = min(side, rows, cols)
    centre_r, centre_c = (r0 + r1) / 2, (c0 + c1) / 2
    top = int(np.clip(round(centre_r - side / 2), 0, rows - side))
    left = int(np.clip(round(centre_c - side / 2), 0, cols - side))
    return top, left, top + side, left + side


def plot_examples(
    samples: pd.DataFrame,
    images: Mapping[str, np.ndarray],
    networks: Mapping[str, str],
    scores: pd.DataFrame,
    title: str,
    png: str | Path,
    csv: str | Path,
) -> pd.DataFrame:
    """Figs 6-7: test images side by side (LQ input, enhanced ..., ground truth), lesion zoomed.

    Each sample takes two rows: the whole 208 x 176 image with the zoom window outlined, then the
    zoom window (nearest-neighbour, so pixels stay pixels) with the lesion's box in yellow.

    Parameters
    ----------
    samples : one row per shown sample with ``sample, subject, bbox_r0, bbox_c0, bbox_r1, bbox_c1``.
    images : column title -> (k, H, W) array in [0, 1], rows in the order of ``samples``.
    networks : column title -> the network (cell name, ``pretrain``, ``input`` or ``ground truth``)
        written to the CSV.
    scores : evaluation rows with ``network, sample, ge, ssim`` (the per-image metrics printed
        under the zooms); networks or samples it lacks get no scores.
    title, png, csv : figure title and output paths.

    Returns
    -------
    pd.DataFrame
        The CSV's rows, one per sample and column: ``sample, subject, column, network, bbox_*,
        zoom_*`` and the image's ``ge, sharpness, ece, mie, ssim`` where known.
    """
    if samples.empty:
        raise DataError(f"{title}: no example sample to show")
    titles = list(images)
    k = len(samples)
    for column, stack in images.items():
        if stack.ndim != 3 or stack.shape[0] != k:
            raise DataError(
                f"{title}: images of {column!r} have shape {stack.shape}; expected ({k}, H, W)"
            )
    fig = Figure(figsize=(2.3 * len(titles), 4.6 * k))
    axes = fig.subplots(2 * k, len(titles), squeeze=False)
    score_index = scores.set_index(["network", "sample"]) if not scores.empty else None
    records = []
    for i, (_, sample) in enumerate(samples.iterrows()):
        bbox = tuple(int(sample[f"bbox_{k_}"]) for k_ in ("r0", "c0", "r1", "c1"))
        first = next(iter(images.values()))
        window = zoom_window(bbox, first.shape[1:])
        for j, column in enumerate(titles):
            image = images[column][i]
            whole, zoom = axes[2 * i, j], axes[2 * i + 1, j]
            whole.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            whole.add_patch(
                Rectangle(
                    (window[1] - 0.5, window[0] - 0.5),
                    window[3] - window[1],
                    window[2] - window[0],
                    fill=False,
                    edgecolor="yellow",
                    linewidth=1.0,
                )
            )
            crop = image[window[0] : window[2], window[1] : window[3]]
            zoom.imshow(crop, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            zoom.add_patch(
                Rectangle(
                    (bbox[1] - window[1] - 0.5, bbox[0] - window[0] - 0.5),
                    bbox[3] - bbox[1],
                    bbox[2] - bbox[0],
                    fill=False,
                    edgecolor="yellow",
                    linewidth=0.8,
                    linestyle="--",
                )
            )
            record = {
                "sample": int(sample["sample"]),
                "subject": sample["subject"],
                "column": column,
                "network": networks[column],
                "bbox_r0": bbox[0],
                "bbox_c0": bbox[1],
                "bbox_r1": bbox[2],
                "bbox_c1": bbox[3],
                "zoom_r0": window[0],
                "zoom_c0": window[1],
                "zoom_r1": window[2],
                "zoom_c1": window[3],
            }
            key = (networks[column], int(sample["sample"]))
            caption = ""
            if score_index is not None and key in score_index.index:
                metric = score_index.loc[key]
                if isinstance(metric, pd.DataFrame):
                    metric = metric.iloc[0]
                record.update({r: float(metric[r]) for r in study_responses(metric.index)})
                caption = "  ".join(
                    f"{label} {float(metric[r]):{form}}"
                    for r, label, form in (("ge", "GE", ".3g"), ("ssim", "SSIM", ".3f"))
                    if r in metric.index
                )
            records.append(record)
            if i == 0:
                whole.set_title(column, fontsize=9)
            if j == 0:
                whole.set_ylabel(f"sample {int(sample['sample'])}", fontsize=8)
                zoom.set_ylabel("lesion zoom", fontsize=8)
            zoom.set_xlabel(caption, fontsize=7)
            for ax in (whole, zoom):
                ax.set_xticks([])
                ax.set_yticks([])
    _title(fig, title)
    fig.tight_layout()
    _save(fig, Path(png))
    table = pd.DataFrame.from_records(records)
    Path(csv).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv, index=False)
    return table
