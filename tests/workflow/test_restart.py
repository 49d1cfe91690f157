"""The README's restart advice works: after a hard kill, `--unlock` and the same command again."""

import os
import re
import subprocess
import sys

from fabricate import REPO


def snakemake(workdir, *args):
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    return subprocess.run(
        [*command, *args, "--cores", "1", "--configfile", str(REPO / "config.yaml")],
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )


def test_a_lock_left_by_a_hard_kill_stops_the_rerun_until_unlock_removes_it(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    # what a `kill -9` of a run writing the dataset leaves: its output lock
    (locks / "0.output.lock").write_text("results/dataset/hq.npy\n")
    stopped = snakemake(tmp_path, "results/split/split.csv")
    assert stopped.returncode != 0
    assert "LockException" in stopped.stdout + stopped.stderr
    assert not (tmp_path / "results").exists()

    unlocked = snakemake(tmp_path, "--unlock")
    assert unlocked.returncode == 0, unlocked.stderr
    assert not locks.exists() or not any(locks.iterdir())


def test_the_readme_restart_section_says_unlock_what_a_rerun_removes_and_the_checkpoints():
    readme = (REPO / "README.md").read_text()
    section = re.search(r"### Restarting after a crash or a kill\n(.*?)\n##", readme, re.S).group(1)
    assert "snakemake --profile profiles/local --unlock" in section
    assert "deletes the job's old outputs first" in section
    assert "results/checkpoints/<cell>/checkpoint.pt" in section
