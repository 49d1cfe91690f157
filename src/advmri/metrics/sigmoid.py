"""Batched least-squares fit of the 4-parameter sigmoid edge model to many profiles at once.

The model (Ahmad et al. 2015, used by Javadi et al. 2024 for lesion-edge sharpness) is

    f(x) = a1 + a2 / (1 + exp(S (a0 - x))) = a1 + a2 * expit(S (x - a0))

with ``a0`` the edge's position, ``a1`` the offset, ``a2`` the edge contrast and ``S`` the growth
rate (1/pixel when ``x`` is in pixels). ``(a0, a1, a2, S)`` and ``(a0, a1 + a2, -a2, -S)`` describe
the same curve, so only ``|S|`` is meaningful; the starting values pick ``a2 > 0``.

All profiles are fitted together by one Levenberg-Marquardt iteration on stacked 4 x 4 normal
equations (analytic Jacobian, Marquardt's diagonal scaling, one damping factor per profile,
an unrolled batched Cholesky solve), so a test set's 4,320 profiles cost a few hundred numpy
calls instead of 4,320 ``scipy.optimize.curve_fit`` calls (``benchmarks/sigmoid_fit.py``).
Profiles that have converged are frozen and retired from the working set, and every per-profile
sum runs over that profile's own contiguous row, so a profile's result is bit-identical
whatever else is in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from advmri.errors import DataError

#: Reason codes of :class:`SigmoidFit` (``""`` for a good fit).
FLAT_PROFILE = "flat_profile"
FIT_NOT_CONVERGED = "fit_not_converged"
FIT_AT_BOUND = "fit_at_bound"

PARAMETER_NAMES = ("a0", "a1", "a2", "S")

#: Levenberg-Marquardt damping: its start, and the factors on an accepted and a rejected step.
LAMBDA_START, LAMBDA_DOWN, LAMBDA_UP = 1e-3, 10.0, 10.0


@dataclass(frozen=True)
class SigmoidFit:
    """Result of :func:`fit_sigmoids` for P profiles.

    Attributes
    ----------
    params : (P, 4) float64
        ``a0, a1, a2, S`` per profile; the fitted values are kept even where ``ok`` is False.
    ok : (P,) bool
        True where the fit converged inside the bounds and the profile was not flat.
    reason : (P,) str
        ``""`` where ``ok``; otherwise ``"flat_profile"`` (range at most ``flat_tol``; not
        fitted), ``"fit_not_converged"`` (``max_iter`` reached, or a non-finite value) or
        ``"fit_at_bound"`` (a parameter ended on a bound: the profile has no edge the model
        can place inside the segment).
    iterations : (P,) int
        Levenberg-Marquardt iterations used.
    cost : (P,) float64
        Half the sum of squared residuals at ``params``.
    """

    params: np.ndarray
    ok: np.ndarray
    reason: np.ndarray
    iterations: np.ndarray
    cost: np.ndarray

    @property
    def slope(self) -> np.ndarray:
        """``|S|`` per profile (1/unit of x), NaN where the fit is not ``ok``."""
        return np.where(self.ok, np.abs(self.params[:, 3]), np.nan)


def sigmoid(x: np.ndarray, a0, a1, a2, s) -> np.ndarray:
    """The edge model ``a1 + a2 / (1 + exp(s (a0 - x)))``, overflow-free (numpy broadcasting)."""
    return a1 + a2 * expit(s * (x - a0))


def _expit(u: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-u)), computed in place in ``u`` (a scratch array)."""
    # exp overflows to inf past 709 and 1/(1+inf) = 0 is the right limit; silence the warning.
    with np.errstate(over="ignore"):
        np.negative(u, out=u)
        np.exp(u, out=u)
        u += 1.0
        return np.reciprocal(u, out=u)


def _evaluate(x: np.ndarray, p: np.ndarray, y: np.ndarray):
    """Residuals (P, N), the Jacobian's columns and the cost for parameters (4, P).

    The columns come as ``(g, sig, g * d)`` with ``g = a2 sig (1 - sig)`` and ``d = x - a0``:
    d/da2 is ``sig``, d/dS is ``g d``, d/da1 is 1 and d/da0 is ``-S g``, which
    :func:`_normal_equations` applies to the sums rather than to every sample.
    """
    a0, a1, a2, s = p[0][:, None], p[1][:, None], p[2][:, None], p[3][:, None]
    d = x[None, :] - a0
    sig = _expit(s * d)
    g = 1.0 - sig
    g *= sig
    g *= a2
    resid = a2 * sig
    resid += a1
    resid -= y
    cost = 0.5 * np.einsum("pn,pn->p", resid, resid)
    d *= g
    return resid, (g, sig, d), cost


def _normal_equations(cols, resid: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """J^T J as (4, 4, P) and J^T r as (4, P) from :func:`_evaluate`'s columns at growth rate
    ``s`` (P,); column 1 (d/da1) is all ones, column 0 (d/da0) is ``-s g``."""
    g, j2, j3 = cols
    n = resid.shape[1]
    dot = lambda u, v: np.einsum("pn,pn->p", u, v)  # noqa: E731
    # einsum's row sums: several times faster than .sum(axis=1) on short rows, same order
    total = lambda u: np.einsum("pn->p", u)  # noqa: E731
    ms = -s
    s0, s2, s3 = ms * total(g), total(j2), total(j3)
    a = np.empty((4, 4, resid.shape[0]))
    a[0, 0], a[0, 1] = ms * ms * dot(g, g), s0
    a[0, 2], a[0, 3] = ms * dot(g, j2), ms * dot(g, j3)
    a[1, 1], a[1, 2], a[1, 3] = n, s2, s3
    a[2, 2], a[2, 3] = dot(j2, j2), dot(j2, j3)
    a[3, 3] = dot(j3, j3)
    for i in range(4):
        for k in range(i):
            a[i, k] = a[k, i]
    grad = np.stack([ms * dot(g, resid), total(resid), dot(j2, resid), dot(j3, resid)])
    return a, grad


def _solve_spd(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``a[:, :, p] x = b[:, p]`` for every p by Cholesky; ``(x, ok)`` with ok False where
    the matrix is not numerically positive definite. Batched over the last axis with the small
    dimension unrolled: far cheaper than ``np.linalg.solve`` on thousands of 4 x 4 systems."""
    m = a.shape[0]
    low: list[list[np.ndarray]] = [[None] * m for _ in range(m)]  # type: ignore[list-item]
    ok = np.ones(a.shape[2], dtype=bool)
    for j in range(m):
        diag = a[j, j].copy()
        for k in range(j):
            diag -= low[j][k] * low[j][k]
        ok &= diag > 1e-300
        root = np.sqrt(np.where(ok, diag, 1.0))
        low[j][j] = root
        for i in range(j + 1, m):
            val = a[i, j].copy()
            for k in range(j):
                val -= low[i][k] * low[j][k]
            val /= root
            low[i][j] = val
    z: list[np.ndarray] = []
    for i in range(m):
        val = b[i].copy()
        for k in range(i):
            val -= low[i][k] * z[k]
        z.append(val / low[i][i])
    sol = np.empty_like(b)
    for i in reversed(range(m)):
        val = z[i].copy()
        for k in range(i + 1, m):
            val -= low[k][i] * sol[k]
        sol[i] = val / low[i][i]
    return sol, ok & np.isfinite(sol).all(axis=0)


def initial_guess(x: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """Robust starting values (P, 4) for :func:`fit_sigmoids`.

    ``a1`` = the profile's minimum, ``a2`` = its range (so ``a2 > 0``), ``a0`` = where the
    profile crosses half-way between its first and last samples' mean levels (linear
    interpolation; the steepest finite difference if it never crosses), and ``S`` = 4 x the
    slope there / range (the logistic's slope at its midpoint is ``a2 S / 4``), negative for a
    falling profile, clipped to [0.05, 20] in magnitude.
    """
    profiles = np.asarray(profiles, dtype=np.float64)
    n_prof, n = profiles.shape
    rows = np.arange(n_prof)
    lo = profiles.min(axis=1)
    span = profiles.max(axis=1) - lo
    quarter = max(1, n // 4)
    first = profiles[:, :quarter].mean(axis=1)
    last = profiles[:, -quarter:].mean(axis=1)
    rising = last >= first
    # Sign-flip falling profiles so that "crossing" means going from below to above the level.
    signed = np.where(rising[:, None], profiles, -profiles)
    level = np.where(rising, 0.5 * (first + last), -0.5 * (first + last))
    above = signed >= level[:, None]
    crosses = ~above[:, :-1] & above[:, 1:]
    has_cross = crosses.any(axis=1)
    slopes = np.diff(signed, axis=1) / np.diff(x)[None, :]
    k = np.where(has_cross, np.argmax(crosses, axis=1), np.argmax(slopes, axis=1))
    y0, y1 = signed[rows, k], signed[rows, k + 1]
    frac = np.clip((level - y0) / np.where(y1 != y0, y1 - y0, 1.0), 0.0, 1.0)
    a0 = x[k] + frac * (x[k + 1] - x[k])
    # Slope over a few samples around the crossing: one noisy difference overstates it.
    k_lo, k_hi = np.maximum(k - 1, 0), np.minimum(k + 2, n - 1)
    slope = (signed[rows, k_hi] - signed[rows, k_lo]) / (x[k_hi] - x[k_lo])
    s = np.clip(4.0 * slope / np.maximum(span, np.finfo(float).tiny), 0.05, 20.0)
    return np.stack([a0, lo, span, np.where(rising, s, -s)], axis=1)


def fit_sigmoids(
    x: np.ndarray,
    profiles: np.ndarray,
    *,
    p0: np.ndarray | None = None,
    max_slope: float | np.ndarray = 50.0,
    contrast_factor: float = 10.0,
    flat_tol: float = 1e-6,
    xtol: float = 1e-6,
    gtol: float = 1e-14,
    max_iter: int = 100,
) -> SigmoidFit:
    """Least-squares fit of ``a1 + a2 / (1 + exp(S (a0 - x)))`` to every row of ``profiles``.

    Parameters
    ----------
    x : (N,) float
        Sample positions shared by all profiles (pixels along the segment, in this project);
        at least 5 distinct values.
    profiles : (P, N) float
        One intensity profile per row.
    p0 : (P, 4) float, optional
        Starting values ``a0, a1, a2, S``; :func:`initial_guess` by default.
    max_slope : float or (P,) float
        Bound on ``|S|`` (1/unit of x), one for all profiles or one per profile. 50/pixel is a
        transition narrower than a fiftieth of a pixel, far steeper than anything a spline
        through pixel values can show.
    contrast_factor : float
        Bounds ``|a2| <= contrast_factor * range`` and ``a1`` within ``contrast_factor * range``
        of the profile's extremes: a sigmoid with a far larger contrast is fitting a straight
        line, not an edge.
    flat_tol : float
        Profiles whose range (max - min) is at most this are not fitted (reason
        ``"flat_profile"``): the model is not identifiable on a constant.
    xtol, gtol : float
        A profile has converged when an accepted step changes every parameter by less than
        ``xtol * (|parameter| + typical)`` (typical: the span of x for a0, the profile's
        range for a1 and a2, 1e-3 for S), when every component of the gradient of its cost is
        below ``gtol`` times the number of samples, when its damping has grown past 1e16 (no
        representable improvement is left) or when its cost is below 1e-30 (an exact fit).
        ``xtol = 1e-6`` leaves S within 4e-7 of the optimum on both sharpness methods' profiles
        (``benchmarks/sigmoid_fit.py``) in one iteration fewer than 1e-7.
    max_iter : int
        Iteration limit (reason ``"fit_not_converged"`` where reached).

    Returns
    -------
    SigmoidFit
        Parameters, ``ok`` mask and a reason per profile.

    Notes
    -----
    Bounds: ``a0`` within the span of ``x``, ``|S| <= max_slope``, and the contrast bounds above.
    Steps are projected onto the bounds; a fit whose ``a0``, ``a2`` or ``S`` ends on a bound is
    reported as ``"fit_at_bound"`` (``a1``'s bound only follows ``a2``'s). On profiles whose
    optimum lies inside the bounds the result equals the unbounded
    ``scipy.optimize.curve_fit`` fit (the tests check 1e-6 relative agreement).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.atleast_2d(np.asarray(profiles, dtype=np.float64))
    if x.ndim != 1 or np.unique(x).size < 5 or y.ndim != 2 or y.shape[1] != x.size:
        raise DataError(
            f"fit_sigmoids needs x of at least 5 distinct positions and profiles of shape "
            f"(P, {x.size}); got x {x.shape} and profiles {y.shape}"
        )
    n_prof = y.shape[0]
    finite = np.isfinite(y).all(axis=1)
    y = np.where(finite[:, None], y, 0.0)
    lo_y, hi_y = y.min(axis=1), y.max(axis=1)
    span = hi_y - lo_y
    flat = finite & (span <= flat_tol)
    active = finite & ~flat

    start = initial_guess(x, y) if p0 is None else np.array(p0, dtype=np.float64)
    margin = contrast_factor * span
    slope_bound = np.broadcast_to(np.asarray(max_slope, dtype=np.float64), (n_prof,))
    lower = np.stack([np.full(n_prof, x.min()), lo_y - margin, -margin, -slope_bound])
    upper = np.stack([np.full(n_prof, x.max()), hi_y + margin, margin, slope_bound])
    p = np.clip(start.T, lower, upper)  # parameters as (4, P): one contiguous row per parameter

    # Scale below which a parameter's change is negligible: a0 against the segment, a1 and a2
    # against the profile's range, S against 1/pixel-ish units.
    typical = np.stack([np.full(n_prof, np.ptp(x)), span, span, np.full(n_prof, 1e-3)])
    iterations = np.zeros(n_prof, dtype=np.int64)
    cost = np.zeros(n_prof)
    converged = ~active
    eye = np.eye(4)[:, :, None]

    # Working set: the profiles still iterating with their data and state, shrunk as they
    # converge so that stragglers cost little.
    idx = np.flatnonzero(active)
    w_p, w_y, w_lo, w_hi, w_typ = p[:, idx], y[idx], lower[:, idx], upper[:, idx], typical[:, idx]
    w_lam, w_iter = np.full(idx.size, LAMBDA_START), np.zeros(idx.size, dtype=np.int64)
    w_resid, w_cols, w_cost = _evaluate(x, w_p, w_y)
    w_done = w_cost < 1e-30
    for it in range(max_iter + 1):
        # Retire converged profiles in bulk (copying the working arrays costs as much as an
        # iteration); until then they stay frozen, so a result never depends on its batch.
        n_done = np.count_nonzero(w_done)
        if n_done and (n_done == idx.size or n_done >= 0.25 * idx.size or it == max_iter):
            gone, keep = idx[w_done], ~w_done
            p[:, gone], cost[gone], iterations[gone] = (
                w_p[:, w_done],
                w_cost[w_done],
                w_iter[w_done],
            )
            converged[gone] = True
            idx, w_y, w_lam, w_iter, w_resid, w_cost, w_done = (
                a[keep] for a in (idx, w_y, w_lam, w_iter, w_resid, w_cost, w_done)
            )
            w_p, w_lo, w_hi, w_typ = (a[:, keep] for a in (w_p, w_lo, w_hi, w_typ))
            w_cols = tuple(c[keep] for c in w_cols)
        if idx.size == 0 or it == max_iter:
            break
        live = ~w_done
        w_iter += live
        jtj, grad = _normal_equations(w_cols, w_resid, w_p[3])
        diag = np.einsum("iip->ip", jtj)
        # Marquardt scaling by diag(J^T J) keeps the step invariant to the parameters' units;
        # the floor keeps the system regular where a column vanishes (e.g. a2 = 0).
        scale = np.maximum(diag, 1e-12 * np.maximum(diag.max(axis=0), 1e-300))
        step, solved = _solve_spd(jtj + eye * (w_lam * scale)[None], -grad)
        solved &= live
        trial = np.clip(w_p + np.where(solved, step, 0.0), w_lo, w_hi)
        t_resid, t_cols, t_cost = _evaluate(x, trial, w_y)
        better = solved & np.isfinite(t_cost) & (t_cost <= w_cost)
        small = (np.abs(trial - w_p) <= xtol * (np.abs(w_p) + w_typ)).all(axis=0)
        flat_grad = (np.abs(grad) <= gtol * x.size).all(axis=0)

        w_p = np.where(better, trial, w_p)
        w_cost = np.where(better, t_cost, w_cost)
        # Keep the trial's arrays and restore the rejected live rows (frozen rows were evaluated
        # at their own parameters, so their trial rows equal the current ones bit for bit).
        back = np.flatnonzero(live & ~better)
        if back.size:
            t_resid[back] = w_resid[back]
            for c, t in zip(w_cols, t_cols, strict=True):
                t[back] = c[back]
        w_resid, w_cols = t_resid, t_cols
        w_lam = np.where(
            live,
            np.clip(np.where(better, w_lam / LAMBDA_DOWN, w_lam * LAMBDA_UP), 1e-15, None),
            w_lam,
        )
        w_done |= live & ((better & small) | flat_grad | (w_lam > 1e16) | (w_cost < 1e-30))
    p[:, idx], cost[idx], iterations[idx] = w_p, w_cost, w_iter  # not converged

    p = p.T.copy()
    reason = np.full(n_prof, "", dtype=object)
    reason[~finite] = FIT_NOT_CONVERGED
    reason[flat] = FLAT_PROFILE
    width = (upper - lower).T
    at_bound = ((p - lower.T <= 1e-9 * width) | (upper.T - p <= 1e-9 * width))[:, [0, 2, 3]]
    # A fit pinned on a bound crawls along it (projected steps) and may not meet the tolerances;
    # it is reported as at the bound whether or not it converged there.
    reason[active & at_bound.any(axis=1)] = FIT_AT_BOUND
    bad = active & (reason == "") & (~converged | ~np.isfinite(p).all(axis=1))
    reason[bad] = FIT_NOT_CONVERGED
    return SigmoidFit(params=p, ok=reason == "", reason=reason, iterations=iterations, cost=cost)
