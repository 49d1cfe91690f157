"""Whether each headline result of the paper (study §9) holds on this run.

Every judgement is made from the statistics files alone: Table 1 (the two winners of each group and
the F test comparing them, per response) gives significance, and the estimated marginal means give the
direction of each difference (VGG+GAN minus VGG on the model scale: ln for GE, Sharpness, ECE, MIE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from advmri.errors import DataError
from advmri.grid import format_number
from advmri.report.tables import (
    emmeans_lookup,
    has_winners,
    table1_level,
    table1_responses,
    winners,
)

ALPHA = 0.05


@dataclass(frozen=True)
class Finding:
    """One headline claim and the verdict on this run.

    Attributes
    ----------
    claim : the paper's claim (study §9), in words.
    holds : True / False, or None when this run's grid cannot test it.
    evidence : how many groups support it and which do not, in words.
    p_value : for "in every group" claims the largest p among the groups (the weakest link); for
        "in most groups" claims the median p; None where no test applies.
    """

    claim: str
    holds: bool | None
    evidence: str
    p_value: float | None


def group_name(row: pd.Series) -> str:
    """``W_per 1`` for a level I group, ``W_per 1, LR 0.001`` for a level II group."""
    text = f"W_per {format_number(row['w_per'])}"
    if pd.notna(row.get("lr")) and table1_level(row["level"]) == "II":
        text += f", LR {format_number(row['lr'])}"
    return text


def table1_differences(table1: pd.DataFrame, emmeans: pd.DataFrame) -> pd.DataFrame:
    """Table 1 with each response's estimated difference VGG+GAN minus VGG added.

    Returns
    -------
    pd.DataFrame
        Table 1's rows (``level`` normalised to I/II) plus, for each response Table 1 tests,
        ``{response}_vgg``, ``{response}_gan`` (the two networks' EMMs on the model scale) and
        ``{response}_diff`` (gan - vgg).
        A network Table 1 names but ``emmeans.csv`` lacks is a DataError; a row without a
        winner (its network left out of the statistics) gets NaN.
    """
    lookup = emmeans_lookup(emmeans)
    out = table1.copy()
    out["level"] = out["level"].map(table1_level)
    for response in table1_responses(table1):
        vgg_values, gan_values = [], []
        for _, row in out.iterrows():
            if not has_winners(row):
                vgg_values.append(np.nan)
                gan_values.append(np.nan)
                continue
            pair = []
            for cell in winners(row):
                key = (response, cell.name)
                if key not in lookup:
                    raise DataError(
                        f"emmeans.csv: no {response} estimate for {cell.name}, which table1.csv "
                        "names; the two files come from different runs (rerun the statistics)"
                    )
                pair.append(float(lookup[key]["estimate"]))
            vgg_values.append(pair[0])
            gan_values.append(pair[1])
        out[f"{response}_vgg"] = vgg_values
        out[f"{response}_gan"] = gan_values
        out[f"{response}_diff"] = out[f"{response}_gan"] - out[f"{response}_vgg"]
    return out


def _not_in_study(diffs: pd.DataFrame, claim: str, *responses: str) -> Finding | None:
    """A "not testable" verdict when a response the claim is about is not in the study."""
    absent = [r for r in responses if f"{r}_diff" not in diffs.columns]
    if not absent:
        return None
    return Finding(
        claim, None, f"not testable: {', '.join(absent)} not among the study's responses", None
    )


def _level_rows(diffs: pd.DataFrame, level: str) -> pd.DataFrame:
    return diffs[diffs["level"] == level].reset_index(drop=True)


def _list_groups(rows: pd.DataFrame) -> str:
    return "; ".join(group_name(row) for _, row in rows.iterrows())


def gan_beats_vgg_on_ge(diffs: pd.DataFrame, level: str, alpha: float = ALPHA) -> Finding:
    """study §9: in every group some W_adv > 0 network has a smaller GE than the best W_adv = 0 one.

    A group supports the claim when the best VGG+GAN network's estimated ln(GE) is below the VGG
    network's and Table 1's GE test gives p < ``alpha``.
    """
    rows = _level_rows(diffs, level)
    unit = "W_per groups" if level == "I" else "W_per x LR groups"
    claim = (
        f"Level {level}: in every {unit[:-1]} some W_adv > 0 network has a smaller GE than the "
        f"best W_adv = 0 network (p < {alpha:g})"
    )
    if rows.empty:
        return Finding(claim, None, f"Table 1 has no level {level} rows", None)
    support = (rows["ge_diff"] < 0) & (rows["ge_p"] < alpha)
    f_values = rows["ge_F"]
    evidence = (
        f"holds in {int(support.sum())}/{len(rows)} {unit}; GE F {f_values.min():.3g} to "
        f"{f_values.max():.3g} (paper: 15 to 82)"
    )
    if not support.all():
        evidence += f"; not in: {_list_groups(rows[~support])}"
    return Finding(claim, bool(support.all()), evidence, float(rows["ge_p"].max()))


def winners_at_large_w_adv(diffs: pd.DataFrame, grid_w_adv: Sequence[float]) -> Finding:
    """study §9: the best VGG+GAN networks mostly sit at large W_adv (>= 1).

    Counts Table 1's winners over both levels; holds when more than half have W_adv >= 1. Not
    testable (None) when the grid has no W_adv >= 1.
    """
    claim = "The best VGG+GAN-Enhanced networks mostly sit at large W_adv (>= 1, often 3)"
    if not np.any(np.asarray(grid_w_adv, dtype=float) >= 1):
        return Finding(claim, None, "not testable: the grid has no W_adv >= 1", None)
    if diffs.empty:
        return Finding(claim, None, "Table 1 is empty", None)
    large = diffs["gan_w_adv"] >= 1
    counts = diffs["gan_w_adv"].map(format_number).value_counts()
    spread = ", ".join(f"W_adv {v}: {n}" for v, n in counts.items())
    evidence = f"{int(large.sum())}/{len(diffs)} winners have W_adv >= 1 ({spread})"
    return Finding(claim, bool(large.mean() > 0.5), evidence, None)


def sharpness_rises(diffs: pd.DataFrame, alpha: float = ALPHA) -> Finding:
    """study §9: sharpness rises with adversarial training, significantly in most groups.

    A group supports it when the VGG+GAN winner's ln(Sharpness) EMM is higher and p < ``alpha``;
    holds when more than half of all Table 1 groups (both levels) do.
    """
    claim = f"Sharpness rises with adversarial training (p < {alpha:g} in most groups)"
    if diffs.empty:
        return Finding(claim, None, "Table 1 is empty", None)
    if absent := _not_in_study(diffs, claim, "sharpness"):
        return absent
    up = diffs["sharpness_diff"] > 0
    support = up & (diffs["sharpness_p"] < alpha)
    evidence = (
        f"rises in {int(up.sum())}/{len(diffs)} groups, significantly in "
        f"{int(support.sum())}/{len(diffs)}"
    )
    return Finding(
        claim, bool(support.mean() > 0.5), evidence, float(diffs["sharpness_p"].median())
    )


def ece_no_significant_rise(diffs: pd.DataFrame, alpha: float = ALPHA) -> Finding:
    """study §9: ECE falls, or rises non-significantly, with adversarial training.

    Holds when no Table 1 group shows a higher ECE for the VGG+GAN winner with p < ``alpha``; the
    p-value given is the smallest among groups where ECE rose (None if it rose nowhere).
    """
    claim = f"ECE falls or rises non-significantly (no rise with p < {alpha:g})"
    if diffs.empty:
        return Finding(claim, None, "Table 1 is empty", None)
    if absent := _not_in_study(diffs, claim, "ece"):
        return absent
    rose = diffs["ece_diff"] > 0
    significant = rose & (diffs["ece_p"] < alpha)
    evidence = (
        f"falls in {int((~rose).sum())}/{len(diffs)} groups; rises in {int(rose.sum())}, "
        f"significantly in {int(significant.sum())}"
    )
    if significant.any():
        evidence += f" ({_list_groups(diffs[significant])})"
    p_value = float(diffs.loc[rose, "ece_p"].min()) if rose.any() else None
    return Finding(claim, not bool(significant.any()), evidence, p_value)


def mie_ssim_slightly_worse(diffs: pd.DataFrame) -> Finding:
    """study §9: MIE and SSIM get slightly worse (mean SSIM about 1.5 % lower).

    Holds when, in more than half of Table 1's groups, the VGG+GAN winner has the higher MIE and
    the lower SSIM. The evidence gives the relative SSIM change mean(gan - vgg) / mean(vgg) in percent;
    the p-value is the median of the groups' SSIM p-values.
    """
    claim = "MIE and SSIM get slightly worse with adversarial training (mean SSIM ~1.5 % lower)"
    if diffs.empty:
        return Finding(claim, None, "Table 1 is empty", None)
    if absent := _not_in_study(diffs, claim, "mie", "ssim"):
        return absent
    mie_worse = diffs["mie_diff"] > 0
    ssim_worse = diffs["ssim_diff"] < 0
    both = mie_worse & ssim_worse
    # ratio of means, not mean of ratios: a group whose VGG network has a lesion SSIM near 0
    # (a badly trained network) would otherwise dominate the average
    change = 100 * diffs["ssim_diff"].mean() / diffs["ssim_vgg"].mean()
    evidence = (
        f"MIE higher in {int(mie_worse.sum())}/{len(diffs)} groups, SSIM lower in "
        f"{int(ssim_worse.sum())}/{len(diffs)}; mean SSIM change {change:+.2f} % (paper: about -1.5 %)"
    )
    return Finding(claim, bool(both.mean() > 0.5), evidence, float(diffs["ssim_p"].median()))


def w_adv_effect_on_ge(anova: pd.DataFrame, alpha: float = ALPHA) -> Finding:
    """The mixed model's ANOVA: W_adv has a significant main effect on ln(GE) (study §7)."""
    claim = f"W_adv has a significant main effect on ln(GE) in the mixed model (p < {alpha:g})"
    row = anova[(anova["response"] == "ge") & (anova["term"] == "w_adv")]
    if row.empty:
        return Finding(claim, None, "anova.csv has no ge / w_adv row", None)
    row = row.iloc[0]
    note = row.get("note")
    note = note if isinstance(note, str) and note else ""  # networks left out: what was tested
    if not np.isfinite(row["p"]):
        return Finding(claim, None, f"not testable: {note or 'no F test in anova.csv'}", None)
    evidence = f"F({row['num_df']:.4g}, {row['den_df']:.4g}) = {row['F']:.4g}"
    if note:
        evidence += f" ({note})"
    return Finding(claim, bool(row["p"] < alpha), evidence, float(row["p"]))


def evaluate_findings(
    table1: pd.DataFrame,
    emmeans: pd.DataFrame,
    anova: pd.DataFrame,
    grid_w_adv: Sequence[float],
    alpha: float = ALPHA,
) -> list[Finding]:
    """All headline findings of study §9 (and the W_adv ANOVA effect), judged on this run.

    Table 1 groups without a test (a winner left out of the statistics) are not counted; the
    Table 1 findings' evidence names them.
    """
    diffs = table1_differences(table1, emmeans)
    tested = diffs.apply(has_winners, axis=1) if len(diffs) else pd.Series([], dtype=bool)
    untested = diffs[~tested.to_numpy(dtype=bool)]
    diffs = diffs[tested.to_numpy(dtype=bool)].reset_index(drop=True)
    from_table1 = [
        gan_beats_vgg_on_ge(diffs, "I", alpha),
        gan_beats_vgg_on_ge(diffs, "II", alpha),
        winners_at_large_w_adv(diffs, grid_w_adv),
        sharpness_rises(diffs, alpha),
        ece_no_significant_rise(diffs, alpha),
        mie_ssim_slightly_worse(diffs),
    ]
    levels = ["I", "II", None, None, None, None]  # the Table 1 rows each finding reads
    for k, level in enumerate(levels):
        rows = untested if level is None else untested[untested["level"] == level]
        if len(rows):
            names = "; ".join(f"level {r['level']} {group_name(r)}" for _, r in rows.iterrows())
            finding = from_table1[k]
            evidence = f"{finding.evidence}; untested (network left out): {names}"
            from_table1[k] = replace(finding, evidence=evidence)
    return [*from_table1, w_adv_effect_on_ge(anova, alpha)]
