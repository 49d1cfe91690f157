"""Training health: each network's status from its train log and lesion metrics, the curves, the
flags in the report, and ``stats.exclude``."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest

from advmri.errors import DataError
from advmri.grid import Cell
from advmri.report import build_report
from advmri.report.health import (
    classify_training,
    curves_table,
    excluded_networks,
    grid_order,
    plot_training_curves,
    read_train_log,
)
from advmri.report.statistics import write_training_health


def train_log(val_l1, d: bool = True) -> pd.DataFrame:
    """A fine-tune log whose validation L1 follows ``val_l1`` (train L1 a little below it)."""
    val = np.asarray(val_l1, dtype=float)
    log = pd.DataFrame(
        {
            "epoch": np.arange(1, val.size + 1),
            "lr": 0.001,
            "l1": val * 0.9,
            "perceptual": 0.05,
            "adversarial": 0.7 if d else np.nan,
            "total": val,
            "discriminator": 1.3 if d else np.nan,
            "d_real": 0.4 if d else np.nan,
            "d_fake": -0.2 if d else np.nan,
            "val_l1": val,
            "seconds": 1.0,
            "perceptual_weights": "random VGG19, not ImageNet (seeded)",
        }
    )
    return log


PRETRAIN = pd.DataFrame({"epoch": [1, 2, 3], "l1": [0.2, 0.1, 0.05], "val_l1": [0.2, 0.1, 0.05]})


def evals_for(cells: dict[Cell, tuple[float, float]], n: int = 4) -> pd.DataFrame:
    """Evaluation rows with the given mean (MIE, SSIM) per network."""
    rows = []
    for cell, (mie, ssim) in cells.items():
        for sample in range(n):
            rows.append(
                {
                    "sample": sample,
                    "w_per": cell.w_per,
                    "w_adv": cell.w_adv,
                    "lr": cell.lr,
                    "mie": mie,
                    "ssim": ssim,
                }
            )
    return pd.DataFrame(rows)


LQ = pd.DataFrame({"sample": range(4), "mie": 0.2, "ssim": 0.25})


def classify(cells_logs_metrics: dict[Cell, tuple[pd.DataFrame, tuple[float, float]]]):
    logs = {cell.name: log for cell, (log, _) in cells_logs_metrics.items()}
    evals = evals_for({cell: metrics for cell, (_, metrics) in cells_logs_metrics.items()})
    health = classify_training(logs, PRETRAIN, evals, LQ, divergence_ratio=3.0)
    return health.set_index("network")


def test_each_status_and_its_reason():
    ok, nan, blown, far, useless = (
        Cell(1.0, 0.0, 0.001),
        Cell(1.0, 0.1, 0.001),
        Cell(1.0, 0.0, 0.01),
        Cell(1.0, 0.1, 0.01),
        Cell(0.5, 0.0, 0.001),
    )
    health = classify(
        {
            ok: (train_log([0.06, 0.05, 0.05], d=False), (0.05, 0.5)),
            nan: (train_log([0.06, math.nan, 0.05]), (0.05, 0.5)),
            blown: (train_log([0.05, 0.08, 0.4], d=False), (0.05, 0.5)),  # 8x its own best
            far: (train_log([0.5, 0.45, 0.4]), (0.05, 0.5)),  # 8x the pretrained 0.05
            useless: (train_log([0.06, 0.05, 0.05], d=False), (0.25, 0.5)),  # MIE above LQ's 0.2
        }
    )
    assert health.loc[ok.name, "status"] == "ok" and health.loc[ok.name, "reason"] == ""
    assert health.loc[nan.name, "status"] == "diverged"
    assert "l1 = nan at epoch 2" in health.loc[nan.name, "reason"]
    assert health.loc[blown.name, "status"] == "diverged"
    assert "8.0x its best" in health.loc[blown.name, "reason"]
    assert health.loc[far.name, "status"] == "diverged"
    assert "pretrained generator" in health.loc[far.name, "reason"]
    assert health.loc[useless.name, "status"] == "not learning"
    assert "MIE 0.25 vs LQ input 0.2" in health.loc[useless.name, "reason"]
    assert health.loc[blown.name, "best_epoch"] == 1


def test_worse_ssim_alone_is_not_learning_and_equal_to_the_input_is_ok():
    worse, equal = Cell(1.0, 0.0, 0.001), Cell(1.0, 0.1, 0.001)
    health = classify(
        {
            worse: (train_log([0.05, 0.05]), (0.1, 0.2)),
            equal: (train_log([0.05, 0.05]), (0.2, 0.25)),
        }
    )
    assert health.loc[worse.name, "status"] == "not learning"
    assert "SSIM 0.2 vs LQ input 0.25" in health.loc[worse.name, "reason"]
    assert health.loc[equal.name, "status"] == "ok"


def test_networks_come_in_grid_order_and_exclusion_takes_only_the_diverged():
    cells = [Cell(1.0, 0.1, 0.01), Cell(0.5, 0.1, 0.001), Cell(0.5, 0.0, 0.001)]
    assert [c.name for c in grid_order(cells)] == [
        "wper0.5_wadv0_lr0.001",
        "wper0.5_wadv0.1_lr0.001",
        "wper1_wadv0.1_lr0.01",
    ]
    health = classify(
        {
            cells[0]: (train_log([0.05, 0.9]), (0.05, 0.5)),
            cells[1]: (train_log([0.05, 0.05]), (0.5, 0.5)),
            cells[2]: (train_log([0.05, 0.05]), (0.05, 0.5)),
        }
    ).reset_index()
    assert excluded_networks(health, "none") == []
    assert excluded_networks(health, "diverged") == ["wper1_wadv0.1_lr0.01"]
    with pytest.raises(DataError, match="stats.exclude = 'all'"):
        excluded_networks(health, "all")


def test_a_network_without_a_log_and_a_bad_ratio_are_refused():
    cell = Cell(1.0, 0.0, 0.001)
    evals = evals_for({cell: (0.05, 0.5)})
    with pytest.raises(DataError, match="wper1_wadv0_lr0.001 has no train_log.csv"):
        classify_training({}, PRETRAIN, evals, LQ)
    with pytest.raises(DataError, match="finite number above 1"):
        classify_training({cell.name: train_log([0.1])}, PRETRAIN, evals, LQ, math.nan)


def test_train_logs_that_cannot_be_read_name_the_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.csv: not a readable train log"):
        read_train_log(empty)
    header = tmp_path / "header.csv"
    header.write_text("epoch,l1,val_l1\n")
    with pytest.raises(DataError, match="header.csv: the train log has no epochs"):
        read_train_log(header)
    with pytest.raises(DataError, match="missing column"):
        pd.DataFrame({"epoch": [1]}).to_csv(tmp_path / "bad.csv", index=False)
        read_train_log(tmp_path / "bad.csv")


def test_curves_are_drawn_with_their_data(tmp_path):
    cells = {
        Cell(1.0, 0.0, 0.001): (train_log([0.06, 0.05], d=False), (0.05, 0.5)),
        Cell(1.0, 0.1, 0.001): (train_log([0.06, 0.3]), (0.05, 0.5)),
    }
    logs = {cell.name: log for cell, (log, _) in cells.items()}
    health = classify(cells).reset_index()
    plot_training_curves(logs, PRETRAIN, health, tmp_path / "c.png", tmp_path / "c.csv")
    assert (tmp_path / "c.png").stat().st_size > 10_000
    table = pd.read_csv(tmp_path / "c.csv")
    assert set(table["network"]) == {"pretrain", *logs}
    gan = table[table["network"] == "wper1_wadv0.1_lr0.001"]
    assert set(gan["term"]) == {"l1", "val_l1", "perceptual", "adversarial", "d_real", "d_fake"}
    assert len(curves_table(logs, PRETRAIN)) == len(table)


def logs_with_diverged(study, folder, diverged: str):
    """Train logs of the simulated study's networks in which network ``diverged`` diverged."""
    logs = {}
    for path in study.eval_csvs:
        name = path.stem
        values = [0.06, 0.05, 0.9] if name == diverged else [0.06, 0.05, 0.05]
        logs[name] = folder / "logs" / name / "train_log.csv"
        logs[name].parent.mkdir(parents=True)
        train_log(values).to_csv(logs[name], index=False)
    pretrain = folder / "logs" / "pretrain.csv"
    PRETRAIN.to_csv(pretrain, index=False)
    return logs, pretrain


