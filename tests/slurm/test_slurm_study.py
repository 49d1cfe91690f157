"""The study through a real SLURM (munged + slurmctld + slurmd on this host) with profiles/slurm.

Every job must go through sbatch (the cluster's own record says so) and produce the same files as
a local run of the same tiny config; a misconfigured run must stop with one line before submitting.
Needs root (it installs and starts the daemons); CI runs as root.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import slurm_cluster
import torch
from slurm_study import (
    EDITS,
    RUN_ID,
    SLURM_FLAGS,
    SUBMITTED,
    edited_profile,
    path_without_slurm,
    slurm_jobs,
    snakemake,
    study_snakefile,
    write_config,
)

from advmri.models import load_generator

from fabricate import DATA_OUTPUTS, TINY_STUDY, TINY_TRAINING

pytestmark = pytest.mark.slow

DATA_TARGETS = DATA_OUTPUTS
CELLS = ("wper1_wadv0_lr0.001", "wper1_wadv0.1_lr0.001")
# The cell whose first attempt SLURM kills at its 1-minute time limit (SLURM's shortest).
KILLED_CELL = "wper1_wadv0.1_lr0.001"
# Seconds of training (at the local run's pace) that outlive the 1-minute limit: slurmctld enforces
# limits every 30 s and KillWait is 5 s, so a job is killed 60-95 s after it starts; the retries
# get 2 and 3 minutes for the rest (measured in CI: killed after epoch 20 of 66 at 60 s, 2.4 s an
# epoch). 240 s, not 120: on a shared 2-core machine the local pace was once 2x slower than the
# SLURM job's, which then finished all 16 epochs before its kill (resumed after epoch 16 of 16).
KILLED_CELL_TRAINING_SECONDS = 240
# Every result of the study that does not record a wall time (train logs and the report do).
COMPARED = [
    *DATA_TARGETS,
    *(f"results/eval/{cell}.csv" for cell in CELLS),
    "results/reference/lq.csv",
    "results/reference/pretrain.csv",
    *(f"results/report/stats/{name}.csv" for name in ("anova", "emmeans", "table1", "tukey")),
    "results/report/stats/variance.csv",
]
RESUMED = re.compile(
    rf"resuming from results/checkpoints/{re.escape(KILLED_CELL)}/checkpoint\.pt after epoch (\d+)"
)

# The tiny study of tests/workflow, every stage, sized for a 2-CPU node with 8 GB. Fine-tunes get
# 1 minute (x attempt, profiles/slurm retries) so that the long cell is killed at least once.
TINY = (
    copy.deepcopy(TINY_STUDY)
    | copy.deepcopy(TINY_TRAINING)
    | {
        "metrics": TINY_TRAINING["metrics"] | {"example_samples": 2},
        "resources": {
            "synthesize": {"cpus": 1, "mem_mb": 1500, "runtime": 5, "gpu": 0},
            "split": {"cpus": 1, "mem_mb": 500, "runtime": 5, "gpu": 0},
            "pretrain": {"cpus": 1, "mem_mb": 2000, "runtime": 10, "gpu": 0},
            "finetune": {"cpus": 1, "mem_mb": 2000, "runtime": 1, "gpu": 0},
            "evaluate": {"cpus": 1, "mem_mb": 2000, "runtime": 10, "gpu": 0},
            "report": {"cpus": 1, "mem_mb": 2000, "runtime": 10, "gpu": 0},
        },
    }
)
TINY["finetune"]["epochs"] = 2  # the second epoch times a warm training step


@dataclass
class Study:
    """Two working folders for the same tiny config: one run locally, one through SLURM.

    ``env`` is the test cluster's client environment (its SLURM_CONF and client wrappers), in
    which every Snakemake run of the study is started.
    """

    snakefile: Path
    config: list[str]
    profile: Path
    local: Path
    slurm: Path
    env: dict[str, str]
    killed_cell_epochs: int = 0

    def run_local(self, *targets: str):
        # --configfile takes every following word: it comes last
        return snakemake(
            self.snakefile, self.local, "--cores", "2", *targets, *self.config, env=self.env
        )

    def run_slurm(self, *targets: str, **kwargs):
        return snakemake(
            self.snakefile,
            self.slurm,
            "--profile",
            str(self.profile),
            *SLURM_FLAGS,
            *targets,
            *self.config,
            env=self.env,
            **kwargs,
        )


@pytest.fixture(scope="module")
def study(cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    return Study(
        snakefile=study_snakefile(root),
        config=write_config(root / "tiny.yaml", TINY),
        profile=edited_profile(root / "profile"),
        local=root / "local",
        slurm=root / "slurm",
        env=cluster.env,
    )


@pytest.fixture(scope="module")
def long_cell_study(study):
    """The study run locally, then with KILLED_CELL trained long enough to outlive its time limit.

    The epoch count comes from this machine's own speed (the local run's second epoch), so the
    first SLURM attempt is killed mid-training on a slow or a fast machine alike.
    """
    study.run_local()
    log = pd.read_csv(study.local / f"results/networks/{KILLED_CELL}/train_log.csv")
    epochs = math.ceil(KILLED_CELL_TRAINING_SECONDS / float(log["seconds"].iloc[-1]))
    config = copy.deepcopy(TINY)
    config["finetune"]["cell_overrides"] = {KILLED_CELL: {"epochs": epochs}}
    study.config = write_config(study.local.parent / "long.yaml", config)
    study.killed_cell_epochs = epochs
    study.run_local()  # the uninterrupted reference: only KILLED_CELL and what follows it rerun
    return study


def submitted_jobs(cluster, output: str) -> list[dict[str, str]]:
    """The cluster's record of the jobs of the Snakemake run that printed ``output``."""
    run_id = RUN_ID.search(output)
    assert run_id, output[-3000:]
    return slurm_jobs(cluster, run_id.group(1))


