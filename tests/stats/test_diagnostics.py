"""The residual checks equal scipy.stats' tests (they are computed without it, for speed)."""

import numpy as np
import pytest
from scipy import stats as sps

from advmri.stats.diagnostics import _moments, brown_forsythe, normal_test, spearman


@pytest.fixture
def residuals():
    rng = np.random.default_rng(5)
    group = rng.integers(0, 12, size=600)
    x = rng.standard_t(5, size=600) * (1 + 0.1 * group)
    x[::7] = np.round(x[::7], 1)  # ties
    return x, group


def test_normal_test_skewness_and_kurtosis_equal_scipy(residuals):
    x, _ = residuals
    k2, p = normal_test(x)
    expected = sps.normaltest(x)
    assert k2 == pytest.approx(expected.statistic, rel=1e-10)
    assert p == pytest.approx(expected.pvalue, rel=1e-8, abs=1e-300)
    skew, kurt = _moments(x)
    assert skew == pytest.approx(sps.skew(x), rel=1e-10)
    assert kurt == pytest.approx(sps.kurtosis(x), rel=1e-10)
    assert np.isnan(normal_test(x[:19])[0])


def test_brown_forsythe_equals_scipy_levene_with_median_centre_and_skips_single_rows(residuals):
    x, group = residuals
    group = group.copy()
    group[0] = 40  # a network with one row: left out, as the groups of size >= 2 are tested
    groups = [x[group == g] for g in np.unique(group) if np.sum(group == g) >= 2]
    F, p = brown_forsythe(x, group)
    expected = sps.levene(*groups, center="median")
    assert F == pytest.approx(expected.statistic, rel=1e-10)
    assert p == pytest.approx(expected.pvalue, rel=1e-8)


def test_spearman_equals_scipy_with_ties(residuals):
    x, group = residuals
    rho, p = spearman(np.abs(x), group.astype(float))
    expected = sps.spearmanr(np.abs(x), group)
    assert rho == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-8)


def test_background_plot_is_written_and_its_failure_is_raised(tmp_path):
    from advmri.stats import fit_response
    from advmri.stats.diagnostics import BackgroundPlot
    from advmri.stats.simulate import SMALL_GRID, simulate_eval_table

    table = simulate_eval_table(SMALL_GRID, n_images=6, seed=0)
    fits = {"ge": {"log": fit_response(table, "ge")}}
    with BackgroundPlot(tmp_path / "diagnostics.png") as plot:
        plot.draw(fits)
    assert (tmp_path / "diagnostics.png").stat().st_size > 1000
    (tmp_path / "a_file").write_text("")
    with pytest.raises(RuntimeError, match="failed"):
        with BackgroundPlot(tmp_path / "a_file" / "diagnostics.png") as plot:
            plot.draw(fits)
    with pytest.raises(ValueError, match="bad input"):  # an error inside stops the process
        with BackgroundPlot(tmp_path / "never.png"):
            raise ValueError("bad input")
    assert not (tmp_path / "never.png").exists()


def test_spearman_of_a_perfect_rank_agreement_is_rho_1_and_p_0_as_scipy():
    # 2 networks x 2 images leave 4 residuals; a monotone pair must not divide by zero
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 3.0, 5.0, 9.0])
    assert spearman(x, y) == (1.0, 0.0) == tuple(map(float, sps.spearmanr(x, y)))
    assert spearman(x, -y) == (-1.0, 0.0)
