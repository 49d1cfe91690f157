"""advmri.cluster: per-attempt wall time and the checks that stop a misconfigured SLURM run."""

import subprocess
import sys

import pytest

from advmri.cluster import (
    ClusterError,
    Partition,
    growing_runtime,
    is_placeholder,
    parse_partitions,
    runtime_for_attempt,
    size_problem,
    slurm_problem,
)

from fabricate import REPO

# `sinfo -h -a -o '%P|%G'` of a cluster with a default CPU partition, a GPU partition whose nodes
# come in two groups, and a partition whose GRES is something else.
SINFO = """\
cpu*|(null)
gpu|gpu:a100:4(S:0-1)
gpu|gpu:v100:2
bigmem|tmpdisk:800
"""
PARTITIONS = parse_partitions(SINFO)
GOOD = {"slurm_account": "lab", "slurm_partition": "cpu", "mem_mb": 1000}


def test_runtime_grows_linearly_with_the_attempt():
    assert [runtime_for_attempt(90, attempt) for attempt in (1, 2, 3)] == [90, 180, 270]
    assert growing_runtime(1)(wildcards=None, attempt=2) == 2


def test_runtime_below_one_minute_is_refused_when_the_rule_is_defined():
    with pytest.raises(ClusterError, match="runtime: 0 min"):
        growing_runtime(0)


def test_sinfo_partitions_know_their_gpus_and_the_default():
    assert PARTITIONS == {
        "cpu": Partition("cpu", has_gpu=False, default=True),
        "gpu": Partition("gpu", has_gpu=True, default=False),
        "bigmem": Partition("bigmem", has_gpu=False, default=False),
    }


def test_only_angle_bracket_values_are_placeholders():
    assert is_placeholder("<your_account>") and is_placeholder(" <x> ")
    assert not is_placeholder("lab_account") and not is_placeholder("") and not is_placeholder(3)


def test_a_complete_configuration_has_no_problem():
    gpu_job = dict(GOOD, slurm_partition="gpu", gpu=1)
    assert (
        slurm_problem([("split", GOOD), ("finetune", gpu_job)], "/usr/bin/sbatch", PARTITIONS)
        is None
    )


def test_missing_sbatch_comes_first():
    problem = slurm_problem([("split", {})], None, None)
    assert problem.startswith("slurm: sbatch is not on PATH")


@pytest.mark.parametrize("key", ["slurm_account", "slurm_partition"])
def test_unset_and_placeholder_account_or_partition_are_named(key):
    unset = {name: value for name, value in GOOD.items() if name != key}
    assert slurm_problem([("split", unset)], "sbatch", None).startswith(
        f"slurm: {key} is not set (rule split); set default-resources: {key} in "
        "profiles/slurm/config.yaml"
    )
    placeholder = dict(GOOD, **{key: "<fill me>"})
    assert slurm_problem([("split", placeholder)], "sbatch", None).startswith(
        f"slurm: {key} is still the placeholder <fill me> (rule split)"
    )


def test_explicit_empty_account_means_none_and_passes():
    assert slurm_problem([("split", dict(GOOD, slurm_account=""))], "sbatch", PARTITIONS) is None


@pytest.mark.parametrize(
    "gpu_request", [{"gpu": 2}, {"gpu": "1"}, {"gpu_model": "a100"}, {"gres": "gpu:a100:1"}]
)
def test_gpu_request_on_a_cpu_partition_is_refused_with_the_fix(gpu_request):
    job = dict(GOOD, **gpu_request)
    problem = slurm_problem([("finetune", job)], "sbatch", PARTITIONS)
    assert problem.startswith("slurm: rule finetune asks for ")
    assert "but partition 'cpu' has none" in problem
    assert "resources.finetune.gpu: 0" in problem


def test_zero_gpus_and_other_gres_are_not_gpu_requests():
    jobs = [
        ("a", dict(GOOD, gpu=0)),
        ("b", dict(GOOD, gres="tmpdisk:10", slurm_partition="bigmem")),
    ]
    assert slurm_problem(jobs, "sbatch", PARTITIONS) is None


