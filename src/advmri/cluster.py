"""Running the study on SLURM: per-attempt wall time and the checks made before any job is submitted.

``rules/cluster.smk`` calls :func:`slurm_problem` from Snakemake's ``onstart`` hook when the run
uses the ``slurm`` executor (snakemake-executor-plugin-slurm), so a profile left with its
placeholders, a GPU job aimed at a partition without GPUs, or a machine without ``sbatch`` stops
the run with one line saying what to fix, before SLURM sees a job.

Resource keys are the plugin's own: ``slurm_account``, ``slurm_partition``, ``runtime`` (minutes),
``mem_mb``, ``cpus_per_task``, ``gpu`` (count), ``gpu_model``, ``gres``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from advmri.errors import AdvmriError

#: Where users edit the cluster settings (or their copy in ~/.config/snakemake/slurm/).
PROFILE = "profiles/slurm/config.yaml"

# A profile value the user still has to replace, e.g. "<your_account>".
_PLACEHOLDER = re.compile(r"^\s*<.*>\s*$")


class ClusterError(AdvmriError):
    """The SLURM profile or the cluster cannot run the study as configured."""


def runtime_for_attempt(minutes: int, attempt: int) -> int:
    """Wall-clock limit of a job's ``attempt``-th try: ``minutes * attempt``.

    Parameters
    ----------
    minutes : the configured limit of the first try (``resources.<rule>.runtime``), minutes >= 1.
    attempt : 1 for the first try, 2 for the first retry (``--retries``), ...

    Returns
    -------
    int
        minutes; grows linearly so a training job that SLURM killed at its time limit gets more
        time on the retry and resumes from its last checkpoint (doubling would quickly pass the
        partitions' MaxTime).
    """
    if minutes < 1 or attempt < 1:
        raise ClusterError(
            f"runtime: {minutes} min at attempt {attempt}; both must be at least 1 "
            "(resources.<rule>.runtime in the config)"
        )
    return int(minutes) * int(attempt)


def growing_runtime(minutes: int) -> Callable[..., int]:
    """A Snakemake ``runtime`` resource function: ``minutes`` on the first try, ``x attempt`` after.

    Use as ``resources: runtime=growing_runtime(config["resources"]["finetune"]["runtime"])``.
    Runs without retries (the local profiles) always see attempt 1, i.e. ``minutes``.
    """
    runtime_for_attempt(minutes, 1)  # reject a bad base value when the rule is defined

    def runtime(wildcards, attempt):  # noqa: ARG001 - Snakemake passes arguments by name
        return runtime_for_attempt(minutes, attempt)

    return runtime


def is_placeholder(value: object) -> bool:
    """True for a profile value still written as ``<something>`` (never a real account/partition)."""
    return isinstance(value, str) and bool(_PLACEHOLDER.match(value))


@dataclass(frozen=True)
class Partition:
    """One SLURM partition as ``sinfo`` reports it."""

    name: str
    has_gpu: bool
    default: bool
    cpus: int = 0  # CPUs of its largest node (0: not reported)
    memory_mb: int = 0  # memory of its largest node, MB (0: not reported)


def parse_partitions(sinfo_output: str) -> dict[str, Partition]:
    """Partitions from ``sinfo -h -a -o '%P|%G'`` output (one line per partition and node group).

    A trailing ``*`` marks the default partition; a partition has a GPU when any of its lines
    lists a ``gpu`` GRES (``gpu:4``, ``gpu:a100:2(S:0-1)``); ``(null)`` means no GRES.
    """
    partitions: dict[str, Partition] = {}
    for line in sinfo_output.splitlines():
        if "|" not in line:
            continue
        fields = [part.strip() for part in line.split("|")]
        name, gres = fields[0], fields[1]
        sizes = [int(f.rstrip("+")) if f.rstrip("+").isdigit() else 0 for f in fields[2:4]]
        cpus, memory_mb = (sizes + [0, 0])[:2]
        default = name.endswith("*")
        name = name.rstrip("*")
        if not name:
            continue
        gpu = any(item.strip().split(":")[0] == "gpu" for item in gres.split(","))
        known = partitions.get(name)
        partitions[name] = Partition(
            name=name,
            has_gpu=gpu or (known is not None and known.has_gpu),
            default=default or (known is not None and known.default),
            cpus=max(cpus, known.cpus if known else 0),
            memory_mb=max(memory_mb, known.memory_mb if known else 0),
        )
    return partitions


def read_partitions(sinfo: str = "sinfo") -> dict[str, Partition]:
    """The cluster's partitions, from ``sinfo`` (see :func:`parse_partitions`).

    Raises
    ------
    ClusterError
        when ``sinfo`` is missing or fails (not a SLURM login node, controller down).
    """
    path = shutil.which(sinfo)
    if path is None:
        raise ClusterError(
            f"slurm: {sinfo} is not on PATH; run the study from a SLURM login node "
            "(or load the cluster's slurm module first)"
        )
    result = subprocess.run(
        [path, "-h", "-a", "-N", "-o", "%P|%G|%c|%m"], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        reason = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise ClusterError(
            f"slurm: sinfo failed ({reason}); check that SLURM answers on this machine"
        )
    return parse_partitions(result.stdout)


def _gpus(resources: Mapping[str, object]) -> int:
    """GPUs a job asks for through the plugin's ``gpu``/``gpu_model`` keys or a ``gres`` string."""
    gpu = resources.get("gpu")
    if gpu not in (None, "", 0, "0"):
        try:
            return int(gpu)
        except (TypeError, ValueError):
            return 1
    if resources.get("gpu_model"):
        return 1  # the plugin then asks for one GPU of that model
    gres = str(resources.get("gres") or "")
    for item in gres.split(","):
        parts = item.strip().split(":")
        if parts[0] == "gpu":
            count = parts[-1].rstrip("TGM") if len(parts) > 1 else "1"
            return int(count) if count.isdigit() else 1
    return 0


def _setting_problem(key: str, value: object, rule: str, per_rule: bool = False) -> str | None:
    if per_rule:  # set-resources wins over any --default-resources: name the key that fixes it
        hint = f"set set-resources: {rule}: {key} in {PROFILE} (or pass --set-resources {rule}:{key}=NAME)"
    else:
        hint = f"set default-resources: {key} in {PROFILE} (or pass --default-resources {key}=NAME)"
    if value is None:
        meaning = "no account" if key == "slurm_account" else "the cluster's default partition"
        return f"slurm: {key} is not set (rule {rule}); {hint}; an empty '' means {meaning}"
    if is_placeholder(value):
        return f"slurm: {key} is still the placeholder {value} (rule {rule}); {hint}"
    return None


def slurm_problem(
    jobs: Iterable[tuple[str, Mapping[str, object]]],
    sbatch: str | None,
    partitions: Mapping[str, Partition] | None,
    set_resources: Mapping[str, Iterable[str]] | None = None,
) -> str | None:
    """The first reason the jobs cannot be submitted to SLURM as configured, or None.

    Parameters
    ----------
    jobs : (rule name, evaluated resources) of every job that will be submitted.
    sbatch : path of ``sbatch`` (``shutil.which("sbatch")``), None when it is not on PATH.
    partitions : the cluster's partitions (:func:`read_partitions`); None skips the checks that
        need them.
    set_resources : rule -> resource keys the profile's ``set-resources`` gives it; a placeholder
        there is named with that key (``--default-resources`` cannot override it).

    Returns
    -------
    str or None
        one line naming the problem, the rule, and what to edit. Checked in this order:
        ``sbatch`` on PATH; ``slurm_account`` and ``slurm_partition`` set and not placeholders
        (an explicit empty string ``''`` means no account / the cluster's default partition);
        the partition exists; a job asking for GPUs runs in a partition that has a GPU GRES.
    """
    if sbatch is None:
        return (
            "slurm: sbatch is not on PATH; run snakemake --profile slurm on a SLURM login node "
            "(or load the cluster's slurm module), or use --profile profiles/local"
        )
    for rule, resources in jobs:
        for key in ("slurm_account", "slurm_partition"):
            per_rule = key in (set_resources or {}).get(rule, ())
            problem = _setting_problem(key, resources.get(key), rule, per_rule)
            if problem:
                return problem
        if partitions is None:
            continue
        name = str(resources.get("slurm_partition") or "")
        if name and name not in partitions:
            listed = ", ".join(sorted(partitions)) or "none"
            return (
                f"slurm: partition '{name}' of rule {rule} does not exist (sinfo lists: {listed}); "
                f"fix slurm_partition in {PROFILE}"
            )
        too_big = size_problem(f"rule {rule}", resources, partitions, name)
        if too_big:
            return too_big
        gpus = _gpus(resources)
        if not gpus:
            continue
        if name:
            if not partitions[name].has_gpu:
                return (
                    f"slurm: rule {rule} asks for {gpus} GPU but partition '{name}' has none "
                    f"(no gpu GRES in sinfo); set set-resources: {rule}: slurm_partition to a GPU "
                    f"partition in {PROFILE}, or resources.{rule}.gpu: 0 in your config to use CPUs"
                )
        elif not any(partition.has_gpu for partition in partitions.values()):
            return (
                f"slurm: rule {rule} asks for {gpus} GPU but no partition of this cluster has one "
                f"(no gpu GRES in sinfo); set resources.{rule}.gpu: 0 in your config to use CPUs"
            )
    return None


def size_problem(
    what: str, resources: Mapping[str, object], partitions: Mapping[str, Partition], name: str
) -> str | None:
    """One line when a job (``what``: ``rule X`` or ``group Y``) asks for more CPUs or memory than
    the largest node of its partition has (SLURM would keep it pending for good), else None.

    CPUs are what the slurm plugin submits: ``cpus_per_task``, else the job's threads (``_cores``).
    """
    if not name:
        name = next((p.name for p in partitions.values() if p.default), "")
    partition = partitions.get(name)
    if partition is None:
        return None
    cpus = int(resources.get("cpus_per_task") or resources.get("_cores") or 1)
    mem = int(resources.get("mem_mb") or 0)
    if (partition.cpus and cpus > partition.cpus) or (
        partition.memory_mb and mem > partition.memory_mb
    ):
        fix = (
            f"lower cores: in {PROFILE} (a group runs cores / threads jobs at once) or --cores N"
            if what.startswith("group")
            else f"lower resources.{what.split()[-1]}.cpus / mem_mb in your config"
        )
        return (
            f"slurm: {what} asks for {cpus} CPUs and {mem} MB but partition '{name}' offers at "
            f"most {partition.cpus} CPUs and {partition.memory_mb} MB per node; {fix}, or use a "
            "larger partition"
        )
    return None