def network_weights(path: Path) -> dict:
    generator, _ = load_generator(path)
    return generator.state_dict()


def test_study_goes_through_sbatch_survives_a_walltime_kill_and_equals_a_local_run(
    cluster, long_cell_study
):
    study = long_cell_study
    run = study.run_slurm()
    (study.slurm / "snakemake.out").write_text(run.stdout)  # kept for a failing assertion

    jobs = submitted_jobs(cluster, run.stdout)
    # every job Snakemake ran was an sbatch submission; none ran on the "login node"
    assert sorted(SUBMITTED.findall(run.stdout)) == sorted(job["id"] for job in jobs)
    comments = [job["comment"] for job in jobs]
    for rule in ("synthesize", "split", "pretrain", "evaluate_reference", "stats", "report"):
        assert comments.count(f"rule_{rule}") == 1, comments
    fast_cell = [c for c in comments if c == f"rule_finetune_wildcards_{CELLS[0]}"]
    killed_cell = [c for c in comments if c == f"rule_finetune_wildcards_{KILLED_CELL}"]
    assert len(fast_cell) == 1 and len(killed_cell) >= 2, comments
    # the two evaluations went as one grouped SLURM job (profiles/slurm `groups`)
    named = {*fast_cell, *killed_cell, "rule_evaluate_reference"}
    grouped = [c for c in comments if c not in named and "evaluat" in c]
    assert len(grouped) == 1, comments
    assert len(jobs) == 8 + len(killed_cell), comments
    killed = [job for job in jobs if job["comment"] == killed_cell[0]]
    assert killed[0]["state"] == "TIMEOUT" and killed[0]["limit"] == "1:00", killed
    assert killed[-1]["state"] == "COMPLETED"
    assert {job["state"] for job in jobs if job not in killed} == {"COMPLETED"}, jobs

    # the retry, given more time, resumed from the killed attempt's checkpoint (its SLURM log;
    # results/logs/ holds the last attempt's)
    slurm_logs = study.slurm / ".snakemake/slurm_logs/rule_finetune" / KILLED_CELL
    log = (slurm_logs / f"{killed[1]['id']}.log").read_text()
    resumed = RESUMED.search(log)
    # killed mid-training: after a checkpoint, before the last epoch
    assert resumed and 1 <= int(resumed.group(1)) < study.killed_cell_epochs, log[-3000:]
    print(f"\n{resumed.group(0)}; SLURM jobs: {comments}")

    for target in COMPARED:
        local, slurm = study.local / target, study.slurm / target
        assert slurm.read_bytes() == local.read_bytes(), target
    for cell in ("pretrain", *CELLS):
        folder = f"results/networks/{cell}"
        local = network_weights(study.local / folder / "generator.pt")
        slurm = network_weights(study.slurm / folder / "generator.pt")
        assert local.keys() == slurm.keys()
        assert all(torch.equal(local[name], slurm[name]) for name in local), cell
        local_log = pd.read_csv(study.local / folder / "train_log.csv").drop(columns="seconds")
        slurm_log = pd.read_csv(study.slurm / folder / "train_log.csv").drop(columns="seconds")
        pd.testing.assert_frame_equal(local_log, slurm_log, check_exact=True)
    assert (study.slurm / "results/report/report.html").is_file()


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def failed_run(
    study,
    workdir: Path,
    *args: str,
    profile: Path | None = None,
    config: list[str] | None = None,
    env=None,
):
    """The last line of a SLURM run that must stop in the check: nothing submitted, no results.

    ``config``: --configfile arguments instead of the study's (they end the command line).
    """
    run = snakemake(
        study.snakefile,
        workdir,
        "--profile",
        str(profile or study.profile),
        *SLURM_FLAGS,
        *DATA_TARGETS,
        *args,  # options taking several words, like the --configfile that ends the line
        *(config or study.config),
        env=env or study.env,
        check=False,
    )
    assert run.returncode != 0, run.stdout[-3000:]
    assert not SUBMITTED.search(run.stdout), "a job was submitted before the check"
    assert not (workdir / "results").exists()
    return last_line(run.stdout)


