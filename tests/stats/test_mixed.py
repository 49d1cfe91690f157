"""The random-intercept fits: closed form and REML agree, and REML is the REML optimum."""

import numpy as np
import pandas as pd
import pytest

from advmri.errors import DataError
from advmri.metrics.registry import PAPER_RESPONSES as RESPONSES
from advmri.stats import (
    anova_table,
    emmeans_table,
    fit_complete,
    fit_reml,
    fit_response,
    tukey_table,
)
from advmri.stats.mixed import satterthwaite_f_df
from advmri.stats.simulate import SMALL_GRID, simulate_eval_table


def layout(n_cells=12, n_samples=15, image_sd=0.7, seed=1):
    rng = np.random.default_rng(seed)
    cell = np.repeat(np.arange(n_cells), n_samples)
    sample = np.tile(np.arange(n_samples), n_cells)
    y = (
        rng.normal(size=n_cells)[cell]
        + image_sd * rng.normal(size=n_samples)[sample]
        + 0.5 * rng.normal(size=cell.size)
    )
    return y, cell, sample


def reml_deviance(y, cell, sample, s1, s2):
    """The REML criterion by dense linear algebra (the textbook formula, for checking)."""
    n = y.size
    X = np.zeros((n, cell.max() + 1))
    X[np.arange(n), cell] = 1
    Z = np.zeros((n, sample.max() + 1))
    Z[np.arange(n), sample] = 1
    V = s1 * Z @ Z.T + s2 * np.eye(n)
    Vi = np.linalg.inv(V)
    xvx = X.T @ Vi @ X
    r = y - X @ np.linalg.solve(xvx, X.T @ Vi @ y)
    return np.linalg.slogdet(V)[1] + np.linalg.slogdet(xvx)[1] + r @ Vi @ r


def test_closed_form_and_reml_give_the_same_tables_on_complete_data():
    table = simulate_eval_table(SMALL_GRID, n_images=10, seed=3)
    for response in RESPONSES:
        closed = fit_response(table, response)
        assert closed.fit.method == "closed_form"
        d = closed.design
        reml = type(closed)(response, d, fit_reml(d.y, d.cell, d.sample))
        for make in (anova_table, emmeans_table, tukey_table):
            a, b = make(closed), make(reml)
            numeric = a.select_dtypes("number").columns
            np.testing.assert_allclose(
                a[numeric].to_numpy(float), b[numeric].to_numpy(float), rtol=1e-8, atol=1e-12
            )
        assert reml.fit.sample_var == pytest.approx(closed.fit.sample_var, rel=1e-9)
        assert reml.fit.residual_var == pytest.approx(closed.fit.residual_var, rel=1e-9)


def test_within_network_contrasts_have_error_df_of_the_two_way_layout():
    y, cell, sample = layout()
    fit = fit_complete(y, cell, sample)
    L = np.eye(12)[:-1] - np.eye(12)[1:]
    test = fit.f_test(L)
    assert test["num_df"] == 11
    assert test["den_df"] == pytest.approx(11 * 14, rel=1e-12)


def test_reml_estimates_minimise_the_reml_deviance_and_hessian_matches_finite_differences():
    y, cell, sample = layout(seed=5)
    keep = np.random.default_rng(5).random(y.size) > 0.25
    y, cell, sample = y[keep], cell[keep], sample[keep]
    fit = fit_reml(y, cell, sample)
    x0 = np.array([fit.sample_var, fit.residual_var])
    dev = lambda x: reml_deviance(y, cell, sample, *x)  # noqa: E731
    h = 1e-4 * x0
    grad = [
        (dev(x0 + np.eye(2)[i] * h[i]) - dev(x0 - np.eye(2)[i] * h[i])) / (2 * h[i])
        for i in range(2)
    ]
    assert np.max(np.abs(grad) * x0) < 1e-5
    hess = np.empty((2, 2))
    for i in range(2):
        for k in range(2):
            ei, ek = np.eye(2)[i] * h[i], np.eye(2)[k] * h[k]
            hess[i, k] = (
                dev(x0 + ei + ek) - dev(x0 + ei - ek) - dev(x0 - ei + ek) + dev(x0 - ei - ek)
            ) / (4 * h[i] * h[k])
    np.testing.assert_allclose(fit.varpar_cov, 2 * np.linalg.inv(hess), rtol=1e-4)


def test_statsmodels_mixedlm_finds_the_same_reml_variances():
    import statsmodels.api as sm

    y, cell, sample = layout(seed=7)
    keep = np.random.default_rng(7).random(y.size) > 0.2
    y, cell, sample = y[keep], cell[keep], sample[keep]
    fit = fit_reml(y, cell, sample)
    exog = pd.get_dummies(cell).to_numpy(float)
    # statsmodels' default (lbfgs) stops ~1e-5 short; BFGS with a tight gradient tolerance does not.
    sm_fit = sm.MixedLM(y, exog, groups=sample).fit(reml=True, method="bfgs", gtol=1e-12)
    assert float(np.asarray(sm_fit.cov_re)[0, 0]) == pytest.approx(fit.sample_var, rel=1e-8)
    assert float(sm_fit.scale) == pytest.approx(fit.residual_var, rel=1e-8)
    np.testing.assert_allclose(sm_fit.fe_params, fit.beta, rtol=1e-6)


def test_zero_image_variance_falls_to_the_boundary_with_pooled_df_in_both_paths():
    y, cell, sample = layout(image_sd=0.0, seed=2)
    # Make images anti-correlated so that MS_image < MS_E: subtract the image means, twice.
    Y = np.zeros((12, 15))
    Y[cell, sample] = y
    Y -= 1.5 * (Y.mean(axis=0) - Y.mean())
    y = Y[cell, sample]
    closed, reml = fit_complete(y, cell, sample), fit_reml(y, cell, sample)
    assert closed.sample_var == 0.0 and reml.sample_var == 0.0
    assert reml.residual_var == pytest.approx(closed.residual_var, rel=1e-10)
    c = closed.contrasts(np.eye(12)[:1] - np.eye(12)[1:2])
    r = reml.contrasts(np.eye(12)[:1] - np.eye(12)[1:2])
    assert c["df"][0] == pytest.approx(12 * 14) and r["df"][0] == pytest.approx(12 * 14)


def test_f_denominator_df_combines_eigen_contrasts_as_lmertest():
    assert satterthwaite_f_df(np.array([7.5])) == 7.5
    assert satterthwaite_f_df(np.array([10.0, 10.0 + 1e-10])) == pytest.approx(10.0)
    assert satterthwaite_f_df(np.array([1.5, 30.0])) == 2.0
    e = 10 / 8 + 20 / 18
    assert satterthwaite_f_df(np.array([10.0, 20.0])) == pytest.approx(2 * e / (e - 2))


def test_a_repeated_network_image_pair_is_refused():
    y, cell, sample = layout()
    with pytest.raises(DataError, match="twice|two rows"):
        fit_reml(np.r_[y, 0.0], np.r_[cell, 0], np.r_[sample, 0])


def test_a_response_without_residual_variation_is_refused_in_one_line():
    y, cell, sample = layout()
    keep = np.arange(y.size) != 3
    flat = cell.astype(float)[keep]
    with pytest.raises(DataError, match="network means exactly"):
        fit_reml(flat, cell[keep], sample[keep])
