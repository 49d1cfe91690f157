"""Running the study on SLURM: per-attempt wall time and the checks made before any job is submitted.

``rules/cluster.smk`` calls :func:`slurm_problem`, :func:`size_problem` (for group jobs) and
:func:`weights_problem` from Snakemake's ``onstart`` hook when the run uses the ``slurm`` executor
(snakemake-executor-plugin-slurm), so a profile left with its placeholders, a GPU job aimed at a
partition without GPUs, a rule or group job larger than the largest node or the MaxTime of its
partition (SLURM would keep it pending for good), ImageNet weights missing from the jobs' cache,
or a machine without ``sbatch`` stops the run with one line saying what to fix, before SLURM sees
a job.

Resource keys are the plugin's own: ``slurm_account``, ``slurm_partition``, ``runtime`` (minutes),
``mem_mb``, ``cpus_per_task``, ``gpu`` (count), ``gpu_model``, ``gres``.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

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


#: The one ``sinfo`` call the check reads: every partition (``-a``, hidden ones too), one line per
#: kind of node (``-e``: nodes of identical CPUs, memory and GRES) with its partition's MaxTime.
#: Not ``-N``: that drops partitions whose nodes are all FUTURE or unreachable.
SINFO_ARGS = ("-h", "-a", "-e", "-o", "%P|%c|%m|%G|%l")


@dataclass(frozen=True)
class Node:
    """One kind of node of a partition, as ``sinfo -e`` reports it (0: not reported)."""

    cpus: int
    memory_mb: int
    gpus: int


@dataclass(frozen=True)
class Partition:
    """One SLURM partition as ``sinfo`` reports it.

    ``nodes`` holds one :class:`Node` per kind of node; ``max_minutes`` is its MaxTime in
    minutes, None when it is ``infinite`` (or not reported).
    """

    name: str
    default: bool
    nodes: tuple[Node, ...] = ()
    max_minutes: int | None = None

    @property
    def has_gpu(self) -> bool:
        """True when a node of the partition lists a ``gpu`` GRES."""
        return any(node.gpus for node in self.nodes)


def parse_time_limit(text: str) -> int | None:
    """Minutes of a SLURM time limit as ``sinfo %l`` prints it, rounded up; None when unlimited.

    Accepts ``infinite``/``UNLIMITED``/``n/a`` (None), ``MM``, ``MM:SS``, ``HH:MM:SS``,
    ``D-HH``, ``D-HH:MM`` and ``D-HH:MM:SS``.

    Raises
    ------
    ClusterError
        for anything else.
    """
    text = text.strip()
    if text.lower() in {"infinite", "unlimited", "n/a", "none", ""}:
        return None
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not (days == "" or days.isdigit()) or not all(p.isdigit() for p in parts) or len(parts) > 3:
        raise ClusterError(f"slurm: sinfo time limit {text!r} is not D-HH:MM:SS")
    numbers = [int(p) for p in parts]
    if days:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = (numbers + [0, 0])[:3]
        hours += 24 * int(days)
    elif len(numbers) == 3:
        hours, minutes, seconds = numbers
    else:  # MM or MM:SS
        hours, (minutes, seconds) = 0, (numbers + [0])[:2]
    return hours * 60 + minutes + math.ceil(seconds / 60)


def _node_gpus(gres: str) -> int:
    """GPUs of one node from its GRES (``gpu:4``, ``gpu:a100:2(S:0-1),gpu:v100:1``, ``(null)``)."""
    total = 0
    for item in re.sub(r"\([^)]*\)", "", gres).split(","):
        parts = item.strip().split(":")
        if parts[0] != "gpu":
            continue
        count = parts[-1] if len(parts) > 1 else "1"
        total += int(count) if count.isdigit() else 1
    return total


def _count(field: str) -> int:
    """``sinfo``'s CPU or memory figure: ``64``, ``64+`` (at least), anything else 0."""
    field = field.strip().rstrip("+")
    return int(field) if field.isdigit() else 0


def parse_partitions(sinfo_output: str) -> dict[str, Partition]:
    """Partitions from the output of ``sinfo`` with :data:`SINFO_ARGS` (``%P|%c|%m|%G|%l``).

    One line per partition and kind of node; a trailing ``*`` marks the default partition;
    ``(null)`` GRES means no GPU. A partition whose nodes are all FUTURE or unknown is kept
    (CPUs and memory 0: not reported, so not compared).

    Raises
    ------
    ClusterError
        for a line that does not have the five fields.
    """
    partitions: dict[str, Partition] = {}
    for line in sinfo_output.splitlines():
        if not line.strip():
            continue
        fields = [part.strip() for part in line.split("|")]
        if len(fields) != 5:
            raise ClusterError(
                f"slurm: sinfo line {line.strip()!r} is not partition|CPUs|memory|GRES|MaxTime"
            )
        name, cpus, memory, gres, limit = fields
        default = name.endswith("*")
        name = name.rstrip("*")
        if not name:
            continue
        node = Node(cpus=_count(cpus), memory_mb=_count(memory), gpus=_node_gpus(gres))
        known = partitions.get(name, Partition(name=name, default=False))
        max_minutes = parse_time_limit(limit)
        partitions[name] = Partition(
            name=name,
            default=default or known.default,
            nodes=(*known.nodes, node) if node not in known.nodes else known.nodes,
            max_minutes=max_minutes if known.nodes == () else known.max_minutes,
        )
    return partitions


