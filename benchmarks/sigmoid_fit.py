"""Speed and agreement of the batched sigmoid fitter against a scipy.optimize.curve_fit loop, for the
profiles of both sharpness methods.

One test set's worth of profiles (540 images x 8 directions = 4,320) is fitted

- by ``advmri.metrics.sigmoid.fit_sigmoids`` (all at once),
- by ``curve_fit`` profile by profile with its default tolerances (the loop it replaces), and
- by ``curve_fit`` with the analytic Jacobian and tolerances 1e-15 (the reference optimum for the
  agreement figure: with finite differences it stops short of the optimum on steep, sparsely
  sampled edges, by up to 1e-5 in S at a cost higher by 1e-8 relative),

all from the same starting values (``initial_guess``). Times are the best of ``--repeats`` runs
of process CPU time (the batch) and one run (the loops), single-threaded numpy.

- ``paper``: well-posed edges on the 5-pixel segment (21 samples; midpoint within 1 pixel of the
  centre, contrast 0.2-0.8, S 0.8-3 per pixel, Gaussian noise 0.005; ``tests/fabricate.py``).
- ``robust``: the robust method's long profiles (21 samples on the shared positions ``u``, fitted
  with the per-profile slope bound) of logistic discs and ellipses (radii 8-14 pixels, S 0.3-2 per
  pixel, contrast 0.4, noise 1 % of it), 60 lesions x 9 noise draws.

    python benchmarks/sigmoid_fit.py [--profiles 4320] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit

from advmri.metrics.lesion import sharpness_profiles
from advmri.metrics.sigmoid import fit_sigmoids, initial_guess, sigmoid

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fabricate import PROFILE_X, logistic_lesion, well_posed_profiles  # noqa: E402


def curve_fit_loop(x: np.ndarray, y: np.ndarray, p0: np.ndarray, **kwargs):
    """Parameters (NaN where curve_fit gives up) and the loop's CPU time."""
    out = np.full((len(y), 4), np.nan)
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        for i in range(len(y)):
            try:
                out[i] = curve_fit(sigmoid, x, y[i], p0=p0[i], **kwargs)[0]
            except RuntimeError:  # maxfev reached
                pass
    return out, time.process_time() - start


def sigmoid_jacobian(x: np.ndarray, a0, a1, a2, s) -> np.ndarray:
    """d sigmoid / d(a0, a1, a2, S) as (N, 4), for ``curve_fit(jac=...)``."""
    sig = expit(s * (x - a0))
    g = a2 * sig * (1.0 - sig)
    return np.stack([-s * g, np.ones_like(x), sig, g * (x - a0)], axis=1)


def relative_slope_error(params: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(np.abs(params[:, 3]) - np.abs(ref[:, 3])) / np.abs(ref[:, 3])


def robust_profiles(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, profiles, scale) of ``n`` robust profiles of noisy logistic lesions."""
    rng = np.random.default_rng(seed)
    profiles, scales, u = [], [], None
    while sum(len(p) for p in profiles) < n:
        radii = tuple(rng.uniform(8.0, 14.0, 2))
        image, mask = logistic_lesion(
            rng.uniform(0.3, 2.0), radii, angle_deg=rng.uniform(0, 180), contrast=0.4
        )
        for _ in range(9):
            prof = sharpness_profiles(image + rng.normal(0.0, 0.004, image.shape), mask)
            profiles.append(prof.profiles[prof.valid])
            scales.append(prof.scale[prof.valid])
            u = prof.x
    return u, np.concatenate(profiles)[:n], np.concatenate(scales)[:n]


def figures(x: np.ndarray, y: np.ndarray, max_slope, repeats: int) -> dict:
    p0 = initial_guess(x, y)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fit = fit_sigmoids(x, y, max_slope=max_slope)
        times.append(time.process_time() - start)
    t_batch = min(times)
    default, t_loop = curve_fit_loop(x, y, p0)
    tight, t_tight = curve_fit_loop(
        x, y, p0, jac=sigmoid_jacobian, ftol=1e-15, xtol=1e-15, gtol=1e-15, maxfev=20000
    )
    ok = fit.ok
    err_tight = relative_slope_error(fit.params[ok], tight[ok])
    err_default = relative_slope_error(default[ok], tight[ok])
    return {
        "profiles": len(y),
        "samples_per_profile": x.size,
        "batched_fit_s": round(t_batch, 4),
        "batched_fit_mean_iterations": round(float(fit.iterations.mean()), 2),
        "batched_fit_ok_fraction": float(ok.mean()),
        "curve_fit_loop_default_s": round(t_loop, 3),
        "curve_fit_loop_tight_s": round(t_tight, 3),
        "speedup_vs_curve_fit_default": round(t_loop / t_batch, 1),
        "speedup_vs_curve_fit_tight": round(t_tight / t_batch, 1),
        "max_rel_S_batched_vs_curve_fit_tight": float(np.nanmax(err_tight)),
        "median_rel_S_batched_vs_curve_fit_tight": float(np.nanmedian(err_tight)),
        "max_rel_S_curve_fit_default_vs_tight": float(np.nanmax(err_default)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=540 * 8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--method", choices=["paper", "robust", "both"], default="both")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    out = {}
    if args.method in ("paper", "both"):
        y = well_posed_profiles(args.profiles, seed=1)
        out["paper"] = figures(PROFILE_X, y, 50.0, args.repeats)
    if args.method in ("robust", "both"):
        u, y, scale = robust_profiles(args.profiles)
        out["robust"] = figures(u, y, 50.0 * scale, args.repeats)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
