"""Training health: did every network of the grid train, and which ones did not?

A 216-cell study cannot be read network by network. This module turns each network's
``train_log.csv`` and its lesion metrics into one status, and draws every network's per-epoch curves
as small multiples in grid order, so a diverged or useless cell is seen before its numbers are
believed:

* ``diverged``: a logged value is NaN or infinite, or the final validation L1 is more than
  ``divergence_ratio`` times the network's own best validation L1 or the pretrained generator's
  final validation L1 (training went far past the point it started from or had reached);
* ``not learning``: the network is worse than its own LQ input inside the lesions, on mean MIE or
  mean SSIM over the test images (it destroys what it should restore);
* ``ok``: neither.

``diverged`` is checked first. ``stats.exclude: diverged`` leaves diverged networks out of the
statistics (see :func:`excluded_networks`); ``not learning`` networks stay in, flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.errors import DataError
from advmri.grid import Cell, format_number

#: The statuses, best first.
STATUSES: tuple[str, ...] = ("ok", "diverged", "not learning")
#: Columns of ``training_health.csv``.
HEALTH_COLUMNS: tuple[str, ...] = (
    "network",
    "w_per",
    "w_adv",
    "lr",
    "status",
    "reason",
    "epochs",
    "final_val_l1",
    "best_val_l1",
    "best_epoch",
    "pretrain_val_l1",
    "mie",
    "lq_mie",
    "ssim",
    "lq_ssim",
)
#: Per-epoch columns of ``train_log.csv`` the curves show, with their legend labels.
CURVES: dict[str, str] = {
    "l1": "L1 (train)",
    "val_l1": "L1 (validation)",
    "perceptual": "perceptual",
    "adversarial": "adversarial",
}
D_CURVES: dict[str, str] = {"d_real": "D on real", "d_fake": "D on enhanced"}
_LOG_NUMBERS = ("l1", "perceptual", "adversarial", "total", "discriminator", "d_real", "d_fake")


def read_train_log(path: str | Path) -> pd.DataFrame:
    """Read one ``train_log.csv``; DataError naming the file when it is empty or lacks columns."""
    path = Path(path)
    try:
        log = pd.read_csv(path)
    except FileNotFoundError as error:
        raise DataError(f"{path}: file not found; run the training rule that writes it") from error
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable train log ({type(error).__name__})") from error
    missing = [c for c in ("epoch", "l1", "val_l1") if c not in log.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} of a train log")
    if log.empty:
        raise DataError(f"{path}: the train log has no epochs")
    return log


def _cell_of(row: pd.Series) -> Cell:
    return Cell(float(row["w_per"]), float(row["w_adv"]), float(row["lr"]))


def grid_order(cells: Sequence[Cell]) -> list[Cell]:
    """Cells sorted as the small multiples show them: by W_per, then LR (rows), then W_adv."""
    return sorted(set(cells), key=lambda c: (c.w_per, c.lr, c.w_adv))


def _first_non_finite(log: pd.DataFrame) -> str | None:
    """The first NaN or infinite value among the terms this network logs, as text.

    A term absent from a whole run (no discriminator, no validation split) is empty in every row
    and is not a divergence; a term that is empty in some rows only is one.
    """
    columns = [c for c in (*_LOG_NUMBERS, "val_l1") if c in log.columns and log[c].notna().any()]
    values = log[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    row, col = np.argwhere(bad)[0]
    return f"{columns[col]} = {values[row, col]:g} at epoch {int(log['epoch'].iloc[row])}"


def classify_training(
    logs: Mapping[str, pd.DataFrame],
    pretrain_log: pd.DataFrame,
    evals: pd.DataFrame,
    lq_reference: pd.DataFrame,
    divergence_ratio: float = 2.0,
) -> pd.DataFrame:
    """One status per network of the grid, with the numbers behind it.

    Parameters
    ----------
    logs : cell name -> that network's train log (:func:`read_train_log`).
    pretrain_log : the pretrained generator's train log.
    evals : evaluation rows of every network (``w_per, w_adv, lr, mie, ssim`` per test image).
    lq_reference : evaluation rows of the LQ input (same test images).
    divergence_ratio : how far (a factor) the final validation L1 may exceed the network's own best
        and the pretrained generator's before the network counts as diverged.

    Returns
    -------
    DataFrame
        :data:`HEALTH_COLUMNS`, one row per network in :func:`grid_order`.

    Raises
    ------
    DataError
        A network of ``evals`` has no train log, or ``divergence_ratio`` is not a finite number > 1.
    """
    if not (math.isfinite(divergence_ratio) and divergence_ratio > 1):
        raise DataError(f"divergence ratio {divergence_ratio!r} must be a finite number above 1")
    means = evals.groupby(["w_per", "w_adv", "lr"])[["mie", "ssim"]].mean()
    lq_mie, lq_ssim = float(lq_reference["mie"].mean()), float(lq_reference["ssim"].mean())
    pretrain_val = float(pretrain_log["val_l1"].iloc[-1])
    rows = []
    for cell in grid_order([_cell_of(r) for _, r in means.reset_index().iterrows()]):
        if cell.name not in logs:
            raise DataError(f"training health: network {cell.name} has no train_log.csv")
        log = logs[cell.name]
        val = pd.to_numeric(log["val_l1"], errors="coerce")
        final = float(val.iloc[-1])
        best_at = int(np.nanargmin(val.to_numpy())) if val.notna().any() else -1
        best = float(val.iloc[best_at]) if best_at >= 0 else float("nan")
        mie, ssim = means.loc[(cell.w_per, cell.w_adv, cell.lr)]
        status, reason = "ok", ""
        non_finite = _first_non_finite(log)
        if non_finite:
            status, reason = "diverged", f"non-finite {non_finite}"
        elif final > divergence_ratio * best:
            status = "diverged"
            reason = f"final val L1 {final:.3g} is {final / best:.1f}x its best ({best:.3g})"
        elif math.isfinite(pretrain_val) and final > divergence_ratio * pretrain_val:
            status = "diverged"
            reason = (
                f"final val L1 {final:.3g} is {final / pretrain_val:.1f}x the pretrained "
                f"generator's ({pretrain_val:.3g})"
            )
        elif not (mie <= lq_mie and ssim >= lq_ssim):
            status = "not learning"
            worse = [
                f"{name} {value:.3g} vs LQ input {ref:.3g}"
                for name, value, ref, bad in (
                    ("MIE", mie, lq_mie, not mie <= lq_mie),
                    ("SSIM", ssim, lq_ssim, not ssim >= lq_ssim),
                )
                if bad
            ]
            reason = "worse than its input in the lesions: " + ", ".join(worse)
        rows.append(
            {
                "network": cell.name,
                "w_per": cell.w_per,
                "w_adv": cell.w_adv,
                "lr": cell.lr,
                "status": status,
                "reason": reason,
                "epochs": int(log["epoch"].iloc[-1]),
                "final_val_l1": final,
                "best_val_l1": best,
                "best_epoch": int(log["epoch"].iloc[best_at]) if best_at >= 0 else -1,
                "pretrain_val_l1": pretrain_val,
                "mie": float(mie),
                "lq_mie": lq_mie,
                "ssim": float(ssim),
                "lq_ssim": lq_ssim,
            }
        )
    return pd.DataFrame(rows, columns=list(HEALTH_COLUMNS))


def excluded_networks(health: pd.DataFrame, exclude: str) -> list[str]:
    """Networks ``stats.exclude`` leaves out: none (``none``) or the ``diverged`` ones."""
    if exclude == "none":
        return []
    if exclude == "diverged":
        return health.loc[health["status"] == "diverged", "network"].tolist()
    raise DataError(f"stats.exclude = {exclude!r}; use none or diverged")


def status_of(health: pd.DataFrame | None) -> dict[str, str]:
    """Cell name -> status (empty when no health table)."""
    if health is None:
        return {}
    return dict(zip(health["network"], health["status"], strict=True))


def flag_label(name: str, statuses: Mapping[str, str]) -> str:
    """``name`` with its status appended when it is not ``ok`` (``wper1_wadv0.1_lr0.01 [diverged]``)."""
    status = statuses.get(name, "ok")
    return name if status == "ok" else f"{name} [{status}]"


def curves_table(logs: Mapping[str, pd.DataFrame], pretrain_log: pd.DataFrame) -> pd.DataFrame:
    """Every network's per-epoch curves in long form: network, epoch, term, value."""
    parts = []
    for name, log in [("pretrain", pretrain_log), *logs.items()]:
        terms = [c for c in (*CURVES, *D_CURVES) if c in log.columns]
        long = log[["epoch", *terms]].melt(id_vars="epoch", var_name="term", value_name="value")
        parts.append(long.dropna(subset=["value"]).assign(network=name))
    return pd.concat(parts, ignore_index=True)[["network", "epoch", "term", "value"]]