def build_into(out, study, stats_dir, config=None, **options):
    """``build_report`` on the simulated study's files, writing the report into ``out``."""
    return build_report(
        study.eval_csvs,
        references=study.references,
        examples=study.examples,
        dataset=study.dataset,
        config=config or study.config,
        html_path=out / "report.html",
        md_path=out / "report.md",
        stats_dir=stats_dir,
        figures_dir=out / "figures",
        **options,
    )


@pytest.fixture
def study_with_logs(study, tmp_path):
    """The simulated study's networks with train logs; the (1, 0.5, 0.01) network diverged."""
    return study, *logs_with_diverged(study, tmp_path, "wper1_wadv0.5_lr0.01")


def test_report_shows_training_health_and_flags_the_diverged_network(study_with_logs, tmp_path):
    study, logs, pretrain = study_with_logs
    out = tmp_path / "report"
    stats_dir = shutil.copytree(study.stats_dir, tmp_path / "stats")  # the fixture is shared
    # the statistics stage's part: the statuses, beside the (crafted) statistics tables
    write_training_health(
        study.eval_csvs,
        stats_dir,
        lq_reference=study.references["LQ input"],
        train_logs=logs,
        pretrain_log=pretrain,
    )
    build_into(
        out,
        study,
        stats_dir,
        compute_statistics=False,
        train_logs=logs,
        pretrain_log=pretrain,
    )
    md = (out / "report.md").read_text()
    assert "## Training health" in md
    assert "1 diverged" in md
    assert "wper1_wadv0.5_lr0.01" in md and "x its best" in md
    assert (out / "figures" / "training_curves.png").is_file()
    health = pd.read_csv(stats_dir / "training_health.csv")
    assert health.set_index("network").loc["wper1_wadv0.5_lr0.01", "status"] == "diverged"
    assert (health["status"] == "diverged").sum() == 1
    # flagged wherever it appears: Table 1's flags, the findings, Figure 4's crosses
    fig4 = pd.read_csv(out / "figures" / "fig4_interaction_lr.csv", keep_default_na=False)
    flagged = fig4[fig4["flag"] != ""]
    assert set(flagged["flag"]) <= {"diverged", "not learning"}
    diverged = fig4[(fig4["w_adv"] == 0.5) & (fig4["lr"] == 0.01)]
    assert (diverged["flag"] == "diverged").all() and len(diverged) == 5


