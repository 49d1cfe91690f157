"""The random-intercept model y = mu[network] + u[image] + e, fitted by REML, with Wald tests.

Fixed effects are the network (cell) means, so every hypothesis of the factorial model
``y ~ lr * w_per * w_adv + (1 | sample)`` is a contrast on them. Variance parameters are
s1 = Var(u) (image) and s2 = Var(e) (residual).

Two fits give the same :class:`MixedFit`:

- :func:`fit_complete` — every network has every image once: the network x image two-way
  layout without replication has a closed form (REML = ANOVA estimators, error df (I-1)(J-1)).
- :func:`fit_reml` — any layout: the REML deviance profiled over s2 is a function of
  gamma = s1 / s2 alone, evaluated exactly per image block (Woodbury) and minimised by root
  finding on its analytic gradient; the observed REML Hessian and the Jacobian of Cov(beta)
  are analytic too.

Tests follow lmerTest (Kuznetsova et al. 2017, J Stat Softw 82(13)): t and F from Cov(beta),
Satterthwaite df = 2 Var(Lb)^2 / (g' A g) with g the gradient of Var(Lb) in the variance
parameters and A = 2 H^-1 (H the Hessian of the REML deviance); multi-df F tests decompose
L Cov(beta) L' into eigen-contrasts and combine their df as lmerTest's ``contestMD``. These df
do not depend on how the variance parameters are parameterised (lmerTest uses the relative
Cholesky factor and sigma), so (s1, s2) gives the same numbers.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from advmri.errors import DataError

try:  # threadpoolctl comes with scikit-learn (via nilearn); without it BLAS runs as configured.
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


def single_thread_blas() -> contextlib.AbstractContextManager:
    """Run BLAS on one thread: the matrices here are ~200 x 200, where OpenBLAS threads only add
    synchronisation (a 216 x 216 Cholesky took 0.4 ms on one thread and 120 ms on two busy
    cores)."""
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


#: Eigenvalue tolerance (relative to the largest) that sets the rank of an F test (lmerTest's).
_RANK_EPS = np.sqrt(np.finfo(float).eps)


@dataclass
class MixedFit:
    """A fitted random-intercept model on network means.

    Attributes
    ----------
    beta : (I,) estimated network (cell) means, model scale.
    cov : (I, I) Cov(beta) at the REML estimates.
    dcov : list of (I, I) derivatives of Cov(beta) w.r.t. the free variance parameters
        (s1, s2), or (s2,) alone when s1 sits on its boundary 0.
    varpar_cov : asymptotic covariance of the free variance parameters, 2 H^-1.
    sample_var, residual_var : REML estimates of s1 = Var(image), s2 = Var(residual).
    method : "closed_form" or "reml".
    fitted, residuals : per observation, conditional on the predicted image effects (BLUPs).
    compound : for the closed form, ``cov`` and each of ``dcov`` as (a, b) with the matrix
        a I + b 11' (compound symmetry), so that contrasts cost O(r I) instead of O(r I^2);
        None for REML.
    """

    beta: np.ndarray
    cov: np.ndarray
    dcov: list[np.ndarray]
    varpar_cov: np.ndarray
    sample_var: float
    residual_var: float
    method: str
    fitted: np.ndarray = field(repr=False)
    residuals: np.ndarray = field(repr=False)
    compound: tuple[tuple[float, float], list[tuple[float, float]]] | None = field(
        default=None, repr=False
    )

    def contrasts(self, L: np.ndarray) -> dict[str, np.ndarray]:
        """Estimate, SE and Satterthwaite df of each row of ``L`` (one-df t tests).

        Parameters
        ----------
        L : (r, I) contrast / linear-function rows on the network means.

        Returns
        -------
        dict with arrays ``estimate``, ``se``, ``df``, ``t`` (length r).
        """
        L = np.atleast_2d(np.asarray(L, dtype=float))
        estimate = L @ self.beta
        if self.compound is not None:
            # l'(a I + b 11')l = a |l|^2 + b (sum l)^2
            squares, sums2 = np.einsum("ij,ij->i", L, L), L.sum(axis=1) ** 2
            (a, b), dparts = self.compound
            var = a * squares + b * sums2
            grads = np.stack([da * squares + db * sums2 for da, db in dparts], axis=1)
        else:
            var = np.einsum("ij,ij->i", L @ self.cov, L)
            grads = np.stack([np.einsum("ij,ij->i", L @ d, L) for d in self.dcov], axis=1)
        denom = np.einsum("ij,jk,ik->i", grads, self.varpar_cov, grads)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = 2 * var**2 / denom
            se = np.sqrt(var)
            t = estimate / se
        return {"estimate": estimate, "se": se, "df": df, "t": t}

    def f_test(self, L: np.ndarray) -> dict[str, float]:
        """Wald F test of ``L beta = 0`` with Satterthwaite denominator df (lmerTest contestMD).

        The numerator df is the rank of L Cov(beta) L' (eigenvalues above sqrt(eps) of the
        largest); each eigen-contrast m gets its own df nu_m, and the F's denominator df is
        2E / (E - q) with E = sum nu_m / (nu_m - 2) (2 if any nu_m <= 2; their mean if all equal
        within 1e-8).

        Returns
        -------
        dict with ``F``, ``num_df``, ``den_df``, ``p``.
        """
        L = np.atleast_2d(np.asarray(L, dtype=float))
        values, vectors = np.linalg.eigh(L @ self.cov @ L.T)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        q = int(np.sum(values > max(_RANK_EPS * values[0], 0.0)))
        if q == 0:
            raise ValueError("contrast has no estimable direction (L Cov L' is zero)")
        rows = vectors[:, :q].T @ L
        t2 = (rows @ self.beta) ** 2 / values[:q]
        F = float(np.sum(t2) / q)
        nu = self.contrasts(rows)["df"]
        den_df = satterthwaite_f_df(nu)
        return {"F": F, "num_df": q, "den_df": den_df, "p": float(special.fdtrc(q, den_df, F))}


def satterthwaite_f_df(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of an F built from q independent t statistics with df ``nu`` (lmerTest).

    nu itself for q = 1; mean(nu) when all are within ``tol`` of each other; 2 if any nu <= 2;
    else 2E / (E - q) with E = sum nu / (nu - 2).
    """
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    e = np.sum(nu / (nu - 2))
    return float(2 * e / (e - nu.size))


