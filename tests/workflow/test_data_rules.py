"""The data stage as users run it: snakemake on the repository's Snakefile, in a temporary folder."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from fabricate import DATA_OUTPUTS, REPO, TINY_STUDY

CONTRACT = DATA_OUTPUTS


def snakemake(workdir, *args, check=True):
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    return subprocess.run(
        [*command, "--cores", "2", *args], capture_output=True, text=True, check=check, cwd=workdir
    )


@pytest.mark.slow
def test_tiny_study_produces_every_data_contract_file(tmp_path):
    overrides = tmp_path / "tiny.yaml"
    overrides.write_text(yaml.safe_dump(TINY_STUDY))
    config = ["--configfile", str(REPO / "config.yaml"), str(overrides)]
    snakemake(tmp_path, *CONTRACT, *config)
    for path in CONTRACT:
        assert (tmp_path / path).stat().st_size > 0, path
    samples = pd.read_csv(tmp_path / "results/dataset/samples.csv")
    assert len(samples) == 10 and np.load(tmp_path / "results/dataset/hq.npy").shape == (
        10,
        208,
        176,
    )
    split = pd.read_csv(tmp_path / "results/split/split.csv")
    assert sorted(split["subject"]) == sorted(samples["subject"].unique())
    assert (tmp_path / "results/logs/synthesize.log").read_text().count(
        "synthesised 10 samples"
    ) == 1
    assert (tmp_path / "results/benchmarks/synthesize.tsv").exists()
    # an unchanged config plans nothing
    assert "Nothing to be done" in snakemake(tmp_path, *CONTRACT, "-n", *config).stdout


def test_bad_config_stops_before_any_job_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("split:\n  test_fraction: 1.5\n")
    result = snakemake(
        tmp_path, "--configfile", str(REPO / "config.yaml"), str(bad), "-n", check=False
    )
    assert result.returncode != 0
    assert "config: split.test_fraction = 1.5 must be below 1" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_oasis1_override_without_a_root_stops_before_any_job(tmp_path):
    oasis1 = REPO / "config" / "oasis1.yaml"
    result = snakemake(
        tmp_path, "--configfile", str(REPO / "config.yaml"), str(oasis1), "-n", check=False
    )
    assert result.returncode != 0
    assert "config: data.source is 'oasis1' but data.oasis1.root is empty" in (
        result.stdout + result.stderr
    )
    assert not (tmp_path / "results").exists()


def test_workflow_passes_snakemake_lint():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--lint",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(REPO),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr
