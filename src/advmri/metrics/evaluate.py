"""Evaluate a network (or the LQ input itself) on the test split: one row of lesion metrics per
test sample.

The table's columns are :func:`columns`; ``w_per, w_adv, lr`` are the grid cell's (NaN for the
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
from advmri.errors import DataError
from advmri.logs import logger
from advmri.metrics.registry import PAPER_RESPONSES, ImageStack, select_responses, table_columns
from advmri.metrics.settings import MetricSettings
from advmri.models import load_generator
from advmri.train.data import split_indices
from advmri.train.loop import resolve_device

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
    return out[[*ID_COLUMNS, *(c for c in out.columns if c not in ID_COLUMNS)]]


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
        :func:`columns`, one row per test sample in sample order; ``w_per, w_adv, lr`` from the
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
