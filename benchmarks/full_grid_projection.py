"""Projected wall time of the paper's whole grid from a measured fine-tune step rate.

The work is counted from ``config.yaml``: every grid cell x ``finetune.epochs`` x the training
images (the OASIS-1 study: ``--patients`` sessions x ``synthesis.samples_per_subject``, minus the
test and validation patients as ``advmri.data.split`` takes them), plus the L1 pretraining. The rate
comes from benchmarks/train_step.py's CSV (its ``advmri`` row, or ``--variant``), times the
speed-up of running several cells per device from benchmarks/concurrent_finetune.py's CSV when
given. Where no GPU rate was measured, ``--peak-fraction`` adds what the grid would take at that
fraction of an H100's dense bf16 peak, from the step's counted FLOPs: an estimate, marked as one.

    python benchmarks/full_grid_projection.py --train-step-csv benchmarks/results/train_step.csv \
        [--concurrent-csv benchmarks/results/concurrent_finetune.csv] [--peak-fraction 0.25 0.4]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import write_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
H100_BF16_PEAK_TFLOPS = 989.4


def training_images(config: dict, patients: int) -> int:
    """Training images of the study: ``advmri.data.split`` rounds each share to whole patients."""
    test = round(patients * config["split"]["test_fraction"])
    val = round((patients - test) * config["split"]["val_fraction"])
    return (patients - test - val) * config["synthesis"]["samples_per_subject"]


def grid_cells(config: dict) -> int:
    grid = config["grid"]
    return len(grid["w_per"]) * len(grid["w_adv"]) * len(grid["lr"])


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def human(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:,.1f} h ({hours / 24:,.2f} days)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--patients", type=int, default=436, help="OASIS-1 sessions (paper: 436)")
    parser.add_argument("--train-step-csv", type=Path, required=True)
    parser.add_argument("--variant", default="advmri")
    parser.add_argument("--concurrent-csv", type=Path, default=None)
    parser.add_argument("--peak-fraction", type=float, nargs="*", default=[])
    parser.add_argument("--out", default="benchmarks/results/full_grid_projection.csv")
    args = parser.parse_args(argv)

    config = yaml.safe_load(args.config.read_text())
    images = training_images(config, args.patients)
    cells = grid_cells(config)
    finetune_steps = cells * config["finetune"]["epochs"] * images
    pretrain_steps = config["pretrain"]["epochs"] * images
    rows_by_variant = {row["variant"]: row for row in read_rows(args.train_step_csv)}
    step = rows_by_variant[args.variant]
    rate = float(step["image_steps_per_s"])
    speedup, processes = 1.0, 1
    if args.concurrent_csv:
        best = max(read_rows(args.concurrent_csv), key=lambda row: float(row["speedup_over_one"]))
        speedup, processes = float(best["speedup_over_one"]), int(best["processes"])
    gflop = float(step["gflop_per_image_step"])
    print(
        f"{cells} cells x {config['finetune']['epochs']} epochs x {images} training images = "
        f"{finetune_steps:.3e} fine-tune image-steps ({gflop:.0f} GFLOP each, "
        f"{finetune_steps * gflop / 1e9:.2e} PFLOP); pretraining {pretrain_steps:.2e} (L1 only)"
    )
    rows = []
    # pretraining has no VGG and no D: counting it at the fine-tune rate overstates it
    measured = (finetune_steps + pretrain_steps) / (rate * speedup)
    rows.append(
        {
            "basis": "measured",
            "device": step["device"],
            "image_steps_per_s": round(rate * speedup, 4),
            "processes_per_device": processes,
            "wall_seconds": round(measured),
            "wall": human(measured),
        }
    )
    for fraction in args.peak_fraction:
        flop_rate = fraction * H100_BF16_PEAK_TFLOPS * 1e12
        est_rate = flop_rate / (gflop * 1e9)
        seconds = (finetune_steps + pretrain_steps) / est_rate
        rows.append(
            {
                "basis": f"estimate at {fraction:.0%} of H100 bf16 peak (not measured)",
                "device": "H100 (estimate)",
                "image_steps_per_s": round(est_rate, 2),
                "processes_per_device": "",
                "wall_seconds": round(seconds),
                "wall": human(seconds),
            }
        )
    for row in rows:
        print(
            f"{row['basis']:48s} {row['device']:22s} {row['image_steps_per_s']:>10} img-steps/s -> {row['wall']}"
        )
    write_rows(rows, Path(args.out))


if __name__ == "__main__":
    main()