def test_profile_left_with_its_account_placeholder_stops_naming_it(study, tmp_path):
    untouched = edited_profile(tmp_path / "profile", {})
    line = failed_run(study, tmp_path / "run", profile=untouched)
    assert line.startswith("slurm: slurm_account is still the placeholder <your_account>")
    assert "set default-resources: slurm_account in profiles/slurm/config.yaml" in line


def test_profile_left_with_a_partition_placeholder_stops_naming_it(study, tmp_path):
    edits = {key: value for key, value in EDITS.items() if key != "<cpu_partition>"}
    line = failed_run(study, tmp_path / "run", profile=edited_profile(tmp_path / "p", edits))
    assert line.startswith("slurm: slurm_partition is still the placeholder <cpu_partition>")


def test_gpu_partition_placeholder_names_the_set_resources_key_that_overrides_it(study, tmp_path):
    edits = {key: value for key, value in EDITS.items() if key != "<gpu_partition>"}
    line = failed_run(
        study,
        tmp_path / "run",
        "results/networks/pretrain/generator.pt",
        profile=edited_profile(tmp_path / "p", edits),
    )
    assert line == (
        "slurm: slurm_partition is still the placeholder <gpu_partition> (rule pretrain); set "
        "set-resources: pretrain: slurm_partition in profiles/slurm/config.yaml (or pass "
        "--set-resources pretrain:slurm_partition=NAME)"
    )


def test_gpu_job_on_a_partition_without_gpus_stops_before_sbatch(study, tmp_path):
    # `cpuonly` exists on the test cluster but has no gpu GRES (sbatch would answer
    # "Requested node configuration is not available").
    line = failed_run(
        study,
        tmp_path / "run",
        "--set-resources",
        "synthesize:gpu=1",
        "synthesize:slurm_partition=cpuonly",
    )
    assert line.startswith("slurm: rule synthesize asks for 1 GPU but partition 'cpuonly' has none")
    assert "resources.synthesize.gpu: 0" in line


