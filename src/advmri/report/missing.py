"""The report's account of the values the statistics left out (``stats/missing.csv``).

Empty response values are accepted only with a recorded reason (an unfittable sharpness, a box
too small for SSIM, ...) and a 0 has no logarithm; the model leaves such values out, so the
report counts them per response and reason, and per network.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from advmri.report.document import Block

#: Columns of ``missing.csv`` as ``advmri.stats`` writes it.
MISSING_COLUMNS = ("network", "w_per", "w_adv", "lr", "response", "reason", "count")


def missing_value_blocks(stats_dir: str | Path) -> list[Block]:
    """Blocks summarising ``<stats_dir>/missing.csv``: per response and reason (values and
    networks), then per network; one line of text when nothing was left out or the file is absent
    (a statistics folder written before it existed)."""
    path = Path(stats_dir) / "missing.csv"
    if not path.is_file():
        return [Block("text", f"Values left out of the model: not recorded ({path.name} absent).")]
    missing = pd.read_csv(path)
    if missing.empty:
        return [Block("text", "Values left out of the model: none (every response value used).")]
    summary = (
        missing.groupby(["response", "reason"], sort=False)
        .agg(values=("count", "sum"), networks=("network", "nunique"))
        .reset_index()
    )
    return [
        Block(
            "table",
            "Values left out of the model, per response and reason (empty in the evaluation CSV "
            "with that reason recorded, or 0 under the log); they stay NaN in the CSVs.",
            table=summary,
        ),
        Block(
            "table",
            "The same, per network (stats/missing.csv).",
            table=missing[["network", "response", "reason", "count"]],
        ),
    ]