STATUS_COLOURS = {"ok": "black", "diverged": "#c0392b", "not learning": "#d35400"}


def plot_training_curves(
    logs: Mapping[str, pd.DataFrame],
    pretrain_log: pd.DataFrame,
    health: pd.DataFrame,
    png_path: str | Path,
    csv_path: str | Path,
) -> None:
    """Small multiples of every network's training, in grid order, and their data as CSV.

    One panel per network: rows are W_per x LR, columns W_adv (the pretrained generator first, on
    a row of its own). Each panel has the generator's terms on a log scale (train and validation
    L1, perceptual, adversarial) above the discriminator's mean logits on real and enhanced images.
    The dashed line is the pretrained generator's final validation L1. A diverged network's title
    is red, a not-learning one's orange.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    curves_table(logs, pretrain_log).to_csv(csv_path, index=False)
    w_advs = sorted(set(health["w_adv"]))
    row_keys = sorted(set(zip(health["w_per"], health["lr"], strict=True)))
    n_cols, n_rows = max(len(w_advs), 1), len(row_keys) + 1
    fig = plt.figure(figsize=(2.3 * n_cols + 0.6, 2.4 * n_rows + 0.6), dpi=90)
    grid = fig.add_gridspec(n_rows, n_cols, hspace=0.55, wspace=0.35)
    pretrain_val = float(pretrain_log["val_l1"].iloc[-1])
    colours = {
        "l1": "#1f77b4",
        "val_l1": "#000000",
        "perceptual": "#2ca02c",
        "adversarial": "#9467bd",
    }
    d_colours = {"d_real": "#1f77b4", "d_fake": "#d62728"}

    def panel(spec, log: pd.DataFrame, title: str, colour: str, first: bool) -> None:
        inner = spec.subgridspec(2, 1, height_ratios=[2, 1], hspace=0.08)
        top = fig.add_subplot(inner[0])
        bottom = fig.add_subplot(inner[1], sharex=top)
        epochs = log["epoch"].to_numpy()
        for term, label in CURVES.items():
            if term in log.columns and log[term].notna().any():
                values = pd.to_numeric(log[term], errors="coerce").to_numpy(dtype=float)
                values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
                top.plot(epochs, values, color=colours[term], lw=1.1, label=label, marker=".", ms=3)
        top.axhline(pretrain_val, color="grey", ls="--", lw=0.8, label="pretrained val L1")
        top.set_yscale("log")
        top.set_title(
            title, fontsize=7.5, color=colour, fontweight="bold" if colour != "black" else None
        )
        top.yaxis.set_minor_formatter(NullFormatter())  # minor log labels crowd a small panel
        top.tick_params(which="both", labelsize=6, labelbottom=False)
        has_d = "d_real" in log.columns and log["d_real"].notna().any()
        for term, label in D_CURVES.items():
            if has_d:
                bottom.plot(
                    epochs, log[term], color=d_colours[term], lw=1.1, label=label, marker=".", ms=3
                )
        if not has_d:
            bottom.text(
                0.5,
                0.5,
                "no discriminator",
                ha="center",
                va="center",
                fontsize=6.5,
                transform=bottom.transAxes,
                color="grey",
            )
        bottom.tick_params(labelsize=6)
        bottom.set_xlabel("epoch", fontsize=6.5)
        if first:
            top.legend(fontsize=5.5, loc="upper right", frameon=False)
            if has_d:
                bottom.legend(fontsize=5.5, loc="best", frameon=False)

    panel(grid[0, 0], pretrain_log, "pretrained generator (L1)", "black", first=True)
    statuses = status_of(health)
    for r, (w_per, lr) in enumerate(row_keys, start=1):
        for c, w_adv in enumerate(w_advs):
            cell = Cell(float(w_per), float(w_adv), float(lr))
            if cell.name not in logs:
                continue
            status = statuses.get(cell.name, "ok")
            title = f"W_per {format_number(w_per)}, LR {format_number(lr)}, W_adv {format_number(w_adv)}"
            if status != "ok":
                title += f"\n{status.upper()}"
            panel(
                grid[r, c],
                logs[cell.name],
                title,
                STATUS_COLOURS[status],
                first=(r == 1 and c == len(w_advs) - 1),
            )
    fig.suptitle(
        "Training health: per-epoch losses (top, log scale) and discriminator mean logits (bottom) "
        "of every network; rows W_per x LR, columns W_adv",
        fontsize=9,
    )
    fig.savefig(png_path, bbox_inches="tight")
    plt.close(fig)
