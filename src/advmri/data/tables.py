"""Reading the pipeline's own CSV tables (``samples.csv``, ``split.csv``) with one-line errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from advmri.errors import DataError


def read_table(
    path: str | Path,
    columns: Sequence[str],
    absent: str,
    advice: str,
    prefix: str = "",
    dtype: dict | None = None,
) -> pd.DataFrame:
    """The CSV table at ``path``, which must have ``columns``.

    Parameters
    ----------
    path : path
        The table.
    columns : sequence of str
        Columns it must have (others are kept).
    absent : str
        What to do when the file does not exist (ends that message).
    advice : str
        What to do when it is unreadable or lacks a column (ends those messages).
    prefix : str
        Starts every message (``"dataset: "``).
    dtype : dict, optional
        Passed to :func:`pandas.read_csv`.

    Raises
    ------
    DataError
        ``{prefix}{path} does not exist; {absent}``, ``... is not a readable CSV table (...);
        {advice}`` or ``... lacks column 'c'; {advice}``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{prefix}{path} does not exist; {absent}")
    try:
        table = pd.read_csv(path, dtype=dtype)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(
            f"{prefix}{path} is not a readable CSV table ({type(error).__name__}); {advice}"
        ) from None
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise DataError(f"{prefix}{path} lacks column {missing[0]!r}; {advice}")
    return table
