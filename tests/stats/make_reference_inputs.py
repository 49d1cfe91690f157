"""Write the two small designs that make_reference.R fits (run once; the CSVs are committed).

    PYTHONPATH=src .venv/bin/python tests/stats/make_reference_inputs.py
    Rscript tests/stats/make_reference.R

balanced.csv: 2 LR x 2 W_per x 3 W_adv networks x 12 images, complete.
unbalanced.csv: another draw with 7 rows removed, ~10 % of sharpness missing, one GE of 0
(dropped under the log) and one SSIM missing (its reason recorded in ``ssim_reason``, which the
statistics require of an empty value; R does not read that column).
"""

from pathlib import Path

import numpy as np

from advmri.stats.simulate import SMALL_GRID, simulate_eval_table

HERE = Path(__file__).parent / "reference"


def main() -> None:
    HERE.mkdir(exist_ok=True)
    balanced = simulate_eval_table(SMALL_GRID, n_images=12, seed=11, adversarial_gain=0.25)
    balanced.to_csv(HERE / "balanced.csv", index=False, float_format="%.17g")

    unbalanced = simulate_eval_table(
        SMALL_GRID, n_images=12, seed=12, sharpness_missing=0.1, adversarial_gain=0.25
    )
    rng = np.random.default_rng(12)
    unbalanced = unbalanced.drop(index=rng.choice(len(unbalanced), 7, replace=False))
    unbalanced = unbalanced.reset_index(drop=True)
    unbalanced.loc[3, "ge"] = 0.0
    unbalanced.loc[40, "ssim"] = np.nan
    unbalanced["ssim_reason"] = ""
    unbalanced.loc[40, "ssim_reason"] = "box_too_small"
    unbalanced.to_csv(HERE / "unbalanced.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