def _check_layout(y: np.ndarray, cell: np.ndarray, sample: np.ndarray) -> tuple[int, int]:
    if not (y.shape == cell.shape == sample.shape) or y.ndim != 1:
        raise ValueError("y, cell and sample must be 1-D arrays of one length")
    if not np.all(np.isfinite(y)):
        raise DataError("stats: response has NaN or infinite values; drop them before fitting")
    n_cells, n_samples = int(cell.max()) + 1, int(sample.max()) + 1
    if not (np.bincount(cell).all() and np.bincount(sample).all()):
        raise ValueError("cell and sample must be codes 0..K-1 with every code present")
    if n_samples < 2:
        raise DataError("stats: the model needs at least 2 test images")
    if y.size <= n_cells + 1:
        raise DataError(
            f"stats: {y.size} observations cannot fit {n_cells} network means and 2 variances"
        )
    return n_cells, n_samples


def _blups(y, cell, sample, beta, s1, s2, n_samples):
    """Conditional fitted values and residuals: u_j = s1 / (s2 + n_j s1) * sum_j (y - beta)."""
    marginal = y - beta[cell]
    n_j = np.bincount(sample, minlength=n_samples)
    u = s1 / (s2 + n_j * s1) * np.bincount(sample, weights=marginal, minlength=n_samples)
    fitted = beta[cell] + u[sample]
    return fitted, y - fitted