def test_excluding_the_diverged_network_leaves_its_cell_out_of_the_statistics(
    study_with_logs, tmp_path
):
    study, logs, pretrain = study_with_logs
    out = tmp_path / "report"
    config = {**study.config, "stats": {**study.config["stats"], "exclude": "diverged"}}
    build_into(
        out,
        study,
        out / "stats",
        config=config,
        compute_statistics=True,
        train_logs=logs,
        pretrain_log=pretrain,
    )
    md = (out / "report.md").read_text()
    assert "Left out of the statistics (stats.exclude: diverged): wper1_wadv0.5_lr0.01" in md
    emmeans = pd.read_csv(out / "stats" / "emmeans.csv")
    cell = (emmeans["w_per"] == 1.0) & (emmeans["w_adv"] == 0.5) & (emmeans["lr"] == 0.01)
    assert emmeans.loc[cell, "estimate"].isna().all()
    assert emmeans.loc[~cell, "estimate"].notna().all()
    t1 = pd.read_csv(out / "stats" / "table1.csv")
    won = (t1["w_per"] == 1.0) & (t1["gan_w_adv"] == 0.5) & (t1["gan_lr"] == 0.01)
    assert not won.any() and t1["ge_F"].notna().all()
    anova = pd.read_csv(out / "stats" / "anova.csv")
    assert anova["note"].str.contains("1 network\\(s\\) missing").all()


def test_a_diverged_vgg_network_leaves_its_table1_row_untested_and_the_report_builds(
    study, tmp_path
):
    logs, pretrain = logs_with_diverged(study, tmp_path, "wper1_wadv0_lr0.01")
    out = tmp_path / "report"
    config = {**study.config, "stats": {**study.config["stats"], "exclude": "diverged"}}
    # Figure 4/5 at W_per 1 and LR 0.01 both draw the excluded network's (NaN) means
    config["stats"]["figures"] = {"w_per": 1.0, "lr": 0.01}
    build_into(
        out,
        study,
        out / "stats",
        config=config,
        compute_statistics=True,
        train_logs=logs,
        pretrain_log=pretrain,
    )
    md = (out / "report.md").read_text()
    assert "Left out of the statistics (stats.exclude: diverged): wper1_wadv0_lr0.01" in md
    t1 = pd.read_csv(out / "stats" / "table1.csv").set_index(["level", "w_per", "lr"])
    row = t1.loc[("II", 1.0, 0.01)]
    assert np.isnan(row["vgg_w_adv"]) and np.isnan(row["ge_F"]) and "no VGG" in row["note"]
    assert t1.loc[("I", 1.0)]["vgg_lr"].item() == 0.001
    assert "none in the statistics (left out)" in (out / "stats" / "table1.md").read_text()
    # the figures skip the left-out network's point: drawn, and no optimum marked on a NaN
    fig5 = pd.read_csv(out / "figures" / "fig5_interaction_wper.csv")
    assert fig5["estimate"].isna().sum() == 5
    assert fig5.loc[fig5["marked"], "estimate"].notna().all()
    assert fig5.groupby(["response", "w_per"])["marked"].sum().eq(1).all()
    assert (out / "figures" / "fig4_interaction_lr.png").stat().st_size > 10_000


def test_a_report_with_train_logs_but_no_training_health_file_names_the_file(
    study_with_logs, tmp_path
):
    study, logs, pretrain = study_with_logs
    stats_dir = shutil.copytree(study.stats_dir, tmp_path / "stats")  # no training_health.csv
    with pytest.raises(DataError, match=r"stats/training_health\.csv not found; the statistics"):
        build_into(
            tmp_path / "report",
            study,
            stats_dir,
            compute_statistics=False,
            train_logs=logs,
            pretrain_log=pretrain,
        )
