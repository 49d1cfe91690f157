"""Simulated evaluation tables in the metrics stage's CSV format (for tests, benchmarks, demos).

The simulated study mimics the paper's shape: adversarial training (W_adv > 0) lowers GE and
raises sharpness, MIE rises and SSIM falls slightly, every test image has its own level of every
metric (the repeated-measures structure the mixed model accounts for), and each network has a
small idiosyncratic effect (so interactions are not exactly zero).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from advmri.grid import Cell, grid_cells

#: A small grid for tests: 2 LR x 2 W_per x 3 W_adv.
SMALL_GRID: dict[str, list[float]] = {
    "w_per": [0.5, 1.0],
    "w_adv": [0.0, 0.5, 3.0],
    "lr": [0.001, 0.01],
}

#: Columns of an evaluation CSV, in the metrics stage's order.
EVAL_CSV_COLUMNS: list[str] = [
    "sample", "subject", "w_per", "w_adv", "lr",
    "ge", "sharpness", "ece", "mie", "ssim", "sharpness_profiles_fitted",
]  # fmt: skip


def simulate_eval_table(
    grid: dict[str, list[float]],
    n_images: int,
    seed: int = 0,
    sharpness_missing: float = 0.0,
    adversarial_gain: float = 0.05,
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

    Returns
    -------
    DataFrame with the columns of ``EVAL_CSV_COLUMNS``, one row per (network, image).
    """
    rng = np.random.default_rng(seed)
    cells = grid_cells(grid)
    w_max = max(max(grid["w_adv"]), 1e-12)
    # Image levels of the five metrics (correlated through a shared difficulty).
    difficulty = rng.normal(size=n_images)
    image = {
        "ge": 0.35 * difficulty + 0.15 * rng.normal(size=n_images),
        "sharpness": -0.25 * difficulty + 0.2 * rng.normal(size=n_images),
        "ece": 0.3 * difficulty + 0.2 * rng.normal(size=n_images),
        "mie": 0.4 * difficulty + 0.1 * rng.normal(size=n_images),
        "ssim": -0.04 * difficulty + 0.01 * rng.normal(size=n_images),
    }
    frames = []
    for cell in cells:
        dose = np.log1p(cell.w_adv) / np.log1p(w_max)  # 0 at W_adv = 0, 1 at the largest
        lr_shift = 0.03 if cell.lr == max(grid["lr"]) else 0.0
        per_shift = 0.02 * (cell.w_per - 1.0)
        own = rng.normal(scale=0.01, size=5)
        mean = {
            "ge": -2.0 - adversarial_gain * dose + lr_shift + per_shift + own[0],
            "sharpness": 0.8 + 0.6 * adversarial_gain * dose - lr_shift + own[1],
            "ece": -3.0 + 0.08 * adversarial_gain * dose + per_shift + own[2],
            "mie": -3.5 + 0.12 * adversarial_gain * dose + lr_shift + own[3],
            "ssim": 0.85 - 0.048 * adversarial_gain * dose - 0.1 * lr_shift + own[4] / 10,
        }
        noise = {"ge": 0.12, "sharpness": 0.15, "ece": 0.1, "mie": 0.08, "ssim": 0.008}
        values = {k: mean[k] + image[k] + noise[k] * rng.normal(size=n_images) for k in mean}
        fitted = np.where(rng.random(n_images) < sharpness_missing, 0, 8)
        frame = pd.DataFrame(
            {
                "sample": np.arange(n_images),
                "subject": [f"OAS1_{i // 3:04d}_MR1" for i in range(n_images)],
                "w_per": cell.w_per,
                "w_adv": cell.w_adv,
                "lr": cell.lr,
                "ge": np.exp(values["ge"]),
                "sharpness": np.where(fitted > 0, np.exp(values["sharpness"]), np.nan),
                "ece": np.exp(values["ece"]),
                "mie": np.exp(values["mie"]),
                "ssim": np.clip(values["ssim"], -1.0, 1.0),
                "sharpness_profiles_fitted": fitted,
            }
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[EVAL_CSV_COLUMNS]


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
) -> list[Path]:
    """Simulate a study (default :data:`SMALL_GRID`, 24 images) and write its evaluation CSVs.

    Arguments as :func:`simulate_eval_table`; returns the paths, ``<out_dir>/<cell name>.csv``.
    """
    table = simulate_eval_table(
        grid or SMALL_GRID, n_images, seed, sharpness_missing, adversarial_gain
    )
    return write_eval_csvs(table, out_dir)