def fit_complete(y: np.ndarray, cell: np.ndarray, sample: np.ndarray) -> MixedFit:
    """Closed-form REML fit when every network has exactly one observation per image.

    With I networks and J images (the two-way layout without replication), REML gives
    s2 = MS_E (df (I-1)(J-1)) and s1 = (MS_image - MS_E) / I; when MS_image < MS_E the image
    variance is 0 and s2 = (SS_image + SS_E) / (I (J-1)). Cov(beta) = (s2 I + s1 11') / J and
    the variance-parameter covariance comes from the independent mean squares
    (Var(MS) = 2 MS^2 / df), so every within-network contrast has df (I-1)(J-1).

    Raises
    ------
    ValueError
        the layout is not complete (use :func:`fit_reml`).
    """
    y, cell, sample = np.asarray(y, float), np.asarray(cell), np.asarray(sample)
    n_cells, n_samples = _check_layout(y, cell, sample)
    if y.size != n_cells * n_samples:
        raise ValueError("fit_complete needs one observation per network and image")
    Y = np.full((n_cells, n_samples), np.nan)
    Y[cell, sample] = y
    if np.isnan(Y).any():
        raise ValueError("fit_complete needs one observation per network and image")
    beta = Y.mean(axis=1)
    image_means = Y.mean(axis=0)
    grand = Y.mean()
    resid = Y - beta[:, None] - image_means[None, :] + grand
    df_e = (n_cells - 1) * (n_samples - 1)
    ms_e = float(np.sum(resid**2) / df_e)
    ss_img = float(n_cells * np.sum((image_means - grand) ** 2))
    ms_img = ss_img / (n_samples - 1)
    eye, ones = np.eye(n_cells), np.ones((n_cells, n_cells))
    if ms_img > ms_e:
        s2, s1 = ms_e, (ms_img - ms_e) / n_cells
        # (s1, s2) = T (MS_E, MS_img); Var(MS_E) = 2 MS_E^2/df_e, Var(MS_img) = 2 MS_img^2/(J-1).
        T = np.array([[-1.0 / n_cells, 1.0 / n_cells], [1.0, 0.0]])
        var_ms = np.diag([2 * ms_e**2 / df_e, 2 * ms_img**2 / (n_samples - 1)])
        varpar_cov = T @ var_ms @ T.T
        dcov = [ones / n_samples, eye / n_samples]
        dparts = [(0.0, 1.0 / n_samples), (1.0 / n_samples, 0.0)]
    else:
        s1 = 0.0
        df_pool = n_cells * (n_samples - 1)
        s2 = (ss_img + ms_e * df_e) / df_pool
        varpar_cov = np.array([[2 * s2**2 / df_pool]])
        dcov = [eye / n_samples]
        dparts = [(1.0 / n_samples, 0.0)]
    cov = (s2 * eye + s1 * ones) / n_samples
    fitted, residuals = _blups(y, cell, sample, beta, s1, s2, n_samples)
    compound = ((s2 / n_samples, s1 / n_samples), dparts)
    return MixedFit(beta, cov, dcov, varpar_cov, s1, s2, "closed_form", fitted, residuals, compound)


