"""The real single-node SLURM cluster the tests in this folder run the study against."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # slurm_cluster.py, slurm_study.py

import slurm_cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """munged + slurmctld + slurmd on this host, stopped by pid after the module (even on failure).

    Its configuration, state, logs and ports are its own (a temporary folder, free ports), so it
    runs beside a SLURM installation of the machine without touching it.
    """
    if os.geteuid() != 0:
        pytest.skip(
            "the real-SLURM test installs and starts SLURM daemons: run it as root (CI does)"
        )
    try:
        slurm_cluster.install_if_missing()
    except slurm_cluster.ClusterError as error:
        missing = ", ".join(slurm_cluster.missing_binaries())
        pytest.skip(f"SLURM programs missing ({missing}) and could not be installed: {error}")
    running = slurm_cluster.start(tmp_path_factory.mktemp("slurm-cluster"))
    try:
        yield running
    finally:
        slurm_cluster.stop(running)
