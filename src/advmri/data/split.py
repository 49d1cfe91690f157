"""Patient-level train/validation/test split (study §2).

The unit is the patient (``subject``), never the sample or the session, so no patient's anatomy is in
two splits (OASIS-1 MR1 and MR2 sessions of one patient stay together).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advmri.data.tables import read_table
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


#: Columns of ``split.csv``.
SPLIT_COLUMNS = ("subject", "split")


def read_split(path: str | Path) -> pd.DataFrame:
    """``split.csv`` (:func:`split_subjects`'s table), checked.

    Returns
    -------
    DataFrame
        ``subject`` (str) and ``split``, as written.

    Raises
    ------
    DataError
        Missing, unreadable, a column missing, a subject listed twice; one line naming ``path``
        (a split name other than train, val and test is :func:`split_indices`'s to refuse).
    """
    table = read_table(
        path,
        SPLIT_COLUMNS,
        "run the dataset and split rules first",
        "rerun the split rule",
        dtype={"subject": str},
    )
    twice = table["subject"][table["subject"].duplicated()]
    if len(twice):
        raise DataError(f"{path} lists subject {twice.iloc[0]} twice; rerun the split rule")
    return table


def split_indices(
    samples: pd.DataFrame, split: pd.DataFrame, source: str | Path = "split.csv"
) -> dict[str, np.ndarray]:
    """Sample indices (``samples.sample``, ascending) of each split; a sample's split is its
    subject's.

    Parameters
    ----------
    samples : DataFrame
        ``samples.csv``: at least ``sample`` and ``subject``.
    split : DataFrame
        ``split.csv``: ``subject, split`` (:func:`split_subjects`, :func:`read_split`).
    source : path
        Names the split table in error messages.

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
        raise DataError(f"{source} has no row for subject {missing[0]} of samples.csv")
    unknown = sorted(set(subject_split.values()) - set(SPLITS))
    if unknown:
        raise DataError(f"{source}: unknown split {unknown[0]!r} (train, val or test)")
    labels = subjects.map(subject_split).to_numpy()
    rows = samples["sample"].to_numpy()
    return {name: np.sort(rows[labels == name]) for name in SPLITS}


def rows_of_split(
    samples: pd.DataFrame, path: str | Path, name: str, purpose: str | None = None
) -> np.ndarray:
    """Sample indices (ascending) of split ``name`` by the split table at ``path``.

    Parameters
    ----------
    samples : DataFrame
        ``samples.csv`` (``sample``, ``subject``).
    path : path
        ``split.csv`` (:func:`read_split`).
    name : {"train", "val", "test"}
        The split.
    purpose : str, optional
        What the caller does with the split ("train on", "evaluate"); given, an empty split is
        an error saying so.

    Raises
    ------
    DataError
        Anything :func:`read_split` or :func:`split_indices` refuses, or an empty split when
        ``purpose`` is given.
    """
    rows = split_indices(samples, read_split(path), path)[name]
    if purpose is not None and rows.size == 0:
        raise DataError(f"{path} puts no subject in the {name} split; nothing to {purpose}")
    return rows