def test_gpu_request_on_a_cluster_without_any_gpu_is_refused():
    no_gpus = parse_partitions("cpu*|(null)\n")
    job = dict(GOOD, slurm_partition="", gpu=1)
    problem = slurm_problem([("finetune", job)], "sbatch", no_gpus)
    assert problem.startswith("slurm: rule finetune asks for 1 GPU but no partition")


def test_unknown_partition_lists_the_existing_ones():
    job = dict(GOOD, slurm_partition="gpus")
    assert slurm_problem([("evaluate", job)], "sbatch", PARTITIONS) == (
        "slurm: partition 'gpus' of rule evaluate does not exist (sinfo lists: bigmem, cpu, gpu); "
        "fix slurm_partition in profiles/slurm/config.yaml"
    )


def test_every_problem_is_one_line():
    cases = [
        ([("r", {})], None, None),
        ([("r", {})], "sbatch", None),
        ([("r", dict(GOOD, slurm_partition="x"))], "sbatch", PARTITIONS),
        ([("r", dict(GOOD, gpu=1))], "sbatch", PARTITIONS),
    ]
    for jobs, sbatch, partitions in cases:
        assert "\n" not in slurm_problem(jobs, sbatch, partitions)


def test_slurm_profile_plans_jobs_with_its_resources(tmp_path):
    """profiles/slurm parses (executor, default- and set-resources) and plans without a cluster."""
    command = [sys.executable, "-m", "snakemake", "--profile", str(REPO / "profiles/slurm")]
    command += ["-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n", "results/split/split.csv"]
    command += ["--configfile", str(REPO / "config.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    synthesize = output[output.index("rule synthesize:") :].split("\n\n")[0]
    # config resources.synthesize: cpus 2, mem_mb 16000, runtime 120; the profile's placeholders
    for setting in ("slurm_account=<your_account>", "slurm_partition=<cpu_partition>"):
        assert setting in synthesize, synthesize
    for setting in ("cpus_per_task=2", "mem_mb=16000", "runtime=120"):
        assert setting in synthesize, synthesize


def test_placeholder_given_by_set_resources_names_the_set_resources_key():
    job = dict(GOOD, slurm_partition="<gpu_partition>")
    problem = slurm_problem([("finetune", job)], "sbatch", None, {"finetune": {"slurm_partition"}})
    assert problem.startswith("slurm: slurm_partition is still the placeholder <gpu_partition>")
    assert "set set-resources: finetune: slurm_partition in profiles/slurm/config.yaml" in problem
    assert "--set-resources finetune:slurm_partition=NAME" in problem
    assert "--default-resources" not in problem


def test_a_group_bigger_than_the_largest_node_is_named_with_what_the_partition_offers():
    small = parse_partitions("main*|gpu:1|2|8000\n")
    group = {"slurm_partition": "main", "cpus_per_task": 8, "mem_mb": 16000, "_cores": 8}
    assert size_problem("group evaluations (24 jobs)", group, small, "main") == (
        "slurm: group evaluations (24 jobs) asks for 8 CPUs and 16000 MB but partition 'main' "
        "offers at most 2 CPUs and 8000 MB per node; lower cores: in profiles/slurm/config.yaml "
        "(a group runs cores / threads jobs at once) or --cores N, or use a larger partition"
    )


def test_a_rule_bigger_than_the_largest_node_stops_the_check():
    small = parse_partitions("main*|(null)|2|8000\n")
    job = dict(GOOD, slurm_partition="main", cpus_per_task=1, mem_mb=9000)
    problem = slurm_problem([("synthesize", job)], "sbatch", small)
    assert problem.startswith("slurm: rule synthesize asks for 1 CPUs and 9000 MB but partition")
    assert "resources.synthesize.cpus / mem_mb" in problem
