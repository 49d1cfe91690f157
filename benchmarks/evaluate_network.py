"""Time the evaluation of one network on a paper-sized test split (540 images of 208 x 176).

Builds a synthetic dataset in the contract format (smooth background, one elliptic lesion with
a logistic edge per image, LQ = 8 x 8 block means upsampled by nearest neighbour plus noise) in a
temporary folder, saves a randomly initialised default-size UNet (depth 4, 64 base features)
with ``advmri.models.save_generator`` and runs ``advmri.evaluation.evaluate_network`` on
it, reporting the inference and metric times separately. Random weights run exactly the same
arithmetic as trained ones; only the fraction of profiles that fit differs.

    python benchmarks/evaluate_network.py [--images 540] [--infer-images K] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from scipy import ndimage
from scipy.special import expit

from advmri.evaluation import evaluate_network, load_test_set
from advmri.metrics.evaluate import MetricSettings, evaluate_arrays
from advmri.models import UNet, load_generator, save_generator
from advmri.models.inference import run_network

H, W = 208, 176
#: The study's metrics settings, as config.yaml gives them.
SETTINGS = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())[
    "metrics"
]


def write_dataset(root: Path, n_images: int, seed: int = 0) -> tuple[Path, Path]:
    """A dataset whose test split has ``n_images`` images (6 per subject, like the paper)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:H, 0:W]
    n_subjects = -(-n_images // 6)
    hq = np.empty((n_images, H, W), np.float32)
    lesion = np.empty((n_images, H, W), bool)
    table = []
    for i in range(n_images):
        cr, cc = rng.uniform(50, H - 50), rng.uniform(50, W - 50)
        ar, ac = rng.uniform(4, 14, 2)
        angle = rng.uniform(0, np.pi)
        u = (rows - cr) * np.cos(angle) + (cols - cc) * np.sin(angle)
        v = -(rows - cr) * np.sin(angle) + (cols - cc) * np.cos(angle)
        radius = np.sqrt((u / ar) ** 2 + (v / ac) ** 2)
        edge = expit(rng.uniform(0.6, 2.0) * min(ar, ac) * (1.0 - radius))
        background = ndimage.gaussian_filter(rng.random((H, W)), 6) * 1.5
        image = np.clip(0.2 + background * 0.4 + 0.35 * edge, 0, 1)
        mask = radius < 1.0
        r, c = np.nonzero(mask)
        hq[i], lesion[i] = image, mask
        table.append(
            {
                "sample": i,
                "subject": f"S{i // 6:03d}",
                "session": f"S{i // 6:03d}_MR1",
                "augmentation": i % 6,
                "bbox_r0": r.min(),
                "bbox_c0": c.min(),
                "bbox_r1": r.max() + 1,
                "bbox_c1": c.max() + 1,
                "lesion_tissue": "wm",
                "lesion_area_px": int(mask.sum()),
            }
        )
    blocks = hq.reshape(n_images, H // 8, 8, W // 8, 8).mean(axis=(2, 4))
    lq = np.repeat(np.repeat(blocks, 8, axis=1), 8, axis=2)
    lq = np.clip(lq + rng.normal(0, 0.02, lq.shape), 0, 1).astype(np.float32)
    dataset = root / "dataset"
    dataset.mkdir()
    np.save(dataset / "hq.npy", hq)
    np.save(dataset / "lq.npy", lq)
    np.save(dataset / "lesion.npy", lesion)
    pd.DataFrame(table).to_csv(dataset / "samples.csv", index=False)
    split = root / "split.csv"
    subjects = [f"S{s:03d}" for s in range(n_subjects)]
    pd.DataFrame({"subject": subjects, "split": "test"}).to_csv(split, index=False)
    return dataset, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=540, help="test images (paper: 540)")
    parser.add_argument(
        "--infer-images",
        type=int,
        default=None,
        help="run the UNet on only the first k images and extrapolate its time linearly "
        "(CPU inference of the default UNet takes seconds per image); default: all",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    k = args.images if args.infer_images is None else min(args.infer_images, args.images)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset, split = write_dataset(root, args.images)
        torch.manual_seed(0)
        network = root / "generator.pt"
        save_generator(UNet(depth=4, base_features=64), network, {"stage": "benchmark"})
        cfg = MetricSettings.from_config(SETTINGS)
        test = load_test_set(dataset, split)

        start = time.perf_counter()
        model, _ = load_generator(network, args.device)
        enhanced = run_network(model, test.lq[:k], cfg.batch_size, args.device)
        t_infer = time.perf_counter() - start
        sub = test.samples.iloc[:k]
        start = time.perf_counter()
        table = evaluate_arrays(enhanced, test.hq[:k], test.lesion[:k], sub, cfg)
        t_metrics_net = time.perf_counter() - start
        # metrics of all images: the LQ input in place of a network output
        start = time.perf_counter()
        lq_table = evaluate_arrays(test.lq, test.hq, test.lesion, test.samples, cfg)
        t_metrics_lq = time.perf_counter() - start
        t_total = None
        if k == args.images:  # the whole call, as the rule runs it
            start = time.perf_counter()
            evaluate_network(network, dataset, split, SETTINGS, args.device, args.threads)
            t_total = time.perf_counter() - start
    n = args.images
    fitted = int(table["sharpness_profiles_fitted"].sum())
    fitted_lq = int(lq_table["sharpness_profiles_fitted"].sum())
    figures = {
        "images": n,
        "image_size": [H, W],
        "device": args.device,
        "threads": args.threads,
        "unet": {"depth": 4, "base_features": 64, "weights": "random"},
        "inference_images_run": k,
        "inference_s_per_image": round(t_infer / k, 3),
        "inference_s_for_all_images": round(t_infer * n / k, 1),
        "metrics_s_network_output_per_image": round(t_metrics_net / k, 4),
        "metrics_s_lq_input_all_images": round(t_metrics_lq, 2),
        "estimated_evaluate_network_s": round(t_infer * n / k + t_metrics_lq, 1),
        "measured_evaluate_network_s": None if t_total is None else round(t_total, 1),
        "profiles_fitted_network": f"{fitted} of {8 * k} (random weights)",
        "profiles_fitted_lq_input": f"{fitted_lq} of {8 * n}",
        "cpu_count_visible": os.cpu_count(),
        "torch": torch.__version__,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
