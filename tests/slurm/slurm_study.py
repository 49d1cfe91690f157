"""Running the study's Snakefile locally and through SLURM (profiles/slurm), and reading the record."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import slurm_cluster
import yaml

REPO = Path(__file__).resolve().parents[2]

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
# What a user types into the profile for this cluster (README.md, "Running on a SLURM cluster", "What to edit").
EDITS = {
    "<your_account>": "advmri",
    "<cpu_partition>": slurm_cluster.PARTITION,
    "<gpu_partition>": slurm_cluster.PARTITION,
}
# The plugin's status query for clusters without accounting storage (its docs: sacct needs
# slurmdbd; squeue works while finished jobs stay listed, MinJobAge). A 2 s first status check
# instead of 40 s keeps the test short.
SLURM_FLAGS = [
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    # keep every job's SLURM log: the walltime test reads the resumed epoch in the retry's
    "--slurm-keep-successful-logs",
]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
RUN_ID = re.compile(r"SLURM run ID: (\S+)")


def study_snakefile(folder: Path) -> Path:
    """The repository's Snakefile, with rules/cluster.smk included if the Snakefile does not yet."""
    snakefile = REPO / "Snakefile"
    if "rules/cluster.smk" in snakefile.read_text():
        return snakefile
    wrapper = folder / "Snakefile"
    wrapper.write_text(f'include: "{snakefile}"\ninclude: "{REPO / "rules/cluster.smk"}"\n')
    return wrapper


def edited_profile(folder: Path, edits: dict[str, str] = EDITS) -> Path:
    """profiles/slurm copied to ``folder`` with its placeholders replaced as a user would."""
    text = PROFILE.read_text()
    for placeholder, value in edits.items():
        text = text.replace(placeholder, value)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(text)
    return folder


def write_config(path: Path, overrides: dict) -> list[str]:
    """Write ``overrides`` to ``path``; the --configfile arguments that merge it over config.yaml."""
    path.write_text(yaml.safe_dump(overrides))
    return ["--configfile", str(REPO / "config.yaml"), str(path)]


def snakemake(snakefile: Path, workdir: Path, *args: str, env=None, check: bool = True):
    """``python -m snakemake`` on ``snakefile`` in ``workdir``; stdout and stderr merged."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), *args]
    result = subprocess.run(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-6000:]}")
    return result


def slurm_jobs(cluster, run_id: str) -> list[dict[str, str]]:
    """The cluster's record of one Snakemake run's jobs (squeue keeps them for MinJobAge)."""
    out = cluster.command(
        "squeue", "--states=all", "-h", "--name", run_id, "-o", "%i|%k|%T|%l", "--sort=i"
    )
    rows = [line.split("|") for line in out.splitlines() if line.strip()]
    return [dict(zip(("id", "comment", "state", "limit"), row, strict=True)) for row in rows]


def path_without_slurm(folder: Path, path: str) -> str:
    """A PATH like ``path`` in which the SLURM client programs do not exist (a laptop, say)."""
    names = set(slurm_cluster.CLIENT_PROGRAMS)
    parts = []
    for index, directory in enumerate(path.split(os.pathsep)):
        source = Path(directory)
        if not source.is_dir() or not any((source / name).exists() for name in names):
            parts.append(directory)
            continue
        farm = folder / f"bin{index}"
        farm.mkdir(parents=True, exist_ok=True)
        for entry in source.iterdir():
            if entry.name not in names and not (farm / entry.name).exists():
                (farm / entry.name).symlink_to(entry)
        parts.append(str(farm))
    return os.pathsep.join(parts)
