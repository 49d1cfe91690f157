"""The verdicts on the paper's headline findings, judged from crafted statistics tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advmri.errors import DataError
from advmri.report.findings import (
    ece_no_significant_rise,
    evaluate_findings,
    gan_beats_vgg_on_ge,
    mie_ssim_slightly_worse,
    sharpness_rises,
    table1_differences,
    w_adv_effect_on_ge,
    winners_at_large_w_adv,
)

RESPONSES = ("ge", "sharpness", "ece", "mie", "ssim")
W_PERS = (0.5, 1.0, 2.0)


def crafted(
    ge_p: float = 1e-5,
    gan_ge: float = -2.5,
    gan_w_adv: float = 3.0,
    sharp_p: float = 1e-3,
    ece_gan: float = -3.1,
    ece_p: float = 0.4,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Level I groups at three W_per: VGG (W_adv 0, LR 0.001) against GAN (``gan_w_adv``, 0.01).

    The first group's GE p-value and GAN estimate are ``ge_p`` / ``gan_ge``; other groups are clear
    wins. VGG estimates: ln GE -2, ln sharpness 1, ln ECE -3, ln MIE -2.5, SSIM 0.80.
    """
    vgg_values = {"ge": -2.0, "sharpness": 1.0, "ece": -3.0, "mie": -2.5, "ssim": 0.80}
    table1, emmeans = [], []
    for i, w_per in enumerate(W_PERS):
        gan_values = {
            "ge": gan_ge if i == 0 else -2.4,
            "sharpness": 1.3,
            "ece": ece_gan,
            "mie": -2.45,
            "ssim": 0.788,
        }
        row = {
            "level": "I",
            "w_per": w_per,
            "lr": np.nan,
            "vgg_lr": 0.001,
            "vgg_w_adv": 0.0,
            "gan_lr": 0.01,
            "gan_w_adv": gan_w_adv if i < 2 else 0.5,
        }
        for r in RESPONSES:
            row[f"{r}_F"] = 30.0
            row[f"{r}_p"] = 1e-4
        row["ge_p"] = ge_p if i == 0 else 1e-6
        row["sharpness_p"] = sharp_p
        row["ece_p"] = ece_p
        table1.append(row)
        for r in RESPONSES:
            for lr, w_adv, value in (
                (0.001, 0.0, vgg_values[r]),
                (0.01, row["gan_w_adv"], gan_values[r]),
            ):
                emmeans.append(
                    {
                        "response": r,
                        "lr": lr,
                        "w_per": w_per,
                        "w_adv": w_adv,
                        "estimate": value,
                        "se": 0.01,
                        "df": 100.0,
                        "ci_low": value - 0.02,
                        "ci_high": value + 0.02,
                    }
                )
    return pd.DataFrame(table1), pd.DataFrame(emmeans)


def diffs(**kwargs) -> pd.DataFrame:
    return table1_differences(*crafted(**kwargs))


def test_gan_beats_vgg_holds_when_every_group_is_lower_and_significant():
    finding = gan_beats_vgg_on_ge(diffs(), "I")
    assert finding.holds is True
    assert finding.evidence.startswith("holds in 3/3")
    assert finding.p_value == pytest.approx(1e-5)


def test_gan_beats_vgg_fails_when_one_group_is_not_significant():
    finding = gan_beats_vgg_on_ge(diffs(ge_p=0.2), "I")
    assert finding.holds is False
    assert "2/3" in finding.evidence and "W_per 0.5" in finding.evidence
    assert finding.p_value == pytest.approx(0.2)


def test_gan_beats_vgg_fails_when_a_significant_difference_favours_vgg():
    finding = gan_beats_vgg_on_ge(diffs(gan_ge=-1.5), "I")
    assert finding.holds is False


def test_gan_beats_vgg_is_untestable_without_rows_of_that_level():
    assert gan_beats_vgg_on_ge(diffs(), "II").holds is None


