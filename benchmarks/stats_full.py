"""Time the study statistics on the paper's full design (216 networks x 540 images x 5 responses).

    PYTHONPATH=src .venv/bin/python benchmarks/stats_full.py [--missing 0.02] [--threads 2]

Simulates evaluation CSVs of that size (advmri.stats.simulate), then times
run_study_statistics (reading and checking the CSVs, the missing-value counts, all fits, ANOVA,
EMMs, every Tukey family, Table 1, diagnostics and their plot, which a second process draws while
the tables are computed). With --missing > 0 a fraction of sharpness values is NaN (with
sharpness_profiles_fitted = 0, counted in missing.csv), so sharpness takes the REML path instead
of the closed form. Prints Table 1, the rows of each file written and the total.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=540)
    parser.add_argument("--missing", type=float, default=0.0, help="fraction of NaN sharpness")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (the 2-core budget)")
    parser.add_argument("--table1-selection", default="all", choices=["all", "split_half"])
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    from advmri.stats import run_study_statistics
    from advmri.stats.simulate import simulate_eval_table, write_eval_csvs

    grid = {
        "w_per": [0.5, 0.7, 1.0, 1.2, 1.5, 2.0],
        "w_adv": [0, 0.0001, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5,
                  1, 1.2, 1.5, 2, 3],
        "lr": [0.001, 0.01],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        table = simulate_eval_table(grid, args.images, seed=1, sharpness_missing=args.missing)
        paths = write_eval_csvs(table, Path(tmp) / "eval")
        t1 = time.perf_counter()
        print(f"simulate + write {len(paths)} CSVs ({len(table)} rows): {t1 - t0:.1f} s")
        run_study_statistics(paths, Path(tmp) / "stats", table1_selection=args.table1_selection)
        t2 = time.perf_counter()
        print((Path(tmp) / "stats" / "table1.md").read_text())
        sizes = {
            p.name: sum(1 for _ in p.open()) - 1
            for p in sorted((Path(tmp) / "stats").glob("*.csv"))
        }
        print(f"rows written: {sizes}")
        print(
            f"statistics, full design (216 x {args.images} x 5, missing={args.missing}, "
            f"threads={args.threads}): {t2 - t1:.1f} s"
        )


if __name__ == "__main__":
    main()
