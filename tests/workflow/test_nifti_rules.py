"""The nifti source through Snakemake: a fabricated FSL FAST cohort (the MNI152 maps at 2 mm, LAS)."""

import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from fabricate import DATA_OUTPUTS, REPO, write_fast_cohort

#: Five subjects, two of them scanned twice: 7 sessions.
COHORT = {"sub-01": 2, "sub-02": 1, "sub-03": 2, "sub-04": 1, "sub-05": 1}


def snakemake(workdir, *args, check=True):
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    return subprocess.run(
        [*command, "--cores", "2", *args], capture_output=True, text=True, check=check, cwd=workdir
    )


def study_files(tmp_path, manifest):
    """config.yaml, config/nifti.yaml and a small study naming ``manifest``, as --configfile args."""
    study = tmp_path / "my_study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "data": {"nifti": {"manifest": str(manifest), "slice_positions": [0.5, 0.62]}},
                "synthesis": {"samples_per_subject": 2, "preview_samples": 2},
                "split": {"test_fraction": 0.2, "val_fraction": 0.25},
            }
        )
    )
    return ["--configfile", str(REPO / "config.yaml"), str(REPO / "config/nifti.yaml"), str(study)]


@pytest.mark.slow
def test_a_fast_cohort_is_synthesised_and_split_keeping_each_subjects_sessions_together(tmp_path):
    manifest = write_fast_cohort(tmp_path / "cohort", COHORT)
    config = study_files(tmp_path, manifest)
    snakemake(tmp_path, *DATA_OUTPUTS, *config)
    samples = pd.read_csv(tmp_path / "results/dataset/samples.csv")
    # 7 sessions x 2 slice positions x 2 samples
    assert len(samples) == 28 and np.load(tmp_path / "results/dataset/hq.npy").shape == (
        28,
        208,
        176,
    )
    assert sorted(samples["session"].unique())[:4] == [
        "sub-01_ses-1_z50",
        "sub-01_ses-1_z62",
        "sub-01_ses-2_z50",
        "sub-01_ses-2_z62",
    ]
    split = pd.read_csv(tmp_path / "results/split/split.csv")
    assert sorted(split["subject"]) == sorted(COHORT)  # one row per subject: its sessions follow it
    assert set(split["split"]) == {"train", "val", "test"}
    log = (tmp_path / "results/logs/synthesize.log").read_text()
    assert "synthesised 28 samples of 5 subjects (nifti)" in log
    # unchanged inputs plan nothing; a map file changed (FAST rerun) reruns the synthesis
    assert "Nothing to be done" in snakemake(tmp_path, *DATA_OUTPUTS, "-n", *config).stdout
    changed = next((tmp_path / "cohort" / "sub-02").rglob("*_pve_1.nii.gz"))
    image = nib.load(changed)
    nib.Nifti1Image(image.get_fdata(dtype=np.float32) * 0.9, image.affine).to_filename(changed)
    assert "rule synthesize:" in snakemake(tmp_path, *DATA_OUTPUTS, "-n", *config).stdout


def test_a_bad_session_stops_synthesis_in_one_line_naming_the_file(tmp_path):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    manifest = cohort / "manifest.tsv"
    manifest.write_text("subject\tsession\tgm\twm\tcsf\ns1\ts1\tgm.nii\twm.nii\tcsf.nii\n")
    result = snakemake(tmp_path, *DATA_OUTPUTS, *study_files(tmp_path, manifest), check=False)
    assert result.returncode != 0
    assert f"nifti: s1: {cohort / 'gm.nii'} does not exist" in result.stdout + result.stderr
    assert not (tmp_path / "results/dataset/samples.csv").exists()