class _Blocks:
    """Sufficient statistics of the layout for the per-image (Woodbury) algebra."""

    def __init__(self, y: np.ndarray, cell: np.ndarray, sample: np.ndarray):
        self.n_cells, self.n_samples = _check_layout(y, cell, sample)
        self.y, self.cell, self.sample = y, cell, sample
        incidence = np.zeros((self.n_samples, self.n_cells))
        incidence[sample, cell] = 1.0
        if incidence.sum() != y.size:
            raise DataError("stats: a network has two rows for one image; give each image once")
        self.M = incidence
        self.m = incidence.sum(axis=0)
        self.nj = incidence.sum(axis=1)
        self.xty = np.bincount(cell, weights=y, minlength=self.n_cells)
        self.ysum = np.bincount(sample, weights=y, minlength=self.n_samples)
        self.n = y.size
        self.dof = y.size - self.n_cells

    def gram(self, diag_weights: np.ndarray, block_weights: np.ndarray) -> np.ndarray:
        """X' B X for B = blockdiag_j(diag_weights_j I + block_weights_j 11')."""
        g = (self.M * block_weights[:, None]).T @ self.M
        g[np.diag_indices_from(g)] += (self.M * diag_weights[:, None]).sum(axis=0)
        return g

    def at(self, gamma: float) -> dict:
        """GLS quantities for gamma = s1/s2 (H = V/s2 = I + gamma ZZ')."""
        from scipy import linalg

        w = gamma / (1 + self.nj * gamma)
        xhx = self.gram(np.ones(self.n_samples), -w)
        factor = linalg.cho_factor(xhx)
        beta = linalg.cho_solve(factor, self.xty - self.M.T @ (w * self.ysum))
        r = self.y - beta[self.cell]
        rsum = np.bincount(self.sample, weights=r, minlength=self.n_samples)
        rhr = float(r @ r - np.sum(w * rsum**2))
        s2 = rhr / self.dof
        return {
            "gamma": gamma,
            "w": w,
            "factor": factor,
            "beta": beta,
            "r": r,
            "rsum": rsum,
            "s2": s2,
        }

    def gradient_s1(self, gamma: float) -> float:
        """d(REML deviance)/d s1 at (gamma s2_hat, s2_hat); its sign is that of d/d gamma."""
        from scipy import linalg

        q = self.at(gamma)
        s2 = q["s2"]
        a = 1.0 / (s2 * (1 + self.nj * gamma))
        cov = s2 * linalg.cho_solve(q["factor"], np.eye(self.n_cells))
        q1 = (self.M * (a**2)[:, None]).T @ self.M
        usum = q["rsum"] * a
        return float(np.sum(self.nj * a) - np.sum(cov * q1) - np.sum(usum**2))


def fit_reml(y: np.ndarray, cell: np.ndarray, sample: np.ndarray) -> MixedFit:
    """REML fit of the random-intercept model on any (incomplete) network x image layout.

    The profiled REML deviance depends on gamma = s1/s2 only; its gradient (analytic, exact per
    image block) is solved for its root in ln(gamma) to machine precision (brentq, xtol 1e-13).
    When the gradient is already positive at gamma = 1e-12, s1 = 0 (boundary) and only s2 is a
    free variance parameter. The Hessian of the (unprofiled) REML deviance in (s1, s2) is
    computed analytically: H_ik = -tr(P V_i P V_k) + 2 y'P V_i P V_k P y.

    Parameters
    ----------
    y : (n,) model-scale response, finite.
    cell, sample : (n,) integer codes of network (0..I-1) and image (0..J-1); each pair once.

    Raises
    ------
    DataError
        too few observations, a repeated (network, image) pair, or a degenerate fit.
    """
    with single_thread_blas():
        return _fit_reml(np.asarray(y, float), np.asarray(cell), np.asarray(sample))


def _fit_reml(y: np.ndarray, cell: np.ndarray, sample: np.ndarray) -> MixedFit:
    # imported here: only incomplete layouts need them, and they cost ~1 s of `advmri stats` start-up
    from scipy import linalg, optimize

    b = _Blocks(y, cell, sample)
    # Residual variance at gamma = 0 is the largest it can be; round-off level means none.
    if not b.at(0.0)["s2"] > 1e-20 * max(float(np.mean(y**2)), 1e-300):
        raise DataError("stats: the response equals its network means exactly; nothing to test")
    lo, hi = -28.0, 18.0
    g_lo = b.gradient_s1(np.exp(lo))
    if g_lo >= 0:
        gamma = 0.0
    else:
        if b.gradient_s1(np.exp(hi)) <= 0:
            raise DataError(
                "stats: the image variance dwarfs the residual variance (gamma > 1e7); "
                "the response is constant within images"
            )
        log_gamma = optimize.brentq(
            lambda t: b.gradient_s1(np.exp(t)), lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps
        )
        gamma = float(np.exp(log_gamma))
    q = b.at(gamma)
    s2 = q["s2"]
    if not s2 > 0:
        raise DataError("stats: the residual variance is zero; the response is constant")
    s1 = gamma * s2
    a = 1.0 / (s2 + b.nj * s1)
    w = s1 * a
    nj = b.nj
    cov = s2 * linalg.cho_solve(q["factor"], np.eye(b.n_cells))
    cov = (cov + cov.T) / 2
    # X' W V_i W X: V_1 = ZZ' (image blocks of ones), V_2 = I; W = V^-1 = (I - w 11') / s2.
    q1 = b.gram(np.zeros_like(a), a**2)
    q2 = b.gram(np.full_like(a, 1 / s2**2), -(2 * w - nj * w**2) / s2**2)
    # X' W V_i W V_k W X and tr(W V_i W V_k), per image block.
    r11 = b.gram(np.zeros_like(a), a**3 * nj)
    r12 = b.gram(np.zeros_like(a), a**3)
    r22 = b.gram(np.full_like(a, 1 / s2**3), -(3 * w - 3 * nj * w**2 + nj**2 * w**3) / s2**3)
    t11 = np.sum(a**2 * nj**2)
    t12 = np.sum(a**2 * nj)
    t22 = np.sum(nj - (2 * w - nj * w**2) * nj) / s2**2
    qs = [q1, q2]
    rs = [[r11, r12], [r12.T, r22]]
    ts = [[t11, t12], [t12, t22]]

    def apply_w(v: np.ndarray) -> np.ndarray:
        vsum = np.bincount(sample, weights=v, minlength=b.n_samples)
        return (v - w[sample] * vsum[sample]) / s2

    def apply_p(v: np.ndarray) -> np.ndarray:
        wv = apply_w(v)
        z = cov @ np.bincount(cell, weights=wv, minlength=b.n_cells)
        return wv - apply_w(z[cell])

    u = apply_w(q["r"])  # P y
    usum = np.bincount(sample, weights=u, minlength=b.n_samples)
    vs = [usum[sample], u]  # V_1 P y, V_2 P y
    pvs = [apply_p(v) for v in vs]
    hess = np.empty((2, 2))
    for i in range(2):
        for k in range(2):
            tr_pp = (
                ts[i][k] - 2 * np.sum(cov * rs[i][k].T) + np.sum((cov @ qs[i]) * (cov @ qs[k]).T)
            )
            hess[i, k] = -tr_pp + 2 * float(vs[i] @ pvs[k])
    hess = (hess + hess.T) / 2
    dcov = [cov @ q1 @ cov, cov @ q2 @ cov]
    if gamma == 0.0:
        dcov, hess = dcov[1:], hess[1:, 1:]
    try:
        varpar_cov = 2 * np.linalg.inv(hess)
    except np.linalg.LinAlgError as error:
        raise DataError(
            "stats: the REML Hessian is singular; the variances are not identified"
        ) from error
    fitted, residuals = _blups(y, cell, sample, q["beta"], s1, s2, b.n_samples)
    return MixedFit(q["beta"], cov, dcov, varpar_cov, s1, s2, "reml", fitted, residuals)


def fit_mixed(y: np.ndarray, cell: np.ndarray, sample: np.ndarray) -> MixedFit:
    """Fit the random-intercept model: :func:`fit_complete` when every (network, image) pair
    occurs exactly once, :func:`fit_reml` otherwise (which refuses repeated pairs)."""
    cell, sample = np.asarray(cell), np.asarray(sample)
    n_cells, n_samples = int(np.max(cell)) + 1, int(np.max(sample)) + 1
    if np.size(y) == n_cells * n_samples:
        pairs = np.bincount(cell.astype(np.int64) * n_samples + sample, minlength=np.size(y))
        if np.all(pairs == 1):
            return fit_complete(y, cell, sample)
    return fit_reml(y, cell, sample)
