"""advmri.stats equals R's lme4 + lmerTest + emmeans on a balanced and an unbalanced design.

The reference CSVs in tests/stats/reference/ were written by make_reference.R (R 4.2.2, lme4
1.1.31, lmerTest 3.1.3, emmeans 1.8.4.1; REML, type-III Satterthwaite ANOVA, Satterthwaite
EMMs and Tukey pairs); R is not needed to run these tests.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advmri.metrics.registry import PAPER_RESPONSES as RESPONSES
from advmri.stats import (
    anova_table,
    emmeans_table,
    fit_response,
    read_eval_tables,
    table1,
    tukey_table,
    variance_table,
)

REFERENCE = Path(__file__).parent / "reference"
DESIGNS = ("balanced", "unbalanced")
KEYS = {
    "anova": ["response", "term"],
    "variance": ["response"],
    "emmeans": ["response", "lr", "w_per", "w_adv"],
    "tukey": ["response", "family", "by_w_per", "by_lr", "a_lr", "a_w_per", "a_w_adv",
              "b_lr", "b_w_per", "b_w_adv"],
    "table1_paired": ["level", "w_per", "lr", "vgg_lr", "vgg_w_adv", "gan_lr", "gan_w_adv"],
    "table1_pooled": ["level", "w_per", "lr", "vgg_lr", "vgg_w_adv", "gan_lr", "gan_w_adv"],
}  # fmt: skip
# (kind, tolerance): "rel" relative difference, "abs" absolute difference.
TOLERANCE = {
    "estimate": ("rel", 1e-6), "t_ratio": ("rel", 1e-6),
    "se": ("rel", 1e-5), "sample_var": ("rel", 1e-5), "residual_var": ("rel", 1e-5),
    "ci_low": ("rel", 1e-5), "ci_high": ("rel", 1e-5),
    "F": ("rel", 2e-5), "den_df": ("rel", 1e-3), "df": ("rel", 1e-3), "num_df": ("abs", 0),
    "p": ("abs", 1e-6), "p_adj": ("abs", 1e-6),
}  # fmt: skip
for response in RESPONSES:
    TOLERANCE[f"{response}_F"] = ("rel", 2e-5)
    TOLERANCE[f"{response}_p"] = ("abs", 1e-6)


@pytest.fixture(scope="module", params=DESIGNS)
def ours(request):
    table = read_eval_tables([REFERENCE / f"{request.param}.csv"])
    fits = {r: fit_response(table, r) for r in RESPONSES}
    tables = {
        "anova": pd.concat([anova_table(f) for f in fits.values()]),
        "variance": pd.concat([variance_table(f) for f in fits.values()]),
        "emmeans": pd.concat([emmeans_table(f) for f in fits.values()]),
        "tukey": pd.concat([tukey_table(f) for f in fits.values()]),
        "table1_paired": table1(table, fits, test="paired"),
        "table1_pooled": table1(table, fits, test="pooled"),
    }
    return request.param, fits, tables


def differences(name: str, design: str, mine: pd.DataFrame) -> dict[str, float]:
    """Max difference per numeric column (relative or absolute as in TOLERANCE)."""
    theirs = pd.read_csv(REFERENCE / f"r_{design}_{name}.csv")
    keys = KEYS[name]
    theirs[keys] = theirs[keys].fillna(-1)
    mine = mine.copy()
    mine[keys] = mine[keys].fillna(-1)
    merged = theirs.merge(mine, on=keys, how="outer", suffixes=("_r", "_py"), indicator=True)
    assert (merged["_merge"] == "both").all(), f"{name}: rows differ from R's"
    assert len(merged) == len(theirs) == len(mine)
    out = {}
    for column in theirs.columns.difference(keys):
        r = merged[f"{column}_r"].to_numpy(float)
        py = merged[f"{column}_py"].to_numpy(float)
        kind, _ = TOLERANCE[column]
        diff = np.abs(py - r) if kind == "abs" else np.abs(py - r) / np.abs(r)
        out[column] = float(np.max(diff))
    return out


@pytest.mark.parametrize("name", list(KEYS))
def test_every_number_equals_r_within_the_stated_tolerance(ours, name):
    design, _, tables = ours
    diffs = differences(name, design, tables[name])
    print(f"\n{design} {name}: " + ", ".join(f"{c} {d:.1e}" for c, d in diffs.items()))
    for column, diff in diffs.items():
        assert diff <= TOLERANCE[column][1], f"{design} {name}.{column}: {diff:.3g} off R"


def test_unbalanced_reference_really_exercises_the_reml_path(ours):
    design, fits, _ = ours
    methods = {f.fit.method for f in fits.values()}
    assert methods == ({"closed_form"} if design == "balanced" else {"reml"})
