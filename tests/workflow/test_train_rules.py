"""The training rules as users run them: real jobs on a tiny grid, dry runs on the paper grid."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from advmri.grid import grid_cells
from advmri.models import RANDOM_FLAG, load_generator

from fabricate import DATA_OUTPUTS, REPO, TINY_STUDY
from fabricate import TINY_TRAINING as TINY_TRAINING_NETWORKS

TINY_TRAINING = TINY_TRAINING_NETWORKS | {
    "resources": {
        "pretrain": {"cpus": 1, "mem_mb": 2000, "runtime": 10, "gpu": 0},
        "finetune": {"cpus": 1, "mem_mb": 2000, "runtime": 10, "gpu": 0},
    },
}
PAPER_CELLS = grid_cells(yaml.safe_load((REPO / "config.yaml").read_text())["grid"])


def workflow_copy(tmp_path: Path) -> Path:
    """The repository's Snakefile, rules/, workflow/ and config.yaml in a fresh folder."""
    work = tmp_path / "study"
    work.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, work / name)
    for name in ("rules", "workflow", "envs"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, work / name)
    return work


def snakemake(work: Path, *args: str) -> str:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def planned_jobs(output: str) -> dict[str, int]:
    """Job counts per rule from a dry run's "Job stats" table ({} when nothing is to be done)."""
    counts = {}
    if "Job stats:" not in output:
        return counts
    table = output.split("Job stats:", 1)[1].splitlines()
    for line in table[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def planned_cells(output: str) -> set[str]:
    return set(re.findall(r"wildcards: cell=(\S+)", output))


def write_config(work: Path, name: str, *overrides: dict) -> list[str]:
    paths = []
    for index, override in enumerate(overrides):
        path = work / f"{name}{index}.yaml"
        path.write_text(yaml.safe_dump(override))
        paths.append(str(path))
    return ["--configfile", str(work / "config.yaml"), *paths]


@pytest.mark.slow
def test_tiny_grid_trains_a_changed_cell_override_reruns_that_cell_alone_and_the_report_builds(
    tmp_path,
):
    work = workflow_copy(tmp_path)
    config = write_config(work, "tiny", TINY_STUDY, TINY_TRAINING)
    snakemake(work, "train", *config)

    for cell in ("wper1_wadv0_lr0.001", "wper1_wadv0.1_lr0.001"):
        _, metadata = load_generator(work / f"results/networks/{cell}/generator.pt")
        assert metadata["settings"]["cell"]["name"] == cell
        assert RANDOM_FLAG in metadata["perceptual_weights"]
        log = pd.read_csv(work / f"results/networks/{cell}/train_log.csv")
        assert list(log["epoch"]) == [1]
        assert (work / f"results/checkpoints/{cell}/checkpoint.pt").is_file()
        assert (work / f"results/logs/finetune/{cell}.log").read_text().count(RANDOM_FLAG) >= 1
        assert (work / f"results/benchmarks/finetune/{cell}.tsv").is_file()
    assert (work / "results/networks/pretrain/generator.pt").is_file()

    assert "Nothing to be done" in snakemake(work, "train", "-n", *config)

    changed = copy.deepcopy(TINY_TRAINING)
    changed["finetune"]["cell_overrides"] = {"wper1_wadv0.1_lr0.001": {"epochs": 2}}
    output = snakemake(work, "train", "-n", *write_config(work, "changed", TINY_STUDY, changed))
    assert planned_jobs(output) == {"finetune": 1, "train": 1}
    assert planned_cells(output) == {"wper1_wadv0.1_lr0.001"}

    # the rest of the study on the trained networks, every rule to the report
    snakemake(work, *config)
    report = work / "results/report"
    assert "## Training health" in (report / "report.md").read_text()
    health = pd.read_csv(report / "stats/training_health.csv")
    assert sorted(health["network"]) == ["wper1_wadv0.1_lr0.001", "wper1_wadv0_lr0.001"]
    assert (report / "figures/training_curves.png").is_file()
    truth = pd.read_csv(work / "results/reference/hq.csv")
    assert (truth["mie"] == 0).all() and (truth["ssim"] == 1).all()
    assert set(truth.columns) == set(pd.read_csv(work / "results/reference/lq.csv").columns)


@pytest.mark.slow
def test_paper_grid_plans_216_cells_and_one_more_w_adv_value_plans_exactly_12(tmp_path):
    work = workflow_copy(tmp_path)
    config = ["--configfile", str(work / "config.yaml")]
    jobs = planned_jobs(snakemake(work, "train", "-n", *config))
    assert jobs["pretrain"] == 1 and jobs["finetune"] == 216 == len(PAPER_CELLS)

    # stand-ins for a finished study: every output exists and Snakemake records it as made
    # under the current params (--touch writes the metadata without running anything)
    outputs = [
        *DATA_OUTPUTS,
        "results/networks/pretrain/generator.pt",
        "results/networks/pretrain/train_log.csv",
    ] + [
        f"results/networks/{c.name}/{f}"
        for c in PAPER_CELLS
        for f in ("generator.pt", "train_log.csv")
    ]
    for path in outputs:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).touch()
    snakemake(work, "train", "--touch", *config)
    assert "Nothing to be done" in snakemake(work, "train", "-n", *config)

    grid = yaml.safe_load((work / "config.yaml").read_text())["grid"]
    more = {"grid": {**grid, "w_adv": [*grid["w_adv"], 4]}}
    output = snakemake(work, "train", "-n", *write_config(work, "more", more))
    assert planned_jobs(output) == {"finetune": 12, "train": 1}
    assert all("_wadv4_" in cell for cell in planned_cells(output))
