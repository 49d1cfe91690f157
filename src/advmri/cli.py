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
    )


def _enhance(args: argparse.Namespace) -> None:
    from advmri.enhance import enhance_file

    def warn(line: str) -> None:
        print(f"advmri enhance: warning: {line}", file=sys.stderr)

    result = enhance_file(
        input_path=args.input,
        output_path=args.output,
        network=args.network,
        degrade=args.degrade,
        degraded_path=args.degraded_out,
        seed=args.seed,
        device=args.device,
        batch_size=args.batch_size,
        config=args.config,
        progress=True,
        warn=warn,
    )
    print(f"advmri enhance: {result.describe()}", file=sys.stderr)


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
    stats.set_defaults(run=_stats)

    enhance = commands.add_parser(
        "enhance",
        help="enhance every axial slice of a NIfTI volume with a trained generator",
        description="Enhance every axial slice of a 3-D NIfTI volume with a trained generator; "
        "the output keeps the input's shape, affine and header (float32).",
    )
    enhance.add_argument("input", help="the scan: a 3-D NIfTI (.nii or .nii.gz), any orientation")
    enhance.add_argument("output", help="the enhanced volume (.nii or .nii.gz)")
    enhance.add_argument(
        "--network", required=True, help="results/networks/<cell>/generator.pt (or pretrain)"
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
    enhance.add_argument("--seed", type=int, default=2024, help="seed of --degrade's noise")
    enhance.add_argument(
        "--config",
        default=None,
        help="study config merged over config.yaml: --degrade's synthesis.noise_std and "
        "kspace_fraction (default: the network file's, else config.yaml's)",
    )
    enhance.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA when present"
    )
    enhance.add_argument("--batch-size", type=int, default=8, help="slices per forward pass")
    enhance.set_defaults(run=_enhance)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except AdvmriError as error:
        print(f"advmri {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