def test_unknown_partition_stops_listing_the_real_ones(study, tmp_path):
    line = failed_run(
        study, tmp_path / "run", "--set-resources", "synthesize:slurm_partition=gpu_typo"
    )
    assert line == (
        "slurm: partition 'gpu_typo' of rule synthesize does not exist (sinfo lists: cpuonly, "
        "main, short); fix slurm_partition in profiles/slurm/config.yaml"
    )


def test_missing_sbatch_stops_with_what_to_do(study, tmp_path):
    env = dict(study.env, PATH=path_without_slurm(tmp_path / "path", study.env["PATH"]))
    line = failed_run(study, tmp_path / "run", env=env)
    assert line.startswith("slurm: sbatch is not on PATH; run snakemake --profile slurm on a")


def test_group_job_too_big_for_the_partition_stops_naming_it_before_sbatch(study, tmp_path):
    # the case, scaled to the test node (2 CPUs): profiles/slurm's `cores: 8` lets the
    # group job run both 2-thread evaluations at once, so it asks for 4 CPUs; SLURM would keep it
    # pending for good (PartitionConfig)
    config = copy.deepcopy(TINY)
    config["resources"]["evaluate"]["cpus"] = 2
    evaluations = [f"results/eval/{cell}.csv" for cell in CELLS]
    line = failed_run(
        study,
        tmp_path / "run",
        *evaluations,
        config=write_config(tmp_path / "two_threads.yaml", config),
    )
    assert line == (
        "slurm: group evaluations (2 jobs) asks for 4 CPUs but partition 'main' offers at most "
        f"{slurm_cluster.NODE_CPUS} CPUs per node; lower cores: in profiles/slurm/config.yaml (a "
        "group job runs cores / threads of its jobs at once), or use a larger partition"
    )


def test_runtime_beyond_the_partitions_maxtime_at_the_last_retry_stops_naming_it(study, tmp_path):
    line = failed_run(
        study,
        tmp_path / "run",
        "results/networks/pretrain/generator.pt",
        "--set-resources",
        f"pretrain:slurm_partition={slurm_cluster.SHORT_PARTITION}",
    )
    # resources.pretrain.runtime 10 min, x3 at the second retry (profiles/slurm retries: 2)
    assert line == (
        "slurm: rule pretrain asks for 30 min at attempt 3 (retries: in "
        "profiles/slurm/config.yaml) but partition 'short' offers a MaxTime of "
        f"{slurm_cluster.SHORT_MAX_MINUTES} min; lower resources.pretrain.runtime, or use a larger "
        "partition"
    )


def test_imagenet_weights_missing_from_the_jobs_cache_stop_before_sbatch(study, tmp_path):
    config = copy.deepcopy(TINY)
    config["perceptual"]["weights"] = "imagenet"
    torch_home = tmp_path / "torch"
    line = failed_run(
        study,
        tmp_path / "run",
        f"results/networks/{CELLS[0]}/generator.pt",
        config=write_config(tmp_path / "imagenet.yaml", config),
        env=dict(study.env, TORCH_HOME=str(torch_home)),
    )
    cache = torch_home / "hub/checkpoints/vgg19-dcbb9e9d.pth"
    assert line.startswith(f"slurm: perceptual.weights: imagenet but {cache} does not exist")
    assert "run advmri fetch-weights on this login node first" in line


def test_the_cluster_leaves_the_machines_slurm_configuration_alone(cluster):
    # what the test cluster reads is under its own folder; /etc/slurm stays the machine's
    assert cluster.conf.is_relative_to(cluster.root)
    system = Path("/etc/slurm")
    files = [path for path in system.rglob("*") if path.is_file()] if system.is_dir() else []
    assert not [path for path in files if slurm_cluster.MARKER in path.read_text(errors="replace")]
    config = cluster.command("scontrol", "show", "config")
    assert re.search(rf"^SLURM_CONF\s*=\s*{re.escape(str(cluster.conf))}$", config, re.M), config
