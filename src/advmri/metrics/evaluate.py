"""Lesion metrics of a stack of enhanced images against their truth: one row per test sample.

Pure functions, arrays in and a table out: running a network over the dataset is
:mod:`advmri.evaluation`'s (which reads the dataset, runs the network with
:mod:`advmri.models.inference` and calls :func:`evaluate_arrays`).

The table's columns are :data:`COLUMNS`; ``w_per, w_adv, lr`` are the grid cell's (NaN for the
reference rows: the LQ input and the pretrained generator). All sigmoid fits of a test set run
as one batch (:func:`advmri.metrics.sigmoid.fit_sigmoids`), whose result for a profile does not
depend on the other profiles in the batch, so the table equals the per-image functions of
:mod:`advmri.metrics.lesion`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advmri.errors import ConfigError, DataError
from advmri.logs import logger
from advmri.metrics.edges import edge_segments, sample_profiles
from advmri.metrics.lesion import (
    METHODS,
    _box,
    _ece_from_profiles,
    _gradient_error_from,
    _sharpness_result,
    fit_profile_slopes,
    mie_with_reason,
    sharpness_profiles,
    sobel_gradients,
    ssim_in_box_with_reason,
)

CELL_COLUMNS = ["w_per", "w_adv", "lr"]
METRIC_COLUMNS = [
    "ge",
    "sharpness",
    "ece",
    "mie",
    "ssim",
    "sharpness_profiles_fitted",
    "sharpness_method",
]
#: Metrics with a ``<metric>_reason`` column: why the value is NaN (empty when it is a number).
REASON_METRICS = ["ge", "sharpness", "ece", "mie", "ssim"]
METRIC_COLUMNS += [f"{name}_reason" for name in REASON_METRICS]
#: Columns of every evaluation table, in order.
COLUMNS = ["sample", "subject", *CELL_COLUMNS, *METRIC_COLUMNS]
BBOX_COLUMNS = ["bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]


@dataclass(frozen=True)
class MetricSettings:
    """The config's ``metrics`` section, checked."""

    segment_length: float
    samples_per_segment: int
    interpolation_order: int
    sharpness_method: str
    min_profiles: int
    ssim_max_window: int
    batch_size: int
    example_samples: int

    @classmethod
    def from_config(cls, section: dict) -> MetricSettings:
        """Read the ``metrics`` section; ConfigError naming a missing or invalid key."""
        try:
            sharp = section["sharpness"]
            out = cls(
                segment_length=float(sharp["segment_length_px"]),
                samples_per_segment=int(sharp["samples_per_segment"]),
                interpolation_order=int(sharp["interpolation_order"]),
                sharpness_method=str(sharp["method"]),
                min_profiles=int(sharp["min_profiles"]),
                ssim_max_window=int(section["ssim_max_window"]),
                batch_size=int(section["batch_size"]),
                example_samples=int(section["example_samples"]),
            )
        except KeyError as error:
            raise ConfigError(f"metrics: missing key {error.args[0]!r} (see config.yaml)") from None
        checks = [
            (out.segment_length > 0, "sharpness.segment_length_px must be > 0"),
            (out.samples_per_segment >= 5, "sharpness.samples_per_segment must be >= 5"),
            (0 <= out.interpolation_order <= 5, "sharpness.interpolation_order must be 0-5"),
            (
                out.sharpness_method in METHODS,
                f"sharpness.method = {out.sharpness_method!r} is not one of {list(METHODS)}",
            ),
            (1 <= out.min_profiles <= 8, "sharpness.min_profiles must be 1-8"),
            (out.ssim_max_window >= 3, "ssim_max_window must be >= 3"),
            (out.batch_size >= 1, "batch_size must be >= 1"),
            (out.example_samples >= 0, "example_samples must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"metrics.{message} (config.yaml)")
        return out


def evaluate_arrays(
    enhanced: np.ndarray,
    truth: np.ndarray,
    lesion: np.ndarray,
    samples: pd.DataFrame,
    settings: dict | MetricSettings,
    label: str = "images",
) -> pd.DataFrame:
    """Lesion metrics of a stack of enhanced images against their ground truth.

    Parameters
    ----------
    enhanced, truth : (n, H, W) float
        Image ``i`` of each stack belongs to row ``i`` of ``samples``.
    lesion : (n, H, W) bool
        Lesion masks of the ground truth.
    samples : DataFrame
        n rows with ``sample``, ``subject`` and ``bbox_r0, bbox_c0, bbox_r1, bbox_c1``.
    settings : dict or MetricSettings
        The config's ``metrics`` section.
    label : str
        Names the stack in the log line.

    Returns
    -------
    DataFrame
        Columns ``sample, subject, ge, sharpness, ece, mie, ssim, sharpness_profiles_fitted,
        sharpness_method`` (``robust`` or ``paper``), one row per image in input order (see :mod:`advmri.metrics.lesion` for each metric's
        definition and units). NaN marks an undefined value; ``table.attrs["nan_reasons"]``
        counts the reasons per metric, and ``table.attrs["profile_reasons"]`` counts why
        profiles were not fitted (both are also logged).
    """
    cfg = settings if isinstance(settings, MetricSettings) else MetricSettings.from_config(settings)
    enhanced = np.asarray(enhanced)
    truth = np.asarray(truth)
    lesion = np.asarray(lesion)
    n = len(samples)
    if enhanced.ndim != 3 or enhanced.shape != truth.shape or lesion.shape != truth.shape:
        raise DataError(
            f"enhanced {enhanced.shape}, truth {truth.shape} and lesion {lesion.shape} must be "
            "(n, H, W) stacks of one shape"
        )
    if enhanced.shape[0] != n:
        raise DataError(f"{enhanced.shape[0]} images but {n} rows in the samples table")
    missing = [c for c in ["sample", "subject", *BBOX_COLUMNS] if c not in samples.columns]
    if missing:
        raise DataError(f"samples table lacks column {missing[0]!r}")

    boxes = samples[BBOX_COLUMNS].to_numpy(dtype=np.int64)
    values = {name: np.full(n, np.nan) for name in ("ge", "ece", "mie", "ssim")}
    reasons: dict[str, Counter] = {
        name: Counter() for name in ("ge", "sharpness", "ece", "mie", "ssim")
    }
    row_reasons = {name: np.full(n, "", dtype=object) for name in reasons}
    profile_reasons = np.full((n, 8), "", dtype=object)
    fit_rows, fit_profiles, fit_scales, positions = [], [], [], None
    for i in range(n):
        a = np.asarray(enhanced[i], dtype=np.float64)
        b = np.asarray(truth[i], dtype=np.float64)
        box = tuple(boxes[i])
        results = {
            "ge": _gradient_error_from(sobel_gradients(a), sobel_gradients(b), _box(box, a.shape)),
            "mie": mie_with_reason(a, b, box),
            "ssim": ssim_in_box_with_reason(a, b, box, cfg.ssim_max_window),
        }
        seg = edge_segments(lesion[i], cfg.segment_length, cfg.samples_per_segment)
        prof_a = sample_profiles(a, seg, cfg.interpolation_order)
        results["ece"] = _ece_from_profiles(
            prof_a, sample_profiles(b, seg, cfg.interpolation_order), seg.reason
        )
        for name, result in results.items():
            values[name][i] = result.value
            if result.reason:
                reasons[name][result.reason] += 1
                row_reasons[name][i] = result.reason
        # ECE keeps the paper's segments; sharpness fits the profiles of its method
        prof = sharpness_profiles(
            a,
            lesion[i],
            method=cfg.sharpness_method,
            segment_length=cfg.segment_length,
            samples_per_segment=cfg.samples_per_segment,
            interpolation_order=cfg.interpolation_order,
            segments=seg,
        )
        profile_reasons[i] = prof.reason
        positions = prof.x
        if prof.valid.any():
            fit_rows.append(np.stack([np.full(prof.valid.sum(), i), np.flatnonzero(prof.valid)], 1))
            fit_profiles.append(prof.profiles[prof.valid])
            fit_scales.append(prof.scale[prof.valid])

    slopes = np.full((n, 8), np.nan)
    if fit_rows:
        where = np.concatenate(fit_rows)
        slopes[where[:, 0], where[:, 1]], profile_reasons[where[:, 0], where[:, 1]] = (
            fit_profile_slopes(
                positions,
                np.concatenate(fit_profiles),
                np.concatenate(fit_scales),
                cfg.sharpness_method,
            )
        )
    sharp = np.full(n, np.nan)
    fitted = np.zeros(n, dtype=np.int64)
    for i in range(n):
        result = _sharpness_result(
            slopes[i], profile_reasons[i], cfg.sharpness_method, cfg.min_profiles
        )
        sharp[i], fitted[i] = result.value, result.profiles_used
        if result.reason:
            reasons["sharpness"][result.reason] += 1
            row_reasons["sharpness"][i] = result.reason

    table = pd.DataFrame(
        {
            "sample": samples["sample"].to_numpy(dtype=np.int64),
            "subject": samples["subject"].to_numpy(),
            "ge": values["ge"],
            "sharpness": sharp,
            "ece": values["ece"],
            "mie": values["mie"],
            "ssim": values["ssim"],
            "sharpness_profiles_fitted": fitted,
            "sharpness_method": cfg.sharpness_method,
            # why a value is NaN (empty when it is not): the statistics count these, never guess
            **{f"{name}_reason": row_reasons[name] for name in REASON_METRICS},
        }
    )
    profile_counts = Counter(r for r in profile_reasons.ravel() if r)
    table.attrs["nan_reasons"] = {k: dict(v) for k, v in reasons.items() if v}
    table.attrs["profile_reasons"] = dict(profile_counts)
    logger.info(
        "%s: %d images evaluated, sharpness method %s, %d of %d profiles fitted; not fitted: %s; "
        "NaN values: %s",
        label,
        n,
        cfg.sharpness_method,
        int(fitted.sum()),
        8 * n,
        dict(profile_counts) or "none",
        table.attrs["nan_reasons"] or "none",
    )
    return table
