"""Lesion metrics of a stack of enhanced images against their truth: one row per test sample.

Pure functions, arrays in and a table out: running a network over the dataset is
:mod:`advmri.evaluation`'s (which reads the dataset, runs the network with
:mod:`advmri.models.inference` and calls :func:`evaluate_arrays`).

The table's columns are :func:`columns`; ``w_per, w_adv, lr`` are the grid cell's (NaN for the
reference rows: the LQ input and the pretrained generator). All sigmoid fits of a test set run
as one batch (:func:`advmri.metrics.sigmoid.fit_sigmoids`), whose result for a profile does not
depend on the other profiles in the batch, so the table equals the per-image functions of
:mod:`advmri.metrics.lesion`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from advmri.errors import DataError
from advmri.logs import logger
from advmri.metrics.registry import PAPER_RESPONSES, ImageStack, select_responses, table_columns
from advmri.metrics.settings import MetricSettings

CELL_COLUMNS = ["w_per", "w_adv", "lr"]
#: Columns every evaluation table starts with; the metric columns follow (:func:`columns`).
ID_COLUMNS = ["sample", "subject", *CELL_COLUMNS]
BBOX_COLUMNS = ["bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]


def columns(settings: dict | MetricSettings | None = None) -> list[str]:
    """Columns of an evaluation table of the study ``settings`` selects, in order: ``sample,
    subject, w_per, w_adv, lr``, each response's value, their extra columns, then each
    response's ``<name>_reason`` (see :mod:`advmri.metrics.registry`). Default: the paper's
    five responses."""
    names = _settings(settings).responses if settings is not None else PAPER_RESPONSES
    return [*ID_COLUMNS, *table_columns(select_responses(names))]


def _settings(settings: dict | MetricSettings) -> MetricSettings:
    return (
        settings if isinstance(settings, MetricSettings) else MetricSettings.from_config(settings)
    )


#: Columns of an evaluation table of the paper's five responses.
COLUMNS = columns()


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
        Columns ``sample, subject``, then the metric columns of the responses ``settings``
        selects (:func:`advmri.metrics.registry.table_columns`: for the paper's five ``ge,
        sharpness, ece, mie, ssim, sharpness_profiles_fitted, sharpness_method`` and a
        ``<name>_reason`` per response), one row per image in input order (see
        :mod:`advmri.metrics.registry` for each response's definition and units). NaN marks an
        undefined value; ``table.attrs["nan_reasons"]`` counts the reasons per response, and a
        response's notes (Sharpness: ``table.attrs["profile_reasons"]``, why profiles were not
        fitted) are kept there too (all are also logged).
    """
    cfg = _settings(settings)
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

    stack = ImageStack(
        enhanced=np.asarray(enhanced, dtype=np.float64),
        truth=np.asarray(truth, dtype=np.float64),
        lesion=np.asarray(lesion, dtype=bool),
        boxes=samples[BBOX_COLUMNS].to_numpy(dtype=np.int64),
    )
    data: dict[str, object] = {
        "sample": samples["sample"].to_numpy(dtype=np.int64),
        "subject": samples["subject"].to_numpy(),
    }
    extra: dict[str, np.ndarray] = {}
    reasons: dict[str, np.ndarray] = {}
    nan_reasons: dict[str, dict[str, int]] = {}
    notes: dict[str, dict] = {}
    phrases = []
    for response in select_responses(cfg.responses):
        result = response.compute(stack, cfg)
        values = np.asarray(result.values, dtype=float)
        if values.shape != (n,):
            raise DataError(
                f"metric {response.name!r} gave {values.shape} values for {n} images; its "
                "compute must return one value per image"
            )
        data[response.name] = values
        for column in response.extra_columns:
            extra[column] = result.extra[column]
        # why a value is NaN (empty when it is not): the statistics count these, never guess
        reasons[response.reason_column] = np.asarray(result.reasons, dtype=object)
        counts = Counter(r for r in reasons[response.reason_column] if r)
        if counts:
            nan_reasons[response.name] = dict(counts)
        notes.update(result.notes)
        if result.log:
            phrases.append(result.log)
    table = pd.DataFrame({**data, **extra, **reasons})
    table.attrs["nan_reasons"] = nan_reasons
    table.attrs.update(notes)
    logger.info(
        "%s: %d images evaluated (%s); %sNaN values: %s",
        label,
        n,
        ", ".join(cfg.responses),
        "".join(f"{phrase}; " for phrase in phrases),
        nan_reasons or "none",
    )
    return table
