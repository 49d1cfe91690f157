"""Time Figures 3-7 (and the whole report) for the paper's full design.

Simulates 216 networks (6 W_per x 18 W_adv x 2 LR) evaluated on 540 test images, in the files the
report reads: evaluation and reference CSVs, examples, dataset arrays and a statistics folder. The
statistics folder holds plain cell means and paired t tests in ``advmri.stats``' file format, or,
with ``--stats advmri``, the real ``advmri.stats.run_study_statistics`` output (timed separately).

    PYTHONPATH=src .venv/bin/python benchmarks/figures.py [--out DIR] [--stats simulated|advmri]

Prints one line per timed step; the target is figures < 60 s on 2 cores (issue 6, item 6).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from advmri.grid import Cell, grid_cells
from advmri.report.build import build_report, make_figures
from advmri.report.statistics import read_stats
from advmri.report.tables import RESPONSES, load_evaluations

FULL_GRID = {
    "w_per": [0.5, 0.7, 1.0, 1.2, 1.5, 2.0],
    "w_adv": [0, 0.0001, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.2]
    + [1.5, 2, 3],
    "lr": [0.001, 0.01],
}
SHAPE = (208, 176)


def simulate(root: Path, grid: dict, n_images: int, k_examples: int, seed: int = 0) -> dict:
    """Write a simulated study under ``root``; returns the paths ``build_report`` takes."""
    rng = np.random.default_rng(seed)
    data = root / "dataset"
    data.mkdir(parents=True)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    brain = (((yy - 104) / 90) ** 2 + ((xx - 88) / 75) ** 2 < 1).astype(np.float32)
    hq = np.repeat((0.5 * brain)[None], n_images, axis=0)
    hq += rng.normal(0, 0.02, hq.shape).astype(np.float32)
    centres = np.stack([rng.integers(60, 150, n_images), rng.integers(50, 130, n_images)], 1)
    radii = rng.integers(6, 14, n_images)
    for i, ((r, c), rad) in enumerate(zip(centres, radii, strict=True)):
        hq[i][(yy - r) ** 2 + (xx - c) ** 2 < rad**2] = 0.9
    hq = np.clip(hq, 0, 1)
    lq = hq.reshape(n_images, 26, 8, 22, 8).mean(axis=(2, 4)).repeat(8, 1).repeat(8, 2)
    np.save(data / "hq.npy", hq)
    np.save(data / "lq.npy", lq.astype(np.float32))
    samples = pd.DataFrame(
        {
            "sample": np.arange(n_images),
            "subject": [f"sub{i // 6:03d}" for i in range(n_images)],
            "session": 1,
            "augmentation": np.arange(n_images) % 6,
            "bbox_r0": centres[:, 0] - radii,
            "bbox_c0": centres[:, 1] - radii,
            "bbox_r1": centres[:, 0] + radii,
            "bbox_c1": centres[:, 1] + radii,
            "lesion_tissue": "wm",
            "lesion_area_px": (np.pi * radii**2).astype(int),
        }
    )
    samples.to_csv(data / "samples.csv", index=False)

    image_effect = rng.normal(0, 0.3, n_images)
    eval_dir, example_dir = root / "eval", root / "examples"
    eval_dir.mkdir()
    example_dir.mkdir()
    shown = np.arange(k_examples)
    eval_csvs, examples, frames = [], [], []
    for cell in grid_cells(grid):
        gain = np.log1p(cell.w_adv)
        noise = rng.normal(0, 0.1, (5, n_images))
        table = pd.DataFrame(
            {
                "sample": np.arange(n_images),
                "subject": samples["subject"],
                "w_per": cell.w_per,
                "w_adv": cell.w_adv,
                "lr": cell.lr,
                "ge": np.exp(-2 - 0.3 * gain + 0.02 * cell.w_per + image_effect + noise[0]),
                "sharpness": np.exp(1 + 0.2 * gain + image_effect + noise[1]),
                "ece": np.exp(-3 + image_effect + noise[2]),
                "mie": np.exp(-2.5 + 0.05 * gain + image_effect + noise[3]),
                "ssim": 0.8 - 0.01 * gain + 0.05 * image_effect + noise[4] / 20,
                "sharpness_profiles_fitted": 8,
            }
        )
        path = eval_dir / f"{cell.name}.csv"
        table.to_csv(path, index=False)
        eval_csvs.append(path)
        frames.append(table)
        enhanced = np.clip(hq[shown] + rng.normal(0, 0.02, (k_examples, *SHAPE)), 0, 1)
        npz = example_dir / f"{cell.name}.npz"
        np.savez(npz, sample=shown.astype(np.int64), enhanced=enhanced.astype(np.float32))
        examples.append(npz)
    references = {}
    for label, name in (("LQ input", "lq"), ("pretrained generator", "pretrain")):
        ref = frames[0].copy()
        ref[["w_per", "w_adv", "lr"]] = np.nan
        path = root / "reference" / f"{name}.csv"
        path.parent.mkdir(exist_ok=True)
        ref.to_csv(path, index=False)
        references[label] = path
    return {
        "eval_csvs": eval_csvs,
        "examples": examples,
        "references": references,
        "dataset": {
            "hq": data / "hq.npy",
            "lq": data / "lq.npy",
            "samples": data / "samples.csv",
        },
        "evals": pd.concat(frames, ignore_index=True),
    }


def simulated_stats(evals: pd.DataFrame, out: Path) -> None:
    """A statistics folder in ``advmri.stats``' format from cell means and paired t tests."""
    out.mkdir(parents=True, exist_ok=True)
    model = evals.copy()
    for r in ("ge", "sharpness", "ece", "mie"):
        model[r] = np.log(model[r])
    keys = ["lr", "w_per", "w_adv"]
    rows = []
    for response in RESPONSES:
        g = model.groupby(keys)[response].agg(["mean", "std", "count"]).reset_index()
        se = g["std"] / np.sqrt(g["count"])
        half = sps.t.ppf(0.975, g["count"] - 1) * se
        rows.append(
            pd.DataFrame(
                {
                    "response": response,
                    "lr": g["lr"],
                    "w_per": g["w_per"],
                    "w_adv": g["w_adv"],
                    "estimate": g["mean"],
                    "se": se,
                    "df": g["count"] - 1,
                    "ci_low": g["mean"] - half,
                    "ci_high": g["mean"] + half,
                }
            )
        )
    emmeans = pd.concat(rows, ignore_index=True)
    emmeans.to_csv(out / "emmeans.csv", index=False)
    by_cell = {
        Cell(*k).name: t.sort_values("sample") for k, t in model.groupby(["w_per", "w_adv", "lr"])
    }
    ge = emmeans[emmeans["response"] == "ge"]
    table1 = []
    groups = [("I", w, None) for w in FULL_GRID["w_per"]]
    groups += [("II", w, lr) for w in FULL_GRID["w_per"] for lr in FULL_GRID["lr"]]
    for level, w_per, lr in groups:
        at = ge[np.isclose(ge["w_per"], w_per)]
        if lr is not None:
            at = at[np.isclose(at["lr"], lr)]
        vgg = at[at["w_adv"] == 0].sort_values("estimate").iloc[0]
        gan = at[at["w_adv"] > 0].sort_values("estimate").iloc[0]
        row = {
            "level": level,
            "w_per": w_per,
            "lr": lr,
            "vgg_lr": vgg["lr"],
            "vgg_w_adv": vgg["w_adv"],
            "gan_lr": gan["lr"],
            "gan_w_adv": gan["w_adv"],
        }
        a = by_cell[Cell(w_per, vgg["w_adv"], vgg["lr"]).name]
        b = by_cell[Cell(w_per, gan["w_adv"], gan["lr"]).name]
        for response in RESPONSES:
            t, p = sps.ttest_rel(a[response], b[response])
            row[f"{response}_F"], row[f"{response}_p"] = t**2, p
        table1.append(row)
    pd.DataFrame(table1).to_csv(out / "table1.csv", index=False)
    terms = ["lr", "w_per", "w_adv", "lr:w_per", "lr:w_adv", "w_per:w_adv", "lr:w_per:w_adv"]
    pd.DataFrame(
        [(r, t, 1.0, 1000.0, 1.0, 0.5) for r in RESPONSES for t in terms],
        columns=["response", "term", "num_df", "den_df", "F", "p"],
    ).to_csv(out / "anova.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the simulated study here")
    parser.add_argument("--images", type=int, default=540)
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--stats", choices=["simulated", "advmri"], default="simulated")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="advmri-figures-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"cpus available: {len(os.sched_getaffinity(0))}; study in {root}")

    start = time.perf_counter()
    study = simulate(root, FULL_GRID, args.images, args.examples)
    print(f"simulate 216 networks x {args.images} images: {time.perf_counter() - start:.1f} s")
    stats_dir = root / "report" / "stats"
    start = time.perf_counter()
    if args.stats == "advmri":
        from advmri.stats import run_study_statistics

        run_study_statistics([str(p) for p in study["eval_csvs"]], str(stats_dir))
        print(f"advmri.stats.run_study_statistics: {time.perf_counter() - start:.1f} s")
    else:
        simulated_stats(study["evals"], stats_dir)
        print(f"simulated statistics folder: {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    evals = load_evaluations(study["eval_csvs"])
    stats = read_stats(stats_dir)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    make_figures(
        evals,
        stats,
        {p.stem: p for p in study["examples"]},
        study["dataset"],
        1.0,
        0.001,
        root / "report" / "figures",
    )
    drawn = time.perf_counter() - start
    print(f"read 216 evaluation CSVs + statistics: {loaded:.1f} s")
    print(f"figures 3-7 (full design): {drawn:.1f} s; with reading: {loaded + drawn:.1f} s")

    start = time.perf_counter()
    build_report(
        study["eval_csvs"],
        references=study["references"],
        examples=study["examples"],
        dataset=study["dataset"],
        config={
            "seed": 2024,
            "grid": FULL_GRID,
            "stats": {"figures": {"w_per": 1.0, "lr": 0.001}},
        },
        html_path=root / "report" / "report.html",
        md_path=root / "report" / "report.md",
        stats_dir=stats_dir,
        figures_dir=root / "report" / "figures",
        compute_statistics=False,
    )
    print(f"whole report from an existing statistics folder: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
