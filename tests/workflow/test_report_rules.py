"""The statistics and report rules replan exactly what a config edit changes (dry runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_train_rules import planned_jobs, snakemake, workflow_copy, write_config

from fabricate import TINY_STUDY, TINY_TRAINING

#: A tiny study with two LRs, so that Figure 5's LR can move to another level of the grid.
TOUCHED_STUDY = TINY_TRAINING | {
    "grid": {"w_per": [1.0], "w_adv": [0, 0.1], "lr": [0.001, 0.01]},
    "stats": {"figures": {"w_per": 1.0, "lr": 0.001}},
}

#: One edit of each kind, and the jobs its dry run must plan (``{}``: nothing to be done).
EDITS = {
    "resources only": ({"resources": {"finetune": {"runtime": 99}}}, {}),
    "speed only": ({"compute": {"fused_adam": False}}, {}),
    "statistics only": (
        {"stats": {"table1": {"selection": "split_half"}}},
        {"stats": 1, "report": 1, "all": 1},
    ),
    "figures only": ({"stats": {"figures": {"lr": 0.01}}}, {"report": 1, "all": 1}),
}


def touch_study_outputs(work: Path, config: list[str]) -> list[str]:
    """Every output of the study as an empty stand-in, recorded by ``--touch`` as made under
    the current params (nothing runs); returns the output paths."""
    summary = snakemake(work, "--summary", *config)
    outputs = [
        line.split("\t")[0]
        for line in summary.splitlines()
        if line.startswith("results/") and "\t" in line
    ]
    for name in outputs:
        path = work / name
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:  # a directory output (results/report/stats, results/report/figures)
            path.mkdir(parents=True, exist_ok=True)
    # --forceall: every job is touched and recorded; without it only the jobs Snakemake finds out
    # of date (by mtime) are, and a params edit of the others could not trigger anything
    snakemake(work, "--touch", "--forceall", *config)
    return outputs


@pytest.mark.slow
def test_resources_and_speed_edits_plan_nothing_a_statistics_edit_stats_and_report_a_figure_edit_the_report(
    tmp_path,
):
    work = workflow_copy(tmp_path)
    config = write_config(work, "tiny", TINY_STUDY, TOUCHED_STUDY)
    outputs = touch_study_outputs(work, config)
    assert {"results/report/stats", "results/report/figures", "results/report/report.html"} <= set(
        outputs
    )
    # every output's params are on record, so an edit of any rule's params would show in a plan
    assert len(list((work / ".snakemake" / "metadata").iterdir())) == len(outputs)
    assert "Nothing to be done" in snakemake(work, "-n", *config)

    plans = {}
    for kind, (edit, _) in EDITS.items():
        name = kind.replace(" ", "_")
        output = snakemake(work, "-n", *config, *write_config(work, name, edit)[2:])
        plans[kind] = planned_jobs(output)
    assert plans == {kind: expected for kind, (_, expected) in EDITS.items()}