def read_partitions(sinfo: str = "sinfo") -> dict[str, Partition]:
    """The cluster's partitions, from one ``sinfo`` call (see :func:`parse_partitions`).

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
    result = subprocess.run([path, *SINFO_ARGS], capture_output=True, text=True, timeout=60)
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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass(frozen=True)
class Request:
    """What one sbatch submission asks for, as snakemake-executor-plugin-slurm writes it.

    ``cpus``: ``--cpus-per-task`` (the ``cpus_per_task`` resource, else ``cpus_per_gpu`` x GPUs,
    else the job's threads); ``memory_mb``: ``--mem`` (or ``--mem-per-cpu`` x CPUs); ``gpus``:
    ``--gpus``/``--gres``; ``minutes``: ``-t`` of try number ``attempt`` (the last try, when
    ``retries`` make the runtime grow).
    """

    cpus: int
    memory_mb: int
    gpus: int
    minutes: int
    attempt: int = 1


def sbatch_request(
    resources: Mapping[str, object], attempt: int = 1, runtime: int | None = None
) -> Request:
    """The :class:`Request` of a job or group job from its evaluated resources.

    ``runtime`` (minutes) replaces ``resources["runtime"]`` when given: the runtime of try
    number ``attempt``.
    """
    gpus = _gpus(resources)
    cpus_per_task = resources.get("cpus_per_task")
    if cpus_per_task not in (None, "", 0):
        cpus = max(1, int(cpus_per_task))  # below 0: no --cpus-per-task, SLURM gives 1
    elif gpus and resources.get("cpus_per_gpu"):
        cpus = max(1, int(resources["cpus_per_gpu"])) * gpus
    else:
        cpus = int(resources.get("_cores") or 1)
    if resources.get("mem_mb_per_cpu"):
        memory_mb = int(resources["mem_mb_per_cpu"]) * cpus
    else:
        memory_mb = int(resources.get("mem_mb") or 0)
    minutes = int(runtime if runtime is not None else resources.get("runtime") or 0)
    return Request(cpus=cpus, memory_mb=memory_mb, gpus=gpus, minutes=minutes, attempt=attempt)


def rule_fixes(section: str) -> dict[str, str]:
    """Config keys that shrink a rule's request, per quantity (``resources.<section>``)."""
    return {
        "cpus": f"resources.{section}.cpus",
        "memory": f"resources.{section}.mem_mb",
        "gpus": f"resources.{section}.gpu",
        "time": f"resources.{section}.runtime",
    }


def group_fixes(group: str, section: str) -> dict[str, str]:
    """Keys that shrink a group job as Snakemake sizes it: the jobs it runs at once add up.

    (A single job too large for the node is reported for its rule first, with
    :func:`rule_fixes`.)
    """
    at_once = f"cores: in {PROFILE} (a group job runs cores / threads of its jobs at once)"
    return {
        "cpus": at_once,
        "memory": at_once,
        "gpus": at_once,
        "time": f"group-components: {group}: in {PROFILE} (jobs that do not fit cores: run one "
        f"after another) or resources.{section}.runtime",
    }


def size_problem(
    what: str, request: Request, partition: Partition, fixes: Mapping[str, str]
) -> str | None:
    """One line when a submission cannot start in ``partition``, else None.

    SLURM keeps such a job pending for good (reason ``PartitionConfig`` or
    ``PartitionTimeLimit``) and Snakemake waits without a word.

    Parameters
    ----------
    what : ``rule finetune`` or ``group evaluations (24 jobs)``.
    request : what its sbatch asks for (:func:`sbatch_request`).
    partition : its partition; node kinds with 0 CPUs (not reported) are not compared.
    fixes : quantity (``cpus``, ``memory``, ``gpus``, ``time``) -> the key that lowers it
        (:func:`rule_fixes`, :func:`group_fixes`).

    Returns
    -------
    str or None
        ``slurm: <what> asks for <request> but partition '<name>' offers at most <largest
        node, MaxTime>; lower <key>, or use a larger partition``. CPUs, memory and GPUs are
        compared with the largest node (one job runs on one node), the runtime with MaxTime.
    """
    asks: list[str] = []
    offers: list[str] = []
    keys: list[str] = []
    nodes = [node for node in partition.nodes if node.cpus > 0]
    if nodes:
        wanted = {
            "cpus": (request.cpus, max(n.cpus for n in nodes), lambda k: _plural(k, "CPU")),
            "memory": (request.memory_mb, max(n.memory_mb for n in nodes), lambda k: f"{k} MB"),
            "gpus": (request.gpus, max(n.gpus for n in nodes), lambda k: _plural(k, "GPU")),
        }
        over = [name for name, (asked, largest, _) in wanted.items() if asked > largest]
        fits_one = any(
            request.cpus <= n.cpus and request.memory_mb <= n.memory_mb and request.gpus <= n.gpus
            for n in nodes
        )
        if over:
            asks += [wanted[name][2](wanted[name][0]) for name in over]
            node_text = " and ".join(wanted[name][2](wanted[name][1]) for name in over)
            offers.append(f"at most {node_text} per node")
            keys += [fixes[name] for name in over]
        elif not fits_one:
            asked = [name for name in wanted if wanted[name][0] > 0]
            asks.append(
                " and ".join(wanted[name][2](wanted[name][0]) for name in asked) + " on one node"
            )
            attribute = {"cpus": "cpus", "memory": "memory_mb", "gpus": "gpus"}
            kinds = ", ".join(
                "/".join(wanted[name][2](getattr(n, attribute[name])) for name in asked)
                for n in nodes
            )
            offers.append(f"no node with all of them (its nodes: {kinds})")
            keys += [fixes[name] for name in asked]
    if partition.max_minutes is not None and request.minutes > partition.max_minutes:
        at = f" at attempt {request.attempt} (retries: in {PROFILE})" if request.attempt > 1 else ""
        asks.append(f"{request.minutes} min{at}")
        offers.append(f"a MaxTime of {partition.max_minutes} min")
        keys.append(fixes["time"])
    if not asks:
        return None
    return (
        f"slurm: {what} asks for {' and '.join(asks)} but partition '{partition.name}' offers "
        f"{' and '.join(offers)}; lower {' and '.join(dict.fromkeys(keys))}, or use a larger "
        "partition"
    )


def partition_of(name: str, partitions: Mapping[str, Partition]) -> Partition | None:
    """The partition a job named ``name`` goes to (``''``: the cluster's default), if known."""
    if not name:
        return next((p for p in partitions.values() if p.default), None)
    return partitions.get(name)


def slurm_problem(
    jobs: Iterable[tuple[str, Mapping[str, object]]],
    sbatch: str | None,
    partitions: Mapping[str, Partition] | None,
    set_resources: Mapping[str, Iterable[str]] | None = None,
    last_attempts: Mapping[str, tuple[int, int]] | None = None,
    sections: Mapping[str, str] | None = None,
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
    last_attempts : rule -> (number of its last try, its runtime then, minutes), when
        ``retries`` make the runtime grow; the time limit is checked against that try.
    sections : rule -> its section of the config's ``resources`` when not named like the rule
        (``evaluate_reference`` -> ``evaluate``).

    Returns
    -------
    str or None
        one line naming the problem, the rule, and what to edit. Checked in this order:
        ``sbatch`` on PATH; ``slurm_account`` and ``slurm_partition`` set and not placeholders
        (an explicit empty string ``''`` means no account / the cluster's default partition);
        the partition exists; a job asking for GPUs runs in a partition that has a GPU GRES;
        the job fits the largest node and the MaxTime of its partition (:func:`size_problem`).
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
        section = (sections or {}).get(rule, rule)
        gpus = _gpus(resources)
        if gpus and name and not partitions[name].has_gpu:
            return (
                f"slurm: rule {rule} asks for {_plural(gpus, 'GPU')} but partition '{name}' has "
                f"none (no gpu GRES in sinfo); set set-resources: {rule}: slurm_partition to a GPU "
                f"partition in {PROFILE}, or resources.{section}.gpu: 0 in your config to use CPUs"
            )
        if gpus and not name and not any(p.has_gpu for p in partitions.values()):
            return (
                f"slurm: rule {rule} asks for {_plural(gpus, 'GPU')} but no partition of this "
                f"cluster has one (no gpu GRES in sinfo); set resources.{section}.gpu: 0 in your "
                "config to use CPUs"
            )
        partition = partition_of(name, partitions)
        if partition is None:
            continue
        attempt, runtime = (last_attempts or {}).get(rule, (1, None))
        request = sbatch_request(resources, attempt, runtime)
        problem = size_problem(f"rule {rule}", request, partition, rule_fixes(section))
        if problem:
            return problem
    return None


def weights_problem(weights: str, needed: bool, cache_file: Path) -> str | None:
    """One line when the jobs will need the VGG19 ImageNet weights and the cache lacks them.

    Parameters
    ----------
    weights : ``perceptual.weights`` of the config (only ``imagenet`` reads the cache).
    needed : True when a planned job builds the perceptual loss (a fine-tune with W_per > 0).
    cache_file : :func:`advmri.models.perceptual.imagenet_weights_file` as the login node
        resolves it; the jobs resolve the same path (sbatch exports ``TORCH_HOME``).
    """
    if weights != "imagenet" or not needed:
        return None
    if cache_file.is_file() and cache_file.stat().st_size > 0:
        return None
    return (
        f"slurm: perceptual.weights: imagenet but {cache_file} does not exist, and compute nodes "
        "are often offline (every fine-tune would fail on its own); run advmri fetch-weights on "
        "this login node first (same TORCH_HOME as the jobs), or set perceptual.weights: file "
        "with perceptual.weights_path"
    )
