"""The ``advmri`` command line: the parts of the study users run outside Snakemake."""

from __future__ import annotations

import argparse
import sys

from advmri.errors import AdvmriError


def _stats(args: argparse.Namespace) -> None:
    from advmri.stats import run_study_statistics

    run_study_statistics(
        eval_csvs=args.eval_csvs,
        out_dir=args.out,
        table1_test=args.table1_test,
        table1_selection=args.table1_selection,
        seed=args.seed,
        allow_missing_networks=args.allow_missing_networks,
    )


def _enhance(args: argparse.Namespace) -> None:
    from advmri.enhance import DEFAULT_SEED, INTENSITY_PERCENTILES, PIXEL_MM, enhance_file

    def warn(line: str) -> None:
        print(f"advmri enhance: warning: {line}", file=sys.stderr)

    # defaults resolved here, not in the parser, so that `advmri stats` does not import torch
    result = enhance_file(
        input_path=args.input,
        output_path=args.output,
        network=args.network,
        degrade=args.degrade,
        degraded_path=args.degraded_out,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        device=args.device,
        batch_size=args.batch_size,
        config=args.config,
        progress=True,
        warn=warn,
        pixel_mm=PIXEL_MM if args.pixel_mm is None else args.pixel_mm,
        intensity_percentiles=(
            INTENSITY_PERCENTILES
            if args.intensity_percentiles is None
            else tuple(args.intensity_percentiles)
        ),
    )
    print(f"advmri enhance: {result.describe()}", file=sys.stderr)


def _fetch_weights(args: argparse.Namespace) -> None:
    from advmri.models.perceptual import fetch_imagenet_weights

    path, downloaded = fetch_imagenet_weights(args.url)
    state = "downloaded to" if downloaded else "already in the cache:"
    print(f"advmri fetch-weights: VGG19 ImageNet weights {state} {path}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="advmri", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    stats = commands.add_parser(
        "stats",
        help="mixed-effects ANOVA, EMMs, Tukey HSD and Table 1 from evaluation CSVs",
    )
    stats.add_argument("eval_csvs", nargs="+", help="results/eval/<cell>.csv files")
    stats.add_argument(
        "--out", required=True, help="folder for anova.csv, tukey.csv, table1.md, ..."
    )
    stats.add_argument("--table1-test", choices=["paired", "pooled"], default="paired")
    stats.add_argument("--table1-selection", choices=["all", "split_half"], default="all")
    stats.add_argument("--seed", type=int, default=2024, help="seed of the split-half selection")
    stats.add_argument(
        "--allow-missing-networks",
        action="store_true",
        help="analyse an incomplete lr x w_per x w_adv grid (networks left out, e.g. diverged) "
        "instead of refusing it; tests are limited to what the present networks identify",
    )
    stats.set_defaults(run=_stats)

    enhance = commands.add_parser(
        "enhance",
        help="enhance every axial slice of a NIfTI volume with a trained generator",
        description="Enhance every axial slice of a 3-D NIfTI volume with a trained generator: "
        "slices are resampled to 1 mm pixels and centre-cropped or padded to 208 x 176 as in "
        "training, so only that central field of view is enhanced (the rest is copied); the "
        "output keeps the input's shape, affine and header (float32).",
    )
    enhance.add_argument("input", help="the scan: a 3-D NIfTI (.nii or .nii.gz), any orientation")
    enhance.add_argument("output", help="the enhanced volume (.nii or .nii.gz)")
    enhance.add_argument(
        "--network",
        required=True,
        metavar="DIR",
        help="a trained network's folder, results/networks/<cell>/ (or results/networks/pretrain/), "
        "holding generator.pt (the generator.pt file itself is accepted too)",
    )
    enhance.add_argument(
        "--degrade",
        action="store_true",
        help="treat the input as HQ: enhance its LQ version made as the dataset makes LQ inputs",
    )
    enhance.add_argument(
        "--degraded-out",
        default=None,
        help="where --degrade writes the LQ volume (default: OUTPUT with _lq before .nii[.gz])",
    )
    enhance.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of --degrade's noise, >= 0 (default: advmri.enhance.DEFAULT_SEED)",
    )
    enhance.add_argument(
        "--config",
        default=None,
        help="a study config whose synthesis.noise_std and kspace_fraction --degrade uses when "
        "the network file does not record them (default: advmri's, config.yaml's defaults)",
    )
    enhance.add_argument(
        "--pixel-mm",
        type=float,
        default=None,
        help="in-plane pixel size, mm, slices are resampled to before the network "
        "(default: the study's 1 mm)",
    )
    enhance.add_argument(
        "--intensity-percentiles",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=None,
        help="intensities mapped to 0 and 1: LOW-th percentile of all voxels, HIGH-th of the "
        "non-zero ones (default: 0.5 99.5; 0 100 = min-max)",
    )
    enhance.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA when present"
    )
    enhance.add_argument("--batch-size", type=int, default=8, help="slices per forward pass")
    enhance.set_defaults(run=_enhance)

    fetch = commands.add_parser(
        "fetch-weights",
        help="download the VGG19 ImageNet weights once into torch's cache (run on a login node)",
        description="Download torchvision's VGG19_Weights.IMAGENET1K_V1 into "
        "$TORCH_HOME/hub/checkpoints, the cache the training jobs read (perceptual.weights: "
        "imagenet). Run it once on a machine with internet access, with the TORCH_HOME the jobs "
        "will have; nothing is downloaded when the file is already there.",
    )
    fetch.add_argument(
        "--url",
        default=None,
        help="download from this address instead of torchvision's (a mirror of the same file, "
        "e.g. file:///shared/vgg19-dcbb9e9d.pth); its SHA-256 is checked",
    )
    fetch.set_defaults(run=_fetch_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except AdvmriError as error:
        message = str(error)
        # library messages name their stage ("stats: ..."); the command already says it once
        if message.startswith(f"{args.command}: "):
            message = message[len(args.command) + 2 :]
        print(f"advmri {args.command}: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