def test_large_w_adv_winners_hold_when_most_are_at_least_one():
    finding = winners_at_large_w_adv(diffs(gan_w_adv=3.0), [0, 0.5, 3.0])
    assert finding.holds is True
    assert finding.evidence.startswith("2/3")


def test_large_w_adv_winners_fail_when_most_are_small():
    assert winners_at_large_w_adv(diffs(gan_w_adv=0.1), [0, 0.1, 0.5, 3.0]).holds is False


def test_large_w_adv_winners_are_untestable_on_a_grid_without_large_w_adv():
    assert winners_at_large_w_adv(diffs(gan_w_adv=0.1), [0, 0.1, 0.5]).holds is None


def test_sharpness_rise_needs_significance_in_most_groups():
    assert sharpness_rises(diffs(sharp_p=1e-3)).holds is True
    assert sharpness_rises(diffs(sharp_p=0.3)).holds is False


def test_ece_finding_fails_only_on_a_significant_rise():
    assert ece_no_significant_rise(diffs(ece_gan=-3.1, ece_p=1e-4)).holds is True  # falls
    assert ece_no_significant_rise(diffs(ece_gan=-2.9, ece_p=0.4)).holds is True  # n.s. rise
    rise = ece_no_significant_rise(diffs(ece_gan=-2.9, ece_p=1e-4))
    assert rise.holds is False
    assert rise.p_value == pytest.approx(1e-4)


def test_mie_ssim_worse_reports_the_mean_relative_ssim_change():
    finding = mie_ssim_slightly_worse(diffs())
    assert finding.holds is True
    assert "-1.50 %" in finding.evidence  # (0.788 - 0.80) / 0.80


def test_w_adv_anova_effect_reads_the_ge_row():
    anova = pd.DataFrame(
        {
            "response": ["ge", "ge", "ssim"],
            "term": ["lr", "w_adv", "w_adv"],
            "num_df": [1, 17, 17],
            "den_df": [100, 100, 100],
            "F": [1.0, 20.0, 0.5],
            "p": [0.3, 1e-9, 0.9],
        }
    )
    finding = w_adv_effect_on_ge(anova)
    assert finding.holds is True
    assert finding.p_value == pytest.approx(1e-9)
    assert w_adv_effect_on_ge(anova.assign(p=0.5)).holds is False


def test_differences_refuse_a_table1_network_missing_from_the_emmeans():
    table1, emmeans = crafted()
    with pytest.raises(DataError, match="no ge estimate for wper0.5_wadv3_lr0.01"):
        table1_differences(table1, emmeans[~((emmeans["w_per"] == 0.5) & (emmeans["w_adv"] == 3))])


def test_evaluate_findings_judges_the_simulated_study(study):
    stats = study.stats_dir
    findings = evaluate_findings(
        pd.read_csv(stats / "table1.csv"),
        pd.read_csv(stats / "emmeans.csv"),
        pd.read_csv(stats / "anova.csv"),
        study.grid["w_adv"],
    )
    assert len(findings) == 7
    # the simulation lowers GE strongly with W_adv: level I and II hold, winners sit at W_adv 1
    assert [f.holds for f in findings[:3]] == [True, True, True]


def test_mean_ssim_change_is_not_dominated_by_a_group_with_ssim_near_zero():
    import pandas as pd

    from advmri.report.findings import mie_ssim_slightly_worse

    diffs = pd.DataFrame(
        {
            "ssim_vgg": [0.5, 0.5, 0.0001],
            "ssim_diff": [-0.01, -0.01, -0.001],
            "mie_diff": [0.01, 0.01, 0.01],
            "ssim_p": [0.01, 0.01, 0.01],
        }
    )
    finding = mie_ssim_slightly_worse(diffs)
    # mean diff -0.007 over mean VGG SSIM 0.33337: -2.10 %; a mean of ratios would say about -335 %
    assert "mean SSIM change -2.10 %" in finding.evidence
