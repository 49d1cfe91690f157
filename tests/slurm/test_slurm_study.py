"""The study through a real SLURM (munged + slurmctld + slurmd on this host) with profiles/slurm.

Every job must go through sbatch (the cluster's own record says so) and produce the same files as
a local run of the same tiny config; a misconfigured run must stop with one line before submitting.
Needs root (it installs and starts the daemons); CI runs as root.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
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

from fabricate import TINY_STUDY

pytestmark = pytest.mark.slow

DATA_TARGETS = [
    "results/dataset/hq.npy",
    "results/dataset/lq.npy",
    "results/dataset/lesion.npy",
    "results/dataset/samples.csv",
    "results/dataset/preview.png",
    "results/split/split.csv",
]

# The tiny study of tests/workflow, sized for a 2-CPU node with 8 GB.
TINY = copy.deepcopy(TINY_STUDY) | {
    "resources": {
        "synthesize": {"cpus": 1, "mem_mb": 1500, "runtime": 5, "gpu": 0},
        "split": {"cpus": 1, "mem_mb": 500, "runtime": 5, "gpu": 0},
    },
}


@dataclass
class Study:
    """Two working folders for the same tiny config: one run locally, one through SLURM."""

    snakefile: Path
    config: list[str]
    profile: Path
    local: Path
    slurm: Path

    def run_local(self, *targets: str):
        # --configfile takes every following word: it comes last
        return snakemake(self.snakefile, self.local, "--cores", "2", *targets, *self.config)

    def run_slurm(self, *targets: str, **kwargs):
        return snakemake(
            self.snakefile,
            self.slurm,
            "--profile",
            str(self.profile),
            *SLURM_FLAGS,
            *targets,
            *self.config,
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
    )


def submitted_jobs(cluster, output: str) -> list[dict[str, str]]:
    """The cluster's record of the jobs of the Snakemake run that printed ``output``."""
    run_id = RUN_ID.search(output)
    assert run_id, output[-3000:]
    return slurm_jobs(cluster, run_id.group(1))


def test_data_stage_goes_through_sbatch_and_equals_a_local_run(cluster, study):
    study.run_local(*DATA_TARGETS)
    run = study.run_slurm(*DATA_TARGETS)

    jobs = submitted_jobs(cluster, run.stdout)
    assert sorted(job["comment"] for job in jobs) == ["rule_split", "rule_synthesize"]
    assert {job["state"] for job in jobs} == {"COMPLETED"}
    # every job Snakemake ran was an sbatch submission; none ran on the "login node"
    assert sorted(SUBMITTED.findall(run.stdout)) == sorted(job["id"] for job in jobs)
    assert "localrule" not in run.stdout
    for target in DATA_TARGETS:
        local, slurm = study.local / target, study.slurm / target
        assert slurm.read_bytes() == local.read_bytes(), target


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def failed_run(study, workdir: Path, *args: str, profile: Path | None = None, env=None):
    run = snakemake(
        study.snakefile,
        workdir,
        "--profile",
        str(profile or study.profile),
        *SLURM_FLAGS,
        *DATA_TARGETS,
        *args,  # options taking several words, like the --configfile that ends the line
        *study.config,
        env=env,
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
        "main); fix slurm_partition in profiles/slurm/config.yaml"
    )


def test_missing_sbatch_stops_with_what_to_do(study, tmp_path):
    env = dict(os.environ, PATH=path_without_slurm(tmp_path / "path"))
    line = failed_run(study, tmp_path / "run", env=env)
    assert line.startswith("slurm: sbatch is not on PATH; run snakemake --profile slurm on a")
