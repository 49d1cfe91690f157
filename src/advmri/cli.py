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
