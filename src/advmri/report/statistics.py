"""The statistics stage of the report (rule ``stats``) and the statistics folder it writes.

``write_statistics`` classifies every network's training (``training_health.csv``) and runs the
study's mixed models (``advmri.stats``); ``read_stats`` and ``read_training_health`` read the folder
back for the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from advmri.errors import DataError
from advmri.logs import logger
from advmri.report.health import (
    HEALTH_COLUMNS,
    classify_training,
    excluded_networks,
    read_train_log,
)
from advmri.report.tables import (
    ANOVA_COLUMNS,
    EMMEANS_COLUMNS,
    EVAL_COLUMNS,
    TABLE1_COLUMNS,
    load_evaluations,
    read_table,
)

#: The statistics folder's file of every network's training status (``HEALTH_COLUMNS``).
TRAINING_HEALTH_FILE = "training_health.csv"


@dataclass(frozen=True)
class StatsTables:
    """The statistics folder's tables (``variance``, ``tukey``, ``diagnostics`` may be None)."""

    anova: pd.DataFrame
    emmeans: pd.DataFrame
    table1: pd.DataFrame
    variance: pd.DataFrame | None
    tukey: pd.DataFrame | None
    diagnostics: pd.DataFrame | None


def read_stats(folder: str | Path) -> StatsTables:
    """Read the statistics folder written by ``advmri.stats.run_study_statistics``.

    ``anova.csv``, ``emmeans.csv`` and ``table1.csv`` are required (DataError if missing);
    ``variance.csv``, ``tukey.csv`` and ``diagnostics.csv`` are shown when present.
    """
    folder = Path(folder)

    def optional(name: str) -> pd.DataFrame | None:
        path = folder / name
        return pd.read_csv(path) if path.is_file() else None

    return StatsTables(
        anova=read_table(folder / "anova.csv", ANOVA_COLUMNS),
        emmeans=read_table(folder / "emmeans.csv", EMMEANS_COLUMNS),
        table1=read_table(folder / "table1.csv", TABLE1_COLUMNS),
        variance=optional("variance.csv"),
        tukey=optional("tukey.csv"),
        diagnostics=optional("diagnostics.csv"),
    )


def write_statistics(
    eval_csvs: Sequence[str | Path],
    stats_dir: str | Path,
    *,
    settings: Mapping,
    lq_reference: str | Path | None = None,
    train_logs: Mapping[str, str | Path] | None = None,
    pretrain_log: str | Path | None = None,
) -> list[str]:
    """The statistics stage (rule ``stats``): training health, then the study's mixed models.

    Parameters
    ----------
    eval_csvs : ``results/eval/{cell}.csv`` of every grid network.
    stats_dir : folder (created) of the statistics tables (``advmri.stats.OUTPUT_FILES``,
        ``diagnostics.png``) and, with the train logs, ``training_health.csv``.
    settings : ``seed``, the ``stats`` section (``table1.test``, ``table1.selection``,
        ``exclude``, ``divergence_ratio``; ``stats.figures`` is not read) and
        ``metrics.responses`` (the study's responses; when absent, those the CSVs have): the
        study config or the part of it the rule passes.
    lq_reference : the LQ input's evaluation CSV (``results/reference/lq.csv``), needed with the
        train logs.
    train_logs, pretrain_log : cell name -> ``train_log.csv``, and the pretrained generator's;
        given together, every network's training health is classified and written, and
        ``stats.exclude: diverged`` leaves the diverged networks out of the models.

    Returns
    -------
    list of str
        The networks left out of the statistics (empty unless ``stats.exclude: diverged``).
    """
    stats_cfg = settings.get("stats", {})
    table1_cfg = stats_cfg.get("table1", {})
    stats_dir = Path(stats_dir)
    stats_dir.mkdir(parents=True, exist_ok=True)
    excluded: list[str] = []
    if train_logs is not None and pretrain_log is not None:
        if lq_reference is None:
            raise DataError("stats: the training-health check needs the LQ input's evaluation CSV")
        health = write_training_health(
            eval_csvs,
            stats_dir,
            lq_reference=lq_reference,
            train_logs=train_logs,
            pretrain_log=pretrain_log,
            divergence_ratio=float(stats_cfg.get("divergence_ratio", 2.0)),
        )
        excluded = excluded_networks(health, stats_cfg.get("exclude", "none"))
        if excluded:
            logger.warning(
                "stats.exclude = diverged: %d network(s) left out of the statistics: %s",
                len(excluded),
                ", ".join(excluded),
            )
    # imported here: the statistics are the report's heaviest dependency and only this stage
    # needs them (the report is rendered from the statistics folder)
    from advmri.stats import run_study_statistics

    run_study_statistics(
        [str(p) for p in eval_csvs if Path(p).stem not in set(excluded)],
        str(stats_dir),
        table1_test=table1_cfg.get("test", "paired"),
        table1_selection=table1_cfg.get("selection", "all"),
        seed=int(settings.get("seed", 2024)),
        allow_missing_networks=bool(excluded),
        responses=settings.get("metrics", {}).get("responses"),
    )
    logger.info("statistics written to %s", stats_dir)
    return excluded


def write_training_health(
    eval_csvs: Sequence[str | Path],
    stats_dir: str | Path,
    *,
    lq_reference: str | Path,
    train_logs: Mapping[str, str | Path],
    pretrain_log: str | Path,
    divergence_ratio: float = 2.0,
) -> pd.DataFrame:
    """Classify every network's training (``advmri.report.health``) and write
    ``stats_dir/training_health.csv``; returns the table (``HEALTH_COLUMNS``)."""
    health = classify_training(
        {name: read_train_log(path) for name, path in train_logs.items()},
        read_train_log(pretrain_log),
        load_evaluations(eval_csvs),
        read_table(lq_reference, EVAL_COLUMNS),
        divergence_ratio,
    )
    Path(stats_dir).mkdir(parents=True, exist_ok=True)
    health.to_csv(Path(stats_dir) / TRAINING_HEALTH_FILE, index=False)
    return health


def read_training_health(stats_dir: str | Path) -> pd.DataFrame | None:
    """``stats_dir/training_health.csv`` (reasons of ``ok`` networks as ""), or None when absent."""
    path = Path(stats_dir) / TRAINING_HEALTH_FILE
    if not path.is_file():
        return None
    health = read_table(path, HEALTH_COLUMNS)
    health["reason"] = health["reason"].fillna("").astype(str)
    return health
