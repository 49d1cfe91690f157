"""Simulated evaluation tables in the metrics stage's CSV format (for tests, benchmarks, demos).

The simulated study mimics the paper's shape: adversarial training (W_adv > 0) lowers GE and
raises sharpness, MIE rises and SSIM falls slightly (any other registered response improves in
its ``better`` direction), every test image has its own level of every
metric (the repeated-measures structure the mixed model accounts for), and each network has a
small idiosyncratic effect (so interactions are not exactly zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.grid import Cell, grid_cells
from advmri.metrics.registry import (
    PAPER_RESPONSES,
    PROFILES_FITTED,
    Response,
    select_responses,
)

#: A small grid for tests: 2 LR x 2 W_per x 3 W_adv.
SMALL_GRID: dict[str, list[float]] = {
    "w_per": [0.5, 1.0],
    "w_adv": [0.0, 0.5, 3.0],
    "lr": [0.001, 0.01],
}


@dataclass(frozen=True)
class SimulatedShape:
    """How one response behaves in the simulated study, on its model scale.

    The cell mean is ``base + adversarial * gain * dose + lr * lr_shift + per * per_shift +
    own / own_divisor``; each image adds ``difficulty * d + spread * z`` (``d`` shared by all
    responses), each (network, image) ``noise * z``.
    """

    base: float
    adversarial: float
    lr: float
    per: float
    own_divisor: float
    difficulty: float
    spread: float
    noise: float


#: The paper's five: adversarial training lowers GE and raises sharpness, MIE and ECE rise and SSIM
#: falls slightly.
PAPER_SHAPES: dict[str, SimulatedShape] = {
    "ge": SimulatedShape(-2.0, -1.0, 1.0, 1.0, 1.0, 0.35, 0.15, 0.12),
    "sharpness": SimulatedShape(0.8, 0.6, -1.0, 0.0, 1.0, -0.25, 0.2, 0.15),
    "ece": SimulatedShape(-3.0, 0.08, 0.0, 1.0, 1.0, 0.3, 0.2, 0.1),
    "mie": SimulatedShape(-3.5, 0.12, 1.0, 0.0, 1.0, 0.4, 0.1, 0.08),
    "ssim": SimulatedShape(0.85, -0.048, -0.1, 0.0, 10.0, -0.04, 0.01, 0.008),
}


def simulated_shape(response: Response) -> SimulatedShape:
    """The paper's shape of a paper response; any other improves with adversarial training
    (in its registered ``better`` direction), around 1 (log scale) or 0.5 (identity)."""
    if response.name in PAPER_SHAPES:
        return PAPER_SHAPES[response.name]
    base = 0.0 if response.scale == "log" else 0.5
    return SimulatedShape(base, 0.5 * response.sign, 0.0, 0.0, 1.0, 0.3, 0.1, 0.1)


def eval_csv_columns(responses: Sequence[str] = PAPER_RESPONSES) -> list[str]:
    """Columns of a simulated evaluation CSV: ``sample, subject, w_per, w_adv, lr``, the
    responses (study order) and ``sharpness_profiles_fitted`` when sharpness is among them."""
    chosen = select_responses(responses, key="responses")
    extra = [PROFILES_FITTED] if any(r.name == "sharpness" for r in chosen) else []
    return ["sample", "subject", "w_per", "w_adv", "lr", *(r.name for r in chosen), *extra]


#: Columns of an evaluation CSV of the paper's five responses, in the metrics stage's order.
EVAL_CSV_COLUMNS: list[str] = eval_csv_columns()


def simulate_eval_table(
    grid: dict[str, list[float]],
    n_images: int,
    seed: int = 0,
    sharpness_missing: float = 0.0,
    adversarial_gain: float = 0.05,
    responses: Sequence[str] = PAPER_RESPONSES,
) -> pd.DataFrame:
    """One long evaluation table: every network of ``grid`` on the same ``n_images`` images.

    Parameters
    ----------
    grid : {"w_per": [...], "w_adv": [...], "lr": [...]}, as in config.yaml.
    n_images : number of test images (samples 0..n_images-1, 3 per subject).
    seed : seed of numpy's default generator.
    sharpness_missing : fraction of rows whose sigmoid fits all failed (sharpness NaN,
        ``sharpness_profiles_fitted`` 0).
    adversarial_gain : how much ln(GE) falls from W_adv = 0 to the largest W_adv; the other
        metrics move in proportion (sharpness up, MIE and ECE up, SSIM down). The default 0.05
        gives Table 1 GE F ratios of the paper's order (tens) on 540 images; small test designs
        need ~0.25 to show the effect.
    responses : registered responses to simulate (:func:`simulated_shape`); default the
        paper's five, whose values do not depend on which others are simulated with them only
        when the same set is simulated (one random stream).

    Returns
    -------
    DataFrame with the columns of :func:`eval_csv_columns`, one row per (network, image).
    """
    chosen = select_responses(responses, key="responses")
    shapes = {r.name: simulated_shape(r) for r in chosen}
    rng = np.random.default_rng(seed)
    cells = grid_cells(grid)
    w_max = max(max(grid["w_adv"]), 1e-12)
    # Image levels of the metrics (correlated through a shared difficulty).
    difficulty = rng.normal(size=n_images)
    image = {
        k: shape.difficulty * difficulty + shape.spread * rng.normal(size=n_images)
        for k, shape in shapes.items()
    }
    frames = []
    for cell in cells:
        dose = np.log1p(cell.w_adv) / np.log1p(w_max)  # 0 at W_adv = 0, 1 at the largest
        lr_shift = 0.03 if cell.lr == max(grid["lr"]) else 0.0
        per_shift = 0.02 * (cell.w_per - 1.0)
        own = rng.normal(scale=0.01, size=len(shapes))
        mean = {
            k: shape.base
            + shape.adversarial * adversarial_gain * dose
            + shape.lr * lr_shift
            + shape.per * per_shift
            + own[i] / shape.own_divisor
            for i, (k, shape) in enumerate(shapes.items())
        }
        values = {
            k: mean[k] + image[k] + shape.noise * rng.normal(size=n_images)
            for k, shape in shapes.items()
        }
        fitted = np.where(rng.random(n_images) < sharpness_missing, 0, 8)
        frame = pd.DataFrame(
            {
                "sample": np.arange(n_images),
                "subject": [f"OAS1_{i // 3:04d}_MR1" for i in range(n_images)],
                "w_per": cell.w_per,
                "w_adv": cell.w_adv,
                "lr": cell.lr,
            }
        )
        for response in chosen:
            value = values[response.name]
            if response.scale == "log":
                value = np.exp(value)
            elif response.name == "ssim":
                value = np.clip(value, -1.0, 1.0)
            if response.name == "sharpness":
                value = np.where(fitted > 0, value, np.nan)
            frame[response.name] = value
        frame[PROFILES_FITTED] = fitted
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[eval_csv_columns(responses)]


def write_eval_csvs(table: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write a long evaluation table as one CSV per network, ``<out_dir>/<cell name>.csv``.

    Returns the paths written, in the table's network order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for (w_per, w_adv, lr), rows in table.groupby(["w_per", "w_adv", "lr"], sort=False):
        path = out_dir / f"{Cell(float(w_per), float(w_adv), float(lr)).name}.csv"
        rows.to_csv(path, index=False)
        paths.append(path)
    return paths


def write_simulated_eval_csvs(
    out_dir: str | Path,
    grid: dict[str, list[float]] | None = None,
    n_images: int = 24,
    seed: int = 0,
    sharpness_missing: float = 0.0,
    adversarial_gain: float = 0.05,
    responses: Sequence[str] = PAPER_RESPONSES,
) -> list[Path]:
    """Simulate a study (default :data:`SMALL_GRID`, 24 images) and write its evaluation CSVs.

    Arguments as :func:`simulate_eval_table`; returns the paths, ``<out_dir>/<cell name>.csv``.
    """
    table = simulate_eval_table(
        grid or SMALL_GRID, n_images, seed, sharpness_missing, adversarial_gain, responses
    )
    return write_eval_csvs(table, out_dir)
