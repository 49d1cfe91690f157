"""Evaluate a network (or the LQ input itself) on the test split: one row of lesion metrics per
test sample.

The table's columns are :data:`COLUMNS`; ``w_per, w_adv, lr`` are the grid cell's (NaN for the
reference rows: the LQ input and the pretrained generator). All sigmoid fits of a test set run
as one batch (:func:`advmri.metrics.sigmoid.fit_sigmoids`), whose result for a profile does not
depend on the other profiles in the batch, so the table equals the per-image functions of
:mod:`advmri.metrics.lesion`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advmri.data.dataset import read_dataset
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
from advmri.models import load_generator
from advmri.train.data import split_indices
from advmri.train.loop import resolve_device

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


@dataclass(frozen=True)
class TestSet:
    """The test split of the dataset, in ``sample`` order.

    Attributes
    ----------
    samples : DataFrame
        The test rows of ``samples.csv`` (index reset), sorted by ``sample``.
    lq, hq : (n, H, W) float32
        Network input and ground truth.
    lesion : (n, H, W) bool
        Lesion masks.
    """

    samples: pd.DataFrame
    lq: np.ndarray
    hq: np.ndarray
    lesion: np.ndarray


def load_test_set(dataset_dir: str | Path, split_csv: str | Path) -> TestSet:
    """Read the test samples of ``dataset_dir`` (``hq.npy``, ``lq.npy``, ``lesion.npy``,
    ``samples.csv``) according to ``split_csv``; only the test rows are loaded into memory.

    Raises
    ------
    DataError
        Anything :func:`advmri.data.dataset.read_dataset` refuses (a missing, truncated or
        corrupt file, NaN in an image, naming the file and sample), or an empty test split.
    """
    dataset_dir = Path(dataset_dir)
    dataset = read_dataset(
        **{name: dataset_dir / f"{name}.npy" for name in ("hq", "lq", "lesion")},
        samples=dataset_dir / "samples.csv",
        columns=("sample", "subject", *BBOX_COLUMNS),
    )
    arrays = {"hq": dataset.hq, "lq": dataset.lq, "lesion": dataset.lesion}
    samples = dataset.samples
    if not Path(split_csv).is_file():
        raise DataError(f"{split_csv} does not exist; run the dataset and split rules first")
    test_rows = split_indices(samples, pd.read_csv(split_csv))["test"]
    if test_rows.size == 0:
        raise DataError(f"{split_csv} puts no subject in the test split; nothing to evaluate")
    table = samples.set_index("sample", drop=False).loc[test_rows].reset_index(drop=True)
    return TestSet(
        samples=table,
        lq=np.asarray(arrays["lq"][test_rows], dtype=np.float32),
        hq=np.asarray(arrays["hq"][test_rows], dtype=np.float32),
        lesion=np.asarray(arrays["lesion"][test_rows], dtype=bool),
    )


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


def enhance(
    model: torch.nn.Module, lq: np.ndarray, batch_size: int, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Run ``model`` on every image of ``lq`` (n, H, W) in fixed-order batches; float32 output.

    Deterministic: eval mode, ``torch.inference_mode``, fixed batch composition, and on CUDA
    cuDNN's deterministic algorithms (no autotuning) for the duration of the call. The output
    is not clipped.
    """
    device = torch.device(device)
    model.eval()
    out = np.empty(lq.shape, dtype=np.float32)
    previous = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        with torch.inference_mode():
            for start in range(0, lq.shape[0], batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(lq[start : start + batch_size]))
                pred = model(batch[:, None].to(device=device, dtype=torch.float32))
                out[start : start + batch_size] = pred[:, 0].float().cpu().numpy()
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous
    return out


def cell_of(metadata: dict) -> dict[str, float]:
    """``w_per, w_adv, lr`` of a fine-tuned generator's metadata (``settings.cell``); NaN for
    a generator that is not a grid cell's (the pretrained one)."""
    cell = (metadata.get("settings") or {}).get("cell") or {}
    return {key: float(cell[key]) if key in cell else np.nan for key in CELL_COLUMNS}


def _with_cell(table: pd.DataFrame, cell: dict[str, float]) -> pd.DataFrame:
    out = table.copy()
    for key in CELL_COLUMNS:
        out[key] = cell[key]
    return out[COLUMNS]


