"""Patient-level train/validation/test split (study §2).

The unit is the patient (``subject``), never the sample or the session, so no patient's anatomy is in
two splits (OASIS-1 MR1 and MR2 sessions of one patient stay together).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from advmri.errors import DataError

SPLITS = ("train", "val", "test")


def split_subjects(
    subjects: Sequence[str], test_fraction: float, val_fraction: float, seed: int
) -> pd.DataFrame:
    """Assign each distinct subject to train, val or test.

    ``round(test_fraction * n)`` subjects go to test; of the rest, ``round(val_fraction * rest)`` to val.
    The assignment depends only on the sorted set of subjects and ``seed``. Returns columns
    ``subject, split`` sorted by subject.
    """
    unique = sorted(set(subjects))
    n = len(unique)
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * (n - n_test))
    if n_test < 1 or n_val < 1 or n - n_test - n_val < 1:
        raise DataError(
            f"split: {n} subjects give {n - n_test - n_val} train, {n_val} val and {n_test} test "
            "subjects; every split needs at least one (more subjects or other split fractions)"
        )
    order = np.random.default_rng(seed).permutation(n)
    labels = np.empty(n, dtype=object)
    labels[order[:n_test]] = "test"
    labels[order[n_test : n_test + n_val]] = "val"
    labels[order[n_test + n_val :]] = "train"
    return pd.DataFrame({"subject": unique, "split": labels})


def split_indices(samples: pd.DataFrame, split: pd.DataFrame) -> dict[str, np.ndarray]:
    """Sample indices (``samples.sample``, ascending) of each split; a sample's split is its
    subject's.

    Parameters
    ----------
    samples : DataFrame
        ``samples.csv``: at least ``sample`` and ``subject``.
    split : DataFrame
        ``split.csv``: ``subject, split`` (:func:`split_subjects`).

    Returns
    -------
    dict
        ``{"train": ..., "val": ..., "test": ...}``, int arrays (empty for a split without
        samples).

    Raises
    ------
    DataError
        A subject of ``samples`` is missing from ``split``, or a split name is unknown.
    """
    subject_split = dict(zip(split["subject"].astype(str), split["split"], strict=True))
    subjects = samples["subject"].astype(str)
    missing = sorted(set(subjects) - set(subject_split))
    if missing:
        raise DataError(f"split.csv has no row for subject {missing[0]} of samples.csv")
    unknown = sorted(set(subject_split.values()) - set(SPLITS))
    if unknown:
        raise DataError(f"split.csv: unknown split {unknown[0]!r} (train, val or test)")
    labels = subjects.map(subject_split).to_numpy()
    rows = samples["sample"].to_numpy()
    return {name: np.sort(rows[labels == name]) for name in SPLITS}
