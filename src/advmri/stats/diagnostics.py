"""Model adequacy: residual normality and homoscedasticity per response, raw and log scale.

study §7 says the log was chosen after residual checks; this module shows that choice on
the run's own data instead of assuming it: every response is fitted on both scales and the
conditional residuals (y minus network mean minus predicted image effect) are checked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from advmri.errors import AdvmriError
from advmri.logs import logger
from advmri.stats.analysis import ResponseFit, fit_response
from advmri.stats.design import RESPONSES

DIAGNOSTICS_COLUMNS = [
    "response", "scale", "model_scale", "n", "skewness", "excess_kurtosis",
    "normality_stat", "normality_p", "levene_F", "levene_p", "spread_rho", "spread_p",
]  # fmt: skip
SCALES = ("identity", "log")


def residual_checks(rf: ResponseFit, scale: str) -> dict:
    """Normality and homoscedasticity statistics of one fit's conditional residuals.

    Returns
    -------
    dict with ``n``; ``skewness`` and ``excess_kurtosis`` (0 for a normal);
    ``normality_stat``/``normality_p`` (D'Agostino-Pearson K^2); ``levene_F``/``levene_p``
    (Brown-Forsythe test of equal residual spread across networks); ``spread_rho``/``spread_p``
    (Spearman correlation of |residual| with the fitted value: a funnel shows as rho > 0).
    """
    resid, fitted = rf.fit.residuals, rf.fit.fitted
    groups = [resid[rf.design.cell == i] for i in range(rf.design.n_cells)]
    groups = [g for g in groups if g.size >= 2]
    k2, k2_p = sps.normaltest(resid) if resid.size >= 20 else (np.nan, np.nan)
    lev, lev_p = sps.levene(*groups, center="median") if len(groups) >= 2 else (np.nan, np.nan)
    rho, rho_p = sps.spearmanr(np.abs(resid), fitted)
    return {
        "response": rf.response,
        "scale": scale,
        "model_scale": scale == RESPONSES[rf.response],
        "n": resid.size,
        "skewness": float(sps.skew(resid)),
        "excess_kurtosis": float(sps.kurtosis(resid)),
        "normality_stat": float(k2),
        "normality_p": float(k2_p),
        "levene_F": float(lev),
        "levene_p": float(lev_p),
        "spread_rho": float(rho),
        "spread_p": float(rho_p),
    }


def diagnostics(
    table: pd.DataFrame,
    fits: dict[str, ResponseFit] | None = None,
    plot_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Residual checks for every response on the raw ("identity") and the log scale.

    Parameters
    ----------
    table : long evaluation table.
    fits : the study's fits (on their model scale), reused instead of refitting.
    plot_dir : when given, writes ``diagnostics.png`` there: per response (rows) the normal QQ
        plot and the residual-vs-fitted plot on the raw and on the log scale (columns).

    Returns
    -------
    DataFrame with :data:`DIAGNOSTICS_COLUMNS`, one row per (response, scale); a scale that
    cannot be fitted (e.g. no positive values under the log) is left out and logged.
    """
    fits = fits or {}
    rows, by_response = [], {}
    for response in RESPONSES:
        for scale in SCALES:
            rf = fits.get(response) if scale == RESPONSES[response] else None
            try:
                rf = rf or fit_response(table, response, scale)
            except AdvmriError as error:
                logger.warning(
                    "diagnostics: %s on the %s scale not fitted: %s", response, scale, error
                )
                continue
            rows.append(residual_checks(rf, scale))
            by_response.setdefault(response, {})[scale] = rf
    if plot_dir is not None and by_response:
        plot_residuals(by_response, Path(plot_dir) / "diagnostics.png")
    return pd.DataFrame(rows, columns=DIAGNOSTICS_COLUMNS)


def plot_residuals(
    fits: dict[str, dict[str, ResponseFit]], path: Path, max_points: int = 3000
) -> Path:
    """One PNG: per response a row with the normal QQ plot and the residual-vs-fitted plot of
    each scale (raw, then log), Agg backend.

    At most ``max_points`` points are drawn per panel (evenly spaced ranks for the QQ plot, a
    seeded random subset for the scatter), so 116,640-row fits plot in seconds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = 2 * len(SCALES)
    fig, axes = plt.subplots(
        len(fits), n_cols, figsize=(3.2 * n_cols, 2.6 * len(fits)), squeeze=False
    )
    rng = np.random.default_rng(0)
    for row, (response, per_scale) in enumerate(fits.items()):
        for col, scale in enumerate(SCALES):
            ax_qq, ax_rf = axes[row, 2 * col], axes[row, 2 * col + 1]
            if scale not in per_scale:
                ax_qq.set_axis_off()
                ax_rf.set_axis_off()
                continue
            rf = per_scale[scale]
            resid, fitted = rf.fit.residuals, rf.fit.fitted
            z = np.sort((resid - resid.mean()) / resid.std())
            n = z.size
            pick = np.unique(np.linspace(0, n - 1, min(n, max_points)).astype(int))
            theory = sps.norm.ppf((pick + 0.5) / n)
            label = f"ln({response})" if scale == "log" else response
            ax_qq.plot(theory, z[pick], ".", ms=2, color="tab:blue")
            ax_qq.plot(theory[[0, -1]], theory[[0, -1]], "-", color="tab:red", lw=1)
            ax_qq.set_title(f"{label}: normal QQ", fontsize=9)
            sub = rng.choice(n, min(n, max_points), replace=False)
            ax_rf.plot(fitted[sub], resid[sub], ".", ms=2, alpha=0.4, color="tab:blue")
            ax_rf.axhline(0, color="tab:red", lw=1)
            ax_rf.set_title(f"{label}: residual vs fitted", fontsize=9)
            for ax in (ax_qq, ax_rf):
                ax.tick_params(labelsize=7)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.04, top=0.96, wspace=0.3, hspace=0.45)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