def save_examples(path: str | Path, samples: np.ndarray, enhanced: np.ndarray) -> None:
    """Write ``sample`` (int64, k) and ``enhanced`` (float32, (k, H, W)) to an ``.npz`` file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        sample=np.asarray(samples, dtype=np.int64),
        enhanced=np.asarray(enhanced, dtype=np.float32),
    )


def evaluate_network(
    network_path: str | Path,
    dataset_dir: str | Path,
    split_csv: str | Path,
    settings: dict,
    device: str = "cpu",
    threads: int | None = None,
    examples_path: str | Path | None = None,
) -> pd.DataFrame:
    """Evaluate one generator file on the test split.

    Parameters
    ----------
    network_path : path
        A ``generator.pt`` written by :func:`advmri.models.save_generator`.
    dataset_dir : path
        Folder with ``hq.npy``, ``lq.npy``, ``lesion.npy``, ``samples.csv``.
    split_csv : path
        ``split.csv`` (subject, split).
    settings : dict
        The config's ``metrics`` section (``batch_size`` is the inference batch).
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    threads : int, optional
        CPU threads for torch (the rule's ``threads``).
    examples_path : path, optional
        Where to save the enhanced images of the first ``metrics.example_samples`` test
        samples (in sample order) as ``.npz`` (keys ``sample``, ``enhanced``).

    Returns
    -------
    DataFrame
        :data:`COLUMNS`, one row per test sample in sample order; ``w_per, w_adv, lr`` from the
        generator's metadata (NaN for the pretrained generator).
    """
    cfg = MetricSettings.from_config(settings)
    if threads:
        torch.set_num_threads(int(threads))
    torch_device = resolve_device(device)
    model, metadata = load_generator(network_path, torch_device)
    test = load_test_set(dataset_dir, split_csv)
    started = time.perf_counter()
    enhanced = enhance(model, test.lq, cfg.batch_size, torch_device)
    bad = np.flatnonzero(~np.isfinite(enhanced).all(axis=(1, 2)))
    if bad.size:  # NaN metrics rows would look like fit failures
        raise DataError(
            f"{network_path} gave NaN or infinite values on {bad.size} of {len(enhanced)} test "
            f"images (the first: sample {int(test.samples['sample'].iloc[bad[0]])}); nothing "
            "was written"
        )
    inferred = time.perf_counter()
    table = evaluate_arrays(enhanced, test.hq, test.lesion, test.samples, cfg, str(network_path))
    logger.info(
        "%s: %d test images, inference %.1f s on %s, metrics %.1f s",
        network_path,
        len(table),
        inferred - started,
        torch_device,
        time.perf_counter() - inferred,
    )
    if examples_path is not None:
        k = min(cfg.example_samples, len(table))
        save_examples(examples_path, test.samples["sample"].to_numpy()[:k], enhanced[:k])
    out = _with_cell(table, cell_of(metadata))
    out.attrs.update(table.attrs)
    return out


def evaluate_lq(dataset_dir: str | Path, split_csv: str | Path, settings: dict) -> pd.DataFrame:
    """Reference evaluation of the LQ network input itself (no network) on the test split.

    Same columns as :func:`evaluate_network`, with ``w_per, w_adv, lr`` NaN.
    """
    return _evaluate_reference_images("lq", dataset_dir, split_csv, settings)


def evaluate_truth(dataset_dir: str | Path, split_csv: str | Path, settings: dict) -> pd.DataFrame:
    """Reference evaluation of the HQ ground truth against itself on the test split.

    GE, ECE and MIE are 0 and SSIM is 1 by definition (NaN where the metric itself is undefined,
    e.g. GE in a box without gradients); what this row adds is the Sharpness of the truth's own
    lesion edges and how many of their profiles fit, so a network's Sharpness can be read as
    "sharper than the truth" or only "sharper than the input". Same columns as
    :func:`evaluate_network`, with ``w_per, w_adv, lr`` NaN.
    """
    return _evaluate_reference_images("hq", dataset_dir, split_csv, settings)


def _evaluate_reference_images(
    which: str, dataset_dir: str | Path, split_csv: str | Path, settings: dict
) -> pd.DataFrame:
    """Evaluate the test split's ``lq`` or ``hq`` images themselves (no network)."""
    cfg = MetricSettings.from_config(settings)
    test = load_test_set(dataset_dir, split_csv)
    images, label = (test.lq, "LQ input") if which == "lq" else (test.hq, "HQ truth")
    table = evaluate_arrays(images, test.hq, test.lesion, test.samples, cfg, label)
    out = _with_cell(table, dict.fromkeys(CELL_COLUMNS, np.nan))
    out.attrs.update(table.attrs)
    return out
