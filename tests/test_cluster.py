"""advmri.cluster: per-attempt wall time and the checks that stop a misconfigured SLURM run."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from advmri.cli import main
from advmri.cluster import (
    ClusterError,
    Node,
    Partition,
    Request,
    group_fixes,
    growing_runtime,
    is_placeholder,
    parse_partitions,
    parse_time_limit,
    rule_fixes,
    runtime_for_attempt,
    sbatch_request,
    size_problem,
    slurm_problem,
    weights_problem,
)
from advmri.models.perceptual import imagenet_weights_file

from fabricate import REPO

# `sinfo -h -a -e -o '%P|%c|%m|%G|%l'` of a cluster with a default CPU partition, a GPU partition
# whose nodes come in two kinds, a partition whose GRES is something else, and one whose only node
# is FUTURE (sinfo -N would drop it; CPUs and memory not reported).
SINFO = """\
cpu*|32|128000|(null)|2-00:00:00
gpu|64|512000|gpu:a100:4(S:0-1)|1-00:00:00
gpu|16|64000+|gpu:v100:2|1-00:00:00
bigmem|8|1000000|tmpdisk:800|infinite
future|0|0|(null)|infinite
"""
PARTITIONS = parse_partitions(SINFO)
GOOD = {"slurm_account": "lab", "slurm_partition": "cpu", "mem_mb": 1000}


def test_runtime_grows_linearly_with_the_attempt():
    assert [runtime_for_attempt(90, attempt) for attempt in (1, 2, 3)] == [90, 180, 270]
    assert growing_runtime(1)(wildcards=None, attempt=2) == 2


def test_runtime_below_one_minute_is_refused_when_the_rule_is_defined():
    with pytest.raises(ClusterError, match="runtime: 0 min"):
        growing_runtime(0)


def test_sinfo_partitions_know_their_nodes_gpus_time_limit_and_the_default():
    assert PARTITIONS == {
        "cpu": Partition("cpu", default=True, nodes=(Node(32, 128000, 0),), max_minutes=2880),
        "gpu": Partition(
            "gpu", default=False, nodes=(Node(64, 512000, 4), Node(16, 64000, 2)), max_minutes=1440
        ),
        "bigmem": Partition("bigmem", default=False, nodes=(Node(8, 1000000, 0),)),
        "future": Partition("future", default=False, nodes=(Node(0, 0, 0),)),
    }
    assert [name for name, p in PARTITIONS.items() if p.has_gpu] == ["gpu"]


@pytest.mark.parametrize(
    ("limit", "minutes"),
    [
        ("infinite", None),
        ("UNLIMITED", None),
        ("30", 30),
        ("30:00", 30),
        ("30:01", 31),
        ("2:00:00", 120),
        ("1-00:00:00", 1440),
        ("2-12", 3600),
        ("1-01:30", 1530),
    ],
)
def test_sinfo_time_limits_become_minutes_rounded_up(limit, minutes):
    assert parse_time_limit(limit) == minutes


def test_a_time_limit_sinfo_never_prints_is_refused():
    with pytest.raises(ClusterError, match="sinfo time limit '1:2:3:4' is not D-HH:MM:SS"):
        parse_time_limit("1:2:3:4")


def test_a_sinfo_line_without_the_five_fields_is_refused():
    with pytest.raises(ClusterError, match=r"sinfo line 'cpu\*\|\(null\)' is not partition"):
        parse_partitions("cpu*|(null)\n")


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
    no_gpus = parse_partitions("cpu*|2|8000|(null)|infinite\n")
    job = dict(GOOD, slurm_partition="", gpu=1)
    problem = slurm_problem([("finetune", job)], "sbatch", no_gpus)
    assert problem.startswith("slurm: rule finetune asks for 1 GPU but no partition")


def test_unknown_partition_lists_the_existing_ones():
    job = dict(GOOD, slurm_partition="gpus")
    assert slurm_problem([("evaluate", job)], "sbatch", PARTITIONS) == (
        "slurm: partition 'gpus' of rule evaluate does not exist (sinfo lists: bigmem, cpu, future, "
        "gpu); fix slurm_partition in profiles/slurm/config.yaml"
    )


def test_every_problem_is_one_line():
    cases = [
        ([("r", {})], None, None),
        ([("r", {})], "sbatch", None),
        ([("r", dict(GOOD, slurm_partition="x"))], "sbatch", PARTITIONS),
        ([("r", dict(GOOD, gpu=1))], "sbatch", PARTITIONS),
        ([("r", dict(GOOD, gpu=1, slurm_partition="gpu", runtime=10**5))], "sbatch", PARTITIONS),
        ([("r", dict(GOOD, _cores=100, mem_mb=10**6))], "sbatch", PARTITIONS),
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


def test_the_demo_group_on_two_cpu_nodes_is_named_with_what_the_partition_offers():
    # profiles/slurm `cores: 8` -> the grouped evaluation job asks for 8 CPUs and 8 x 2000 MB
    small = parse_partitions("main*|2|8000|gpu:1|infinite\n")
    group = {"slurm_partition": "main", "cpus_per_task": 8, "mem_mb": 16000, "_cores": 8}
    what = "group evaluations (24 jobs)"
    fixes = group_fixes("evaluations", "evaluate")
    assert size_problem(what, sbatch_request(group), small["main"], fixes) == (
        "slurm: group evaluations (24 jobs) asks for 8 CPUs and 16000 MB but partition 'main' "
        "offers at most 2 CPUs and 8000 MB per node; lower cores: in profiles/slurm/config.yaml "
        "(a group job runs cores / threads of its jobs at once), or use a larger partition"
    )


def test_a_rule_bigger_than_the_largest_node_stops_the_check_naming_its_config_key():
    small = parse_partitions("main*|1|8000|(null)|infinite\n")
    job = dict(GOOD, slurm_partition="main", cpus_per_task=1, mem_mb=9000)
    assert slurm_problem([("synthesize", job)], "sbatch", small) == (
        "slurm: rule synthesize asks for 9000 MB but partition 'main' offers at most 8000 MB per "
        "node; lower resources.synthesize.mem_mb, or use a larger partition"
    )
    two_cpus = dict(job, cpus_per_task=2, mem_mb=1000)
    assert slurm_problem([("synthesize", two_cpus)], "sbatch", small).startswith(
        "slurm: rule synthesize asks for 2 CPUs but partition 'main' offers at most 1 CPU per node"
    )


def test_a_rule_sharing_another_rules_resources_names_that_section():
    small = parse_partitions("main*|1|8000|(null)|infinite\n")
    job = dict(GOOD, slurm_partition="", cpus_per_task=4)
    problem = slurm_problem(
        [("evaluate_reference", job)], "sbatch", small, sections={"evaluate_reference": "evaluate"}
    )
    assert problem.startswith("slurm: rule evaluate_reference asks for 4 CPUs but partition 'main'")
    assert "lower resources.evaluate.cpus," in problem


def test_a_runtime_over_maxtime_at_the_last_retry_is_refused():
    job = dict(GOOD, slurm_partition="gpu", gpu=1, _cores=4, mem_mb=16000, runtime=600)
    assert slurm_problem([("finetune", job)], "sbatch", PARTITIONS) is None  # 600 <= 1440
    problem = slurm_problem(
        [("finetune", job)], "sbatch", PARTITIONS, last_attempts={"finetune": (3, 1800)}
    )
    assert problem == (
        "slurm: rule finetune asks for 1800 min at attempt 3 (retries: in "
        "profiles/slurm/config.yaml) but partition 'gpu' offers a MaxTime of 1440 min; lower "
        "resources.finetune.runtime, or use a larger partition"
    )


def test_infinite_maxtime_and_unreported_nodes_are_not_compared():
    huge = dict(GOOD, _cores=512, mem_mb=10**7, runtime=10**6)
    assert (
        slurm_problem([("split", dict(huge, slurm_partition="future"))], "sbatch", PARTITIONS)
        is None
    )
    bigmem = dict(GOOD, slurm_partition="bigmem", mem_mb=900000, runtime=10**6)
    assert slurm_problem([("split", bigmem)], "sbatch", PARTITIONS) is None


def test_more_gpus_than_any_node_has_are_refused_in_the_plural():
    job = dict(GOOD, slurm_partition="gpu", gpu=8)
    problem = slurm_problem([("finetune", job)], "sbatch", PARTITIONS)
    assert problem == (
        "slurm: rule finetune asks for 8 GPUs but partition 'gpu' offers at most 4 GPUs per node; "
        "lower resources.finetune.gpu, or use a larger partition"
    )


def test_a_job_that_fits_each_limit_on_some_node_but_no_node_at_all_is_refused():
    mixed = parse_partitions("p|64|8000|(null)|infinite\np|4|8000|gpu:1|infinite\n")["p"]
    request = Request(cpus=8, memory_mb=1000, gpus=1, minutes=10)
    assert size_problem("rule finetune", request, mixed, rule_fixes("finetune")) == (
        "slurm: rule finetune asks for 8 CPUs and 1000 MB and 1 GPU on one node but partition "
        "'p' offers no node with all of them (its nodes: 64 CPUs/8000 MB/0 GPUs, "
        "4 CPUs/8000 MB/1 GPU); lower resources.finetune.cpus and resources.finetune.mem_mb and "
        "resources.finetune.gpu, or use a larger partition"
    )


@pytest.mark.parametrize(
    ("resources", "cpus", "memory_mb"),
    [
        ({"_cores": 4, "mem_mb": 1000}, 4, 1000),  # threads
        ({"_cores": 4, "cpus_per_task": 2, "mem_mb": 1000}, 2, 1000),
        ({"_cores": 4, "cpus_per_task": -1}, 1, 0),  # no --cpus-per-task: SLURM's 1
        ({"_cores": 1, "gpu": 2, "cpus_per_gpu": 3}, 6, 0),
        ({"_cores": 2, "mem_mb_per_cpu": 500, "mem_mb": 99999}, 2, 1000),
    ],
)
def test_the_request_is_what_the_slurm_plugin_submits(resources, cpus, memory_mb):
    request = sbatch_request(resources)
    assert (request.cpus, request.memory_mb) == (cpus, memory_mb)


def test_missing_imagenet_weights_stop_the_check_naming_fetch_weights(tmp_path):
    cache = tmp_path / "hub/checkpoints/vgg19-dcbb9e9d.pth"
    problem = weights_problem("imagenet", True, cache)
    assert problem == (
        f"slurm: perceptual.weights: imagenet but {cache} does not exist, and compute nodes are "
        "often offline (every fine-tune would fail on its own); run advmri fetch-weights on this "
        "login node first (same TORCH_HOME as the jobs), or set perceptual.weights: file with "
        "perceptual.weights_path"
    )
    assert weights_problem("random", True, cache) is None
    assert weights_problem("imagenet", False, cache) is None  # no fine-tune with W_per > 0 planned
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"weights")
    assert weights_problem("imagenet", True, cache) is None


def test_fetch_weights_downloads_once_into_the_cache_the_check_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    downloads = []

    def download(url, dst, hash_prefix=None, progress=True):  # stands in for the network only
        downloads.append((url, hash_prefix))
        Path(dst).write_bytes(b"vgg19 weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    cache = tmp_path / "torch/hub/checkpoints/vgg19-dcbb9e9d.pth"
    assert weights_problem("imagenet", True, imagenet_weights_file()) is not None
    assert main(["fetch-weights"]) == 0
    assert cache.read_bytes() == b"vgg19 weights"
    assert downloads == [("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d")]
    assert capsys.readouterr().err == (
        f"advmri fetch-weights: VGG19 ImageNet weights downloaded to {cache}\n"
    )
    assert main(["fetch-weights"]) == 0
    assert len(downloads) == 1
    assert capsys.readouterr().err == (
        f"advmri fetch-weights: VGG19 ImageNet weights already in the cache: {cache}\n"
    )
    assert weights_problem("imagenet", True, imagenet_weights_file()) is None


def test_fetch_weights_refuses_a_mirror_file_that_is_not_torchvisions(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    mirror = tmp_path / "mirror" / "vgg19-dcbb9e9d.pth"
    mirror.parent.mkdir()
    mirror.write_bytes(b"not the VGG19 file")
    assert main(["fetch-weights", "--url", mirror.as_uri()]) == 2
    error = capsys.readouterr().err
    cache = tmp_path / "torch/hub/checkpoints/vgg19-dcbb9e9d.pth"
    assert error.startswith(
        f"advmri fetch-weights: VGG19 ImageNet weights: downloading {mirror.as_uri()} to {cache} "
        "failed (invalid hash value"
    )
    assert error.count("\n") == 1
    assert not [path for path in cache.parent.iterdir()], "a partial or wrong file was kept"
