"""A small simulated study in the file formats the report reads.

Evaluation CSVs, reference CSVs, example images and dataset arrays follow the evaluation contract;
the statistics folder follows ``advmri.stats``' file contract, its numbers computed by plain cell
means and paired t-tests (the report only reads them, so any consistent numbers serve).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from advmri.grid import Cell

RESPONSES = ("ge", "sharpness", "ece", "mie", "ssim")
TERMS = ("lr", "w_per", "w_adv", "lr:w_per", "lr:w_adv", "w_per:w_adv", "lr:w_per:w_adv")
SHAPE = (208, 176)


@dataclass
class Study:
    root: Path
    grid: dict
    eval_csvs: list[Path]
    references: dict[str, Path]
    examples: list[Path]
    dataset: dict[str, Path]
    stats_dir: Path
    example_samples: list[int]
    config: dict = field(default_factory=dict)


def simulate_evals(grid: dict, samples: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Per-image metrics where adversarial training lowers GE and raises sharpness."""
    rng = np.random.default_rng(seed)
    image_effect = rng.normal(0, 0.2, size=len(samples))
    frames = []
    for w_per, w_adv, lr in itertools.product(grid["w_per"], grid["w_adv"], grid["lr"]):
        gain = np.log1p(w_adv)  # bigger W_adv, better GE
        noise = rng.normal(0, 0.05, size=(5, len(samples)))
        frames.append(
            pd.DataFrame(
                {
                    "sample": samples,
                    "subject": [f"sub{s // 6:03d}" for s in samples],
                    "w_per": w_per,
                    "w_adv": w_adv,
                    "lr": lr,
                    "ge": np.exp(-2 - 0.4 * gain + 0.02 * w_per + image_effect + noise[0]),
                    "sharpness": np.exp(1 + 0.3 * gain + image_effect + noise[1]),
                    "ece": np.exp(-3 + 0.01 * gain + image_effect + noise[2]),
                    "mie": np.exp(-2.5 + 0.05 * gain + image_effect + noise[3]),
                    "ssim": 0.8 - 0.01 * gain + 0.1 * image_effect + noise[4] / 10,
                    "sharpness_profiles_fitted": 8,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def crafted_stats(evals: pd.DataFrame, out: Path) -> None:
    """Write the statistics folder (file contract of ``advmri.stats``) from cell means."""
    out.mkdir(parents=True, exist_ok=True)
    model = evals.copy()
    for r in ("ge", "sharpness", "ece", "mie"):
        model[r] = np.log(model[r])
    rows = []
    for response in RESPONSES:
        for (lr, w_per, w_adv), g in model.groupby(["lr", "w_per", "w_adv"]):
            n = len(g)
            est, se = g[response].mean(), g[response].std() / np.sqrt(n)
            half = sps.t.ppf(0.975, n - 1) * se
            rows.append((response, lr, w_per, w_adv, est, se, n - 1, est - half, est + half))
    emmeans = pd.DataFrame(
        rows,
        columns=["response", "lr", "w_per", "w_adv", "estimate", "se", "df", "ci_low", "ci_high"],
    )
    emmeans.to_csv(out / "emmeans.csv", index=False)

    ge = emmeans[emmeans["response"] == "ge"]

    def pick(rows: pd.DataFrame) -> pd.Series:
        return rows.loc[rows["estimate"].idxmin()]

    def test_row(level: str, w_per: float, lr: float | None, vgg: pd.Series, gan: pd.Series):
        row = {
            "level": level,
            "w_per": w_per,
            "lr": lr,
            "vgg_lr": vgg["lr"],
            "vgg_w_adv": vgg["w_adv"],
            "gan_lr": gan["lr"],
            "gan_w_adv": gan["w_adv"],
        }
        for response in RESPONSES:
            a, b = (
                model[
                    (model["w_per"] == w_per)
                    & (model["w_adv"] == net["w_adv"])
                    & (model["lr"] == net["lr"])
                ]
                .sort_values("sample")[response]
                .to_numpy()
                for net in (vgg, gan)
            )
            t, p = sps.ttest_rel(a, b)
            row[f"{response}_F"], row[f"{response}_p"] = t**2, p
        return row

    table1 = []
    for w_per in sorted(set(model["w_per"])):
        at = ge[ge["w_per"] == w_per]
        table1.append(
            test_row("I", w_per, None, pick(at[at["w_adv"] == 0]), pick(at[at["w_adv"] > 0]))
        )
    for w_per in sorted(set(model["w_per"])):
        for lr in sorted(set(model["lr"])):
            at = ge[(ge["w_per"] == w_per) & (ge["lr"] == lr)]
            table1.append(
                test_row("II", w_per, lr, pick(at[at["w_adv"] == 0]), pick(at[at["w_adv"] > 0]))
            )
    pd.DataFrame(table1).to_csv(out / "table1.csv", index=False)

    anova = pd.DataFrame(
        [
            (r, t, 1.0, 100.0, 25.0 if t == "w_adv" else 0.5, 1e-6 if t == "w_adv" else 0.6)
            for r in RESPONSES
            for t in TERMS
        ],
        columns=["response", "term", "num_df", "den_df", "F", "p"],
    )
    anova.to_csv(out / "anova.csv", index=False)
    pd.DataFrame({"response": RESPONSES, "sample_var": 0.04, "residual_var": 0.0025}).to_csv(
        out / "variance.csv", index=False
    )
    pd.DataFrame(
        {
            "response": ["ge"],
            "family": ["w_adv"],
            "by_w_per": [np.nan],
            "by_lr": [np.nan],
            "a_lr": [np.nan],
            "a_w_per": [np.nan],
            "a_w_adv": [1.0],
            "b_lr": [np.nan],
            "b_w_per": [np.nan],
            "b_w_adv": [0.0],
            "estimate": [-0.3],
            "se": [0.01],
            "df": [500.0],
            "t_ratio": [-30.0],
            "p_adj": [1e-12],
        }
    ).to_csv(out / "tukey.csv", index=False)
    pd.DataFrame({"response": RESPONSES, "scale": "log", "shapiro_p": 0.3, "levene_p": 0.4}).to_csv(
        out / "diagnostics.csv", index=False
    )


def make_study(root: Path, grid: dict, n_samples: int = 12, k_examples: int = 2) -> Study:
    rng = np.random.default_rng(1)
    n_total = n_samples + 6
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    # smooth images: a PNG of pixel noise costs seconds to compress, which tests need not pay
    hq = np.repeat((0.2 + 0.4 * yy / SHAPE[0] * (xx / SHAPE[1]))[None], n_total, axis=0)
    hq = hq.astype(np.float32)
    lesion = np.zeros((n_total, *SHAPE), dtype=bool)
    bboxes = []
    for i in range(n_total):
        r0, c0 = 60 + i % 40, 50 + (3 * i) % 60
        r1, c1 = r0 + 14, c0 + 10
        lesion[i, r0:r1, c0:c1] = True
        hq[i, r0:r1, c0:c1] = 0.9
        bboxes.append((r0, c0, r1, c1))
    lq = hq.reshape(n_total, 26, 8, 22, 8).mean(axis=(2, 4)).repeat(8, axis=1).repeat(8, axis=2)
    data = root / "dataset"
    data.mkdir(parents=True)
    np.save(data / "hq.npy", hq)
    np.save(data / "lq.npy", lq.astype(np.float32))
    np.save(data / "lesion.npy", lesion)
    samples_table = pd.DataFrame(
        {
            "sample": np.arange(n_total),
            "subject": [f"sub{s // 6:03d}" for s in range(n_total)],
            "session": 1,
            "augmentation": np.arange(n_total) % 6,
            "bbox_r0": [b[0] for b in bboxes],
            "bbox_c0": [b[1] for b in bboxes],
            "bbox_r1": [b[2] for b in bboxes],
            "bbox_c1": [b[3] for b in bboxes],
            "lesion_tissue": "wm",
            "lesion_area_px": 140,
        }
    )
    samples_table.to_csv(data / "samples.csv", index=False)
    test_samples = np.arange(6, n_total)  # the first subject is "training"

    evals = simulate_evals(grid, test_samples)
    eval_dir, example_dir = root / "eval", root / "examples"
    eval_dir.mkdir()
    example_dir.mkdir()
    shown = test_samples[:k_examples]
    eval_csvs, examples = [], []
    for (w_per, w_adv, lr), table in evals.groupby(["w_per", "w_adv", "lr"]):
        cell = Cell(w_per, w_adv, lr)
        path = eval_dir / f"{cell.name}.csv"
        table.to_csv(path, index=False)
        eval_csvs.append(path)
        enhanced = np.clip(
            hq[shown] + rng.normal(0, 0.03 / (1 + w_adv), (len(shown), *SHAPE)), 0, 1
        )
        npz = example_dir / f"{cell.name}.npz"
        np.savez(npz, sample=shown.astype(np.int64), enhanced=enhanced.astype(np.float32))
        examples.append(npz)
    references = {}
    for label, name, scale in (("LQ input", "lq", 2.0), ("pretrained generator", "pretrain", 1.3)):
        ref = evals[(evals["w_per"] == grid["w_per"][0]) & (evals["w_adv"] == 0)].copy()
        ref = ref[ref["lr"] == grid["lr"][0]]
        ref[["w_per", "w_adv", "lr"]] = np.nan
        ref[["ge", "mie", "ece"]] *= scale
        path = root / "reference" / f"{name}.csv"
        path.parent.mkdir(exist_ok=True)
        ref.to_csv(path, index=False)
        references[label] = path
    stats_dir = root / "report" / "stats"
    crafted_stats(evals, stats_dir)
    config = {
        "seed": 2024,
        "grid": grid,
        "perceptual": {"weights": "imagenet", "weights_path": None},
        "stats": {
            "table1": {"test": "paired", "selection": "all"},
            "figures": {"w_per": grid["w_per"][-1], "lr": grid["lr"][0]},
        },
    }
    return Study(
        root=root,
        grid=grid,
        eval_csvs=eval_csvs,
        references=references,
        examples=examples,
        dataset={
            "hq": data / "hq.npy",
            "lq": data / "lq.npy",
            "lesion": data / "lesion.npy",
            "samples": data / "samples.csv",
        },
        stats_dir=stats_dir,
        example_samples=[int(s) for s in shown],
        config=config,
    )


SMALL_GRID = {"w_per": [0.5, 1.0], "w_adv": [0.0, 0.5, 1.0], "lr": [0.001, 0.01]}


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return make_study(tmp_path_factory.mktemp("study"), SMALL_GRID)
