"""The repository keeps its promises: the README's commands are what CI runs, code is lint-clean."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fabricate import REPO

BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_the_install_and_demo_command_then_the_test_command():
    install_and_demo, install_and_test = readme_commands()[:2]
    assert install_and_demo.endswith("snakemake --profile profiles/demo")
    assert install_and_test.endswith(".venv/bin/python -m pytest")


def test_ci_installs_as_the_readme_says_then_runs_exactly_its_test_command():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    install_and_test = readme_commands()[1].split(" && ")
    assert install_and_test[0] in ci  # the venv
    assert install_and_test[1] in ci  # the install step
    assert ci[-1] == install_and_test[-1]  # the test command, last


@pytest.mark.parametrize("tool", ["ruff", "snakefmt"])
def test_code_is_clean_for(tool):
    executable = shutil.which(tool, path=str(BIN)) or shutil.which(tool)
    assert executable, f"{tool} is not installed (pip install -e '.[dev]')"
    command = (
        [executable, "check", "."]
        if tool == "ruff"
        else [executable, "--check", "Snakefile", "rules"]
    )
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
