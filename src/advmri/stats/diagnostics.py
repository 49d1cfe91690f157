"""Model adequacy: residual normality and homoscedasticity per response, raw and log scale.

study §7 says the log was chosen after residual checks; this module shows that choice on
the run's own data instead of assuming it: every response is fitted on both scales and the
conditional residuals (y minus network mean minus predicted image effect) are checked.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from advmri.errors import AdvmriError
from advmri.logs import logger
from advmri.stats.analysis import ResponseFit, fit_response
from advmri.stats.design import Layout, study_responses, table_layout

DIAGNOSTICS_COLUMNS = [
    "response", "scale", "model_scale", "n", "skewness", "excess_kurtosis",
    "normality_stat", "normality_p", "levene_F", "levene_p", "spread_rho", "spread_p",
]  # fmt: skip
SCALES = ("identity", "log")


def _moments(x: np.ndarray) -> tuple[float, float]:
    """Skewness and excess kurtosis (biased moment estimators, as scipy.stats' defaults)."""
    d = x - x.mean()
    m2 = np.mean(d**2)
    if not m2 > (np.finfo(float).eps * abs(x.mean())) ** 2:
        return np.nan, np.nan
    return float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2 - 3.0)


def normal_test(x: np.ndarray, moments: tuple[float, float] | None = None) -> tuple[float, float]:
    """D'Agostino-Pearson K^2 and its chi-square(2) p-value (scipy.stats.normaltest's formulas:
    D'Agostino 1970 for the skewness, Anscombe & Glynn 1983 for the kurtosis); NaN below 20.
    ``moments``: ``_moments(x)`` when already computed."""
    n = float(x.size)
    if n < 20:
        return np.nan, np.nan
    skew, kurt = _moments(x) if moments is None else moments
    y = skew * np.sqrt((n + 1) * (n + 3) / (6.0 * (n - 2)))
    beta2 = 3.0 * (n**2 + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2) * (n + 5) * (n + 7) * (n + 9))
    w2 = -1 + np.sqrt(2 * (beta2 - 1))
    delta = 1 / np.sqrt(0.5 * np.log(w2))
    alpha = np.sqrt(2.0 / (w2 - 1))
    y = 1.0 if y == 0 else y
    z_skew = delta * np.log(y / alpha + np.sqrt((y / alpha) ** 2 + 1))
    mean = 3.0 * (n - 1) / (n + 1)
    var = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    t = (kurt + 3.0 - mean) / np.sqrt(var)
    root_beta1 = (
        6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9))
        * np.sqrt(6.0 * (n + 3) * (n + 5) / (n * (n - 2) * (n - 3)))
    )  # fmt: skip
    a = 6.0 + 8.0 / root_beta1 * (2.0 / root_beta1 + np.sqrt(1 + 4.0 / root_beta1**2))
    denom = 1 + t * np.sqrt(2 / (a - 4.0))
    if denom == 0:
        return np.nan, np.nan
    term2 = np.sign(denom) * ((1 - 2.0 / a) / abs(denom)) ** (1 / 3)
    z_kurt = (1 - 2 / (9.0 * a) - term2) / np.sqrt(2 / (9.0 * a))
    k2 = float(z_skew**2 + z_kurt**2)
    return k2, float(special.chdtrc(2, k2))


def brown_forsythe(x: np.ndarray, group: np.ndarray) -> tuple[float, float]:
    """Levene's test with the group medians (Brown-Forsythe; scipy.stats.levene with
    ``center="median"``) over the groups with at least 2 values; NaN with fewer than 2 groups."""
    counts = np.bincount(group)
    keep = counts[group] >= 2
    x, group = x[keep], group[keep]
    present = np.flatnonzero(counts >= 2)
    if present.size < 2:
        return np.nan, np.nan
    group = np.searchsorted(present, group)
    n_i = counts[present].astype(float)
    # sorted by group, then value: a value sort followed by a stable (radix) sort of the group
    by_value = np.argsort(x)
    codes = group[by_value].astype(np.int32 if present.size > 32_000 else np.int16)
    sorted_x = x[by_value[np.argsort(codes, kind="stable")]]
    start = np.concatenate([[0], np.cumsum(n_i.astype(np.int64))[:-1]])
    lo = start + (n_i.astype(np.int64) - 1) // 2
    hi = start + n_i.astype(np.int64) // 2
    median = (sorted_x[lo] + sorted_x[hi]) / 2
    z = np.abs(x - median[group])
    k, n = present.size, float(x.size)
    z_i = np.bincount(group, weights=z) / n_i
    z_all = np.sum(z_i * n_i) / n
    between = np.sum(n_i * (z_i - z_all) ** 2)
    within = np.sum((z - z_i[group]) ** 2)
    F = float((n - k) / (k - 1) * between / within)
    return F, float(special.fdtrc(k - 1, n - k, F))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    order = np.argsort(x)  # tied values share one rank, so their order does not matter
    xs = x[order]
    first = np.concatenate([[True], xs[1:] != xs[:-1]])
    tie_group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, x.size))
    ranks = np.empty(x.size)
    ranks[order] = (starts + (sizes + 1) / 2.0)[tie_group]
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value from the t distribution on n - 2 df
    (scipy.stats.spearmanr's)."""
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = np.sqrt(np.sum(rx * rx) * np.sum(ry * ry))
    if not denom > 0:
        return np.nan, np.nan
    rho = float(np.clip(np.sum(rx * ry) / denom, -1.0, 1.0))
    df = x.size - 2
    if df < 1:
        return rho, np.nan
    # |rho| = 1 (e.g. 2 networks x 2 images) gives t = +-inf and p = 0, as scipy does
    with np.errstate(divide="ignore"):
        t = rho * np.sqrt(np.float64(df) / ((1.0 - rho) * (1.0 + rho)))
    return rho, float(2 * special.stdtr(df, -abs(t)))


def residual_checks(rf: ResponseFit, scale: str) -> dict:
    """Normality and homoscedasticity statistics of one fit's conditional residuals.

    Returns
    -------
    dict with ``n``; ``skewness`` and ``excess_kurtosis`` (0 for a normal);
    ``normality_stat``/``normality_p`` (D'Agostino-Pearson K^2); ``levene_F``/``levene_p``
    (Brown-Forsythe test of equal residual spread across networks); ``spread_rho``/``spread_p``
    (Spearman correlation of |residual| with the fitted value: a funnel shows as rho > 0).
    Each equals scipy.stats' (normaltest, levene(center="median"), spearmanr, skew, kurtosis).
    """
    resid, fitted = rf.fit.residuals, rf.fit.fitted
    skew, kurt = _moments(resid)
    k2, k2_p = normal_test(resid, (skew, kurt))
    lev, lev_p = brown_forsythe(resid, rf.design.cell)
    rho, rho_p = spearman(np.abs(resid), fitted)
    return {
        "response": rf.response,
        "scale": scale,
        "model_scale": scale == study_responses([rf.response]).get(rf.response),
        "n": resid.size,
        "skewness": skew,
        "excess_kurtosis": kurt,
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
    layout: Layout | None = None,
) -> pd.DataFrame:
    """Residual checks for every response on the raw ("identity") and the log scale.

    Parameters
    ----------
    table : long evaluation table.
    fits : the study's fits (on their model scale), reused instead of refitting.
    plot_dir : when given, writes ``diagnostics.png`` there: per response (rows) the normal QQ
        plot and the residual-vs-fitted plot on the raw and on the log scale (columns).
    layout : ``advmri.stats.design.table_layout(table)``, when already computed.

    Returns
    -------
    DataFrame with :data:`DIAGNOSTICS_COLUMNS`, one row per (response, scale); a scale that
    cannot be fitted (e.g. no positive values under the log) is left out and logged.
    """
    by_response = diagnostic_fits(table, fits, layout)
    if plot_dir is not None and by_response:
        plot_residuals(by_response, Path(plot_dir) / "diagnostics.png")
    return diagnostics_table(by_response)


def diagnostic_fits(
    table: pd.DataFrame,
    fits: dict[str, ResponseFit] | None = None,
    layout: Layout | None = None,
    allow_missing_networks: bool = False,
) -> dict[str, dict[str, ResponseFit]]:
    """Every response fitted on the raw ("identity") and the log scale: response -> scale ->
    fit, reusing ``fits`` on their model scale; a scale that cannot be fitted is logged and
    left out. ``allow_missing_networks`` as in :func:`advmri.stats.analysis.fit_response`."""
    fits = fits or {}
    layout = table_layout(table) if layout is None else layout
    by_response: dict[str, dict[str, ResponseFit]] = {}
    for response, model_scale in study_responses(table).items():
        for scale in SCALES:
            rf = fits.get(response) if scale == model_scale else None
            try:
                rf = rf or fit_response(
                    table,
                    response,
                    scale,
                    layout=layout,
                    allow_missing_networks=allow_missing_networks,
                )
            except AdvmriError as error:
                logger.warning(
                    "diagnostics: %s on the %s scale not fitted: %s", response, scale, error
                )
                continue
            by_response.setdefault(response, {})[scale] = rf
    return by_response


def diagnostics_table(by_response: dict[str, dict[str, ResponseFit]]) -> pd.DataFrame:
    """:func:`residual_checks` of every fit of :func:`diagnostic_fits`, one row each."""
    rows = [
        residual_checks(rf, scale)
        for per_scale in by_response.values()
        for scale, rf in per_scale.items()
    ]
    return pd.DataFrame(rows, columns=DIAGNOSTICS_COLUMNS)


def residual_panels(
    fits: dict[str, dict[str, ResponseFit]], max_points: int = 3000
) -> list[tuple[str, str, dict[str, np.ndarray] | None]]:
    """What :func:`plot_residuals` draws, as small arrays: per (response, scale) the QQ points
    and a residual-vs-fitted subset (None where that scale was not fitted).

    At most ``max_points`` points a panel: evenly spaced ranks for the QQ plot, a seeded random
    subset (seed 0, in response then scale order) for the scatter.
    """
    rng = np.random.default_rng(0)
    panels = []
    for response, per_scale in fits.items():
        for scale in SCALES:
            if scale not in per_scale:
                panels.append((response, scale, None))
                continue
            rf = per_scale[scale]
            resid, fitted = rf.fit.residuals, rf.fit.fitted
            z = np.sort((resid - resid.mean()) / resid.std())
            n = z.size
            pick = np.unique(np.linspace(0, n - 1, min(n, max_points)).astype(int))
            sub = rng.choice(n, min(n, max_points), replace=False)
            panels.append(
                (
                    response,
                    scale,
                    {
                        "theory": special.ndtri((pick + 0.5) / n),
                        "sample": z[pick],
                        "fitted": fitted[sub],
                        "resid": resid[sub],
                    },
                )
            )
    return panels


def plot_residuals(
    fits: dict[str, dict[str, ResponseFit]], path: Path, max_points: int = 3000
) -> Path:
    """One PNG: per response a row with the normal QQ plot and the residual-vs-fitted plot of
    each scale (raw, then log), Agg backend.

    At most ``max_points`` points are drawn per panel (see :func:`residual_panels`), so
    116,640-row fits plot in about a second.
    """
    return draw_panels(residual_panels(fits, max_points), Path(path))


def draw_panels(panels: list, path: Path) -> Path:
    """Draw :func:`residual_panels`' arrays to ``path`` (PNG, 80 dpi), on its own Agg canvas
    without pyplot (whose import alone took ~1 s)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    n_cols = 2 * len(SCALES)
    n_rows = max(1, len(panels) // len(SCALES))
    fig = Figure(figsize=(3.2 * n_cols, 2.6 * n_rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for k, (response, scale, data) in enumerate(panels):
        row, col = divmod(k, len(SCALES))
        ax_qq, ax_rf = axes[row, 2 * col], axes[row, 2 * col + 1]
        if data is None:
            ax_qq.set_axis_off()
            ax_rf.set_axis_off()
            continue
        theory = data["theory"]
        label = f"ln({response})" if scale == "log" else response
        ax_qq.plot(theory, data["sample"], ".", ms=2, color="tab:blue")
        ax_qq.plot(theory[[0, -1]], theory[[0, -1]], "-", color="tab:red", lw=1)
        ax_qq.set_title(f"{label}: normal QQ", fontsize=9)
        ax_rf.plot(data["fitted"], data["resid"], ".", ms=2, alpha=0.4, color="tab:blue")
        ax_rf.axhline(0, color="tab:red", lw=1)
        ax_rf.set_title(f"{label}: residual vs fitted", fontsize=9)
        for ax in (ax_qq, ax_rf):
            ax.tick_params(labelsize=7)
            # four ticks an axis: tick labels are most of the drawing time
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.yaxis.set_major_locator(MaxNLocator(4))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.04, top=0.96, wspace=0.3, hspace=0.45)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path


def _plot_worker(connection, path: Path) -> None:
    """Body of :class:`BackgroundPlot`'s process: import matplotlib while the statistics run,
    then draw the panels it is sent (None: nothing to draw)."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401

    panels = connection.recv()
    if panels:
        draw_panels(panels, path)


class BackgroundPlot:
    """``diagnostics.png`` drawn by a forked process, started before the statistics.

    The figure costs about as much as all the statistics (matplotlib's import and its text
    layout) and needs only the residuals, so a process started first imports matplotlib while
    the CSVs are read and the models fitted, and draws while the tables are computed: on a
    second core it costs no wall time. Use as a context manager; :meth:`draw` hands it the fits.
    Leaving the block waits for the drawing (a failed one raises RuntimeError); an exception in
    the block stops the process. Without ``fork`` the figure is drawn in :meth:`draw`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._job = self._connection = None
        if "fork" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("fork")
            self._connection, child = context.Pipe()
            self._job = context.Process(
                target=_plot_worker, args=(child, self.path), name="diagnostics-plot"
            )
        self._sent = False

    def __enter__(self) -> BackgroundPlot:
        if self._job is not None:
            self._job.start()
        return self

    def draw(self, fits: dict[str, dict[str, ResponseFit]]) -> None:
        """Draw the residual plot of ``fits`` (as :func:`plot_residuals`)."""
        panels = residual_panels(fits) if fits else []
        if self._job is None:
            if panels:
                draw_panels(panels, self.path)
        else:
            self._connection.send(panels)
        self._sent = True

    def __exit__(self, kind, error, trace) -> None:
        if self._job is None:
            return
        if kind is not None:
            self._job.terminate()
            self._job.join()
            return
        if not self._sent:
            self._connection.send([])
        self._job.join()
        if self._job.exitcode != 0:
            raise RuntimeError(
                f"drawing {self.path} failed in its process (exit code {self._job.exitcode})"
            )
