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


def samples_in_split(samples: pd.DataFrame, split: pd.DataFrame, name: str) -> np.ndarray:
    """Row indices (``sample`` column) of the samples whose subject is in split ``name``."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
    subjects = set(split.loc[split["split"] == name, "subject"])
    return samples.loc[samples["subject"].isin(subjects), "sample"].to_numpy()
