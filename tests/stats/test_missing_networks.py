"""An incomplete grid (networks left out, e.g. as diverged): refused unless asked, and then the
model is fitted on the present networks and every test keeps only what they identify."""

import numpy as np
import pandas as pd
import pytest

from advmri.cli import main as cli_main
from advmri.errors import DataError
from advmri.stats import (
    anova_table,
    emmeans_table,
    fit_response,
    run_study_statistics,
    table1,
    tukey_table,
)
from advmri.stats.analysis import term_contrast
from advmri.stats.simulate import SMALL_GRID, simulate_eval_table, write_eval_csvs
from advmri.stats.table1 import table1_markdown

# SMALL_GRID: lr (0.001, 0.01) x w_per (0.5, 1) x w_adv (0, 0.5, 3); cells lexicographic in
# (lr, w_per, w_adv), so (lr 0.01, w_per 1, w_adv 0.5) is cell 10.
DROPPED = (0.01, 1.0, 0.5)


def without(table: pd.DataFrame, *networks: tuple[float, float, float]) -> pd.DataFrame:
    keep = np.ones(len(table), dtype=bool)
    for lr, w_per, w_adv in networks:
        keep &= ~((table["lr"] == lr) & (table["w_per"] == w_per) & (table["w_adv"] == w_adv))
    return table[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def unbalanced():
    """12 images, one network removed, and 10 % of sharpness missing (so sharpness takes REML)."""
    table = simulate_eval_table(SMALL_GRID, n_images=12, seed=3, sharpness_missing=0.1)
    return without(table, DROPPED)


def test_an_incomplete_grid_is_refused_unless_asked_and_the_message_names_the_flag(unbalanced):
    with pytest.raises(DataError, match="--allow-missing-networks") as error:
        fit_response(unbalanced, "ge")
    assert "lr=0.01 w_per=1 w_adv=0.5" in str(error.value)
    assert "\n" not in str(error.value)
    rf = fit_response(unbalanced, "ge", allow_missing_networks=True)
    assert rf.design.missing_cells.tolist() == [10]


def test_cli_refuses_an_incomplete_grid_in_one_line_and_accepts_it_with_the_flag(
    unbalanced, tmp_path, capsys
):
    paths = write_eval_csvs(unbalanced, tmp_path / "eval")
    assert cli_main(["stats", *map(str, paths), "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--allow-missing-networks" in err[0]
    out = tmp_path / "stats"
    argv = ["stats", *map(str, paths), "--out", str(out), "--allow-missing-networks"]
    assert cli_main(argv) == 0
    emmeans = pd.read_csv(out / "emmeans.csv")
    at_dropped = (emmeans[["lr", "w_per", "w_adv"]] == list(DROPPED)).all(axis=1)
    assert at_dropped.sum() == 5 and emmeans.loc[at_dropped, "estimate"].isna().all()
    assert emmeans.loc[~at_dropped, "estimate"].notna().all()
    anova = pd.read_csv(out / "anova.csv").set_index(["response", "term"])
    assert anova.loc[("ge", "w_adv"), "F"] > 0
    assert "type IV" in anova.loc[("ge", "w_adv"), "note"]


@pytest.mark.parametrize("response", ["ge", "sharpness"])
def test_network_means_match_statsmodels_mixedlm_on_the_present_cells(unbalanced, response):
    import statsmodels.api as sm

    rf = fit_response(unbalanced, response, allow_missing_networks=True)
    assert rf.fit.method == ("closed_form" if response == "ge" else "reml")
    d = rf.design
    exog = np.eye(d.n_cells)[d.cell][:, d.present_cells]  # cell-means design, present cells
    sm_fit = sm.MixedLM(d.y, exog, groups=d.sample).fit(reml=True, method="bfgs", gtol=1e-12)
    beta = rf.cell_means
    assert np.isnan(beta[10]) and np.isfinite(np.delete(beta, 10)).all()
    np.testing.assert_allclose(np.delete(beta, 10), sm_fit.fe_params, rtol=1e-6)
    assert float(sm_fit.scale) == pytest.approx(rf.fit.residual_var, rel=1e-6)
    # The estimable part of the w_adv main effect here is "w_adv 0 vs w_adv 3", averaged over
    # lr x w_per (every contrast through w_adv 0.5 needs the dropped cell): one df, and its Wald
    # F from the dense GLS Cov(beta) = (X' V^-1 X)^-1 at statsmodels' variances equals ours.
    k = np.zeros(d.n_cells)
    k[np.isclose(d.cells[:, 2], 0.0)] = 0.25
    k[np.isclose(d.cells[:, 2], 3.0)] = -0.25
    k = k[d.present_cells]
    Z = np.eye(d.n_samples)[d.sample]
    V = float(np.asarray(sm_fit.cov_re)[0, 0]) * Z @ Z.T + float(sm_fit.scale) * np.eye(d.y.size)
    cov = np.linalg.inv(exog.T @ np.linalg.solve(V, exog))
    F_statsmodels = float(k @ sm_fit.fe_params) ** 2 / float(k @ cov @ k)
    anova = anova_table(rf).set_index("term")
    assert anova.loc["w_adv", "num_df"] == 1
    assert anova.loc["w_adv", "F"] == pytest.approx(F_statsmodels, rel=1e-5)
    assert np.isfinite(anova.loc["w_adv", ["F", "den_df", "p"]].astype(float)).all()


def test_terms_keep_only_their_estimable_part_and_say_so(unbalanced):
    rf = fit_response(unbalanced, "ge", allow_missing_networks=True)
    anova = anova_table(rf).set_index("term")
    # two-level factors: their single contrast averages over the missing cell
    for term in ("lr", "w_per", "lr:w_per"):
        assert np.isnan(anova.loc[term, "F"]) and np.isnan(anova.loc[term, "p"])
        assert anova.loc[term, "note"].startswith("not estimable")
    # the other terms lose one df each (a single missing cell)
    for term in ("w_adv", "lr:w_adv", "w_per:w_adv", "lr:w_per:w_adv"):
        full_df = term_contrast(rf.design, tuple(term.split(":"))).shape[0]
        assert anova.loc[term, "num_df"] == full_df - 1
        assert 0 <= anova.loc[term, "p"] <= 1
        assert "type IV" in anova.loc[term, "note"]


def test_the_full_grid_gives_the_same_tables_with_an_empty_note():
    table = simulate_eval_table(SMALL_GRID, n_images=10, seed=3)
    strict = fit_response(table, "ge")
    allowed = fit_response(table, "ge", allow_missing_networks=True)
    assert allowed.design.present is None
    a, b = anova_table(strict), anova_table(allowed)
    pd.testing.assert_frame_equal(a, b)
    assert (a["note"] == "").all()


def test_emms_and_tukey_comparisons_that_need_a_missing_network_are_nan(unbalanced):
    rf = fit_response(unbalanced, "ge", allow_missing_networks=True)
    emm = emmeans_table(rf)
    assert len(emm) == 12 and emm["estimate"].isna().sum() == 1
    tukey = tukey_table(rf)
    within = tukey[tukey["family"] == "w_adv|w_per,lr"]
    touches = (within["by_lr"] == 0.01) & (within["by_w_per"] == 1.0)
    touches &= (within["a_w_adv"] == 0.5) | (within["b_w_adv"] == 0.5)
    assert within.loc[touches, ["estimate", "p_adj"]].isna().all().all()
    assert within.loc[~touches, ["estimate", "p_adj"]].notna().all().all()
    # the w_adv = 0.5 marginal mean averages over the missing cell; 0 vs 3 does not
    main = tukey[tukey["family"] == "w_adv"].set_index(["a_w_adv", "b_w_adv"])
    assert np.isnan(main.loc[(0.0, 0.5), "estimate"])
    assert np.isfinite(main.loc[(0.0, 3.0), "p_adj"])


def test_table1_chooses_winners_among_present_networks_and_says_when_vgg_is_missing():
    table = simulate_eval_table(SMALL_GRID, n_images=12, seed=3, adversarial_gain=0.25)
    full = table1(table)
    best_gan = full[(full["level"] == "I") & (full["w_per"] == 0.5)].iloc[0]
    gone_gan = (best_gan["gan_lr"], 0.5, best_gan["gan_w_adv"])
    gone_vgg = (0.01, 1.0, 0.0)
    t1 = table1(without(table, gone_gan, gone_vgg), allow_missing_networks=True)
    level1 = t1[t1["level"] == "I"].set_index("w_per")
    picked = (level1.loc[0.5, "gan_lr"], 0.5, level1.loc[0.5, "gan_w_adv"])
    assert picked != gone_gan and np.isfinite(level1.loc[0.5, "ge_F"])
    assert level1.loc[1.0, "vgg_lr"] == 0.001  # the only W_adv = 0 network left at W_per 1
    level2 = t1[t1["level"] == "II"].set_index(["w_per", "lr"])
    row = level2.loc[(1.0, 0.01)]
    assert np.isnan(row["vgg_lr"]) and np.isnan(row["vgg_w_adv"])
    assert row[[c for c in t1.columns if c.endswith(("_F", "_p"))]].isna().all()
    assert "no VGG (W_adv = 0) network" in row["note"]
    assert (level2.drop(index=(1.0, 0.01))["note"] == "").all()
    md = table1_markdown(t1, "paired", "all", 2024)
    assert "none in the statistics (left out)" in md and "nan" not in md
    pooled = table1(without(table, gone_vgg), test="pooled", allow_missing_networks=True)
    assert pooled.set_index(["level", "w_per", "lr"])["ge_F"].isna().sum() == 1


def test_run_study_statistics_with_a_missing_network_writes_every_table(unbalanced, tmp_path):
    paths = write_eval_csvs(unbalanced, tmp_path / "eval")
    run_study_statistics(
        paths, tmp_path / "stats", table1_selection="split_half", allow_missing_networks=True
    )
    t1 = pd.read_csv(tmp_path / "stats" / "table1.csv")
    dropped = (t1["gan_lr"] == DROPPED[0]) & (t1["w_per"] == 1.0) & (t1["gan_w_adv"] == 0.5)
    assert not dropped.any() and t1["ge_F"].notna().all()
    diagnostics = pd.read_csv(tmp_path / "stats" / "diagnostics.csv")
    assert len(diagnostics) == 10  # every response on both scales
