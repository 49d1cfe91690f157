"""The repository keeps its promises: the README's commands are what CI runs, code is lint-clean, the
study it cites is in it, and it installs as a library."""

import re
import shutil
import site
import subprocess
import sys
import zipfile
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


# --- The study in the repository: docs/study.md is what "study §n" cites, and nothing points outside.

STUDY = REPO / "docs" / "study.md"
# A "docs/..." path as the text names it (not the tail of a URL or of another folder's path).
DOCS_PATH = re.compile(r"(?<![\w./-])docs/[\w./-]*[\w]")
SECTION = re.compile(r"§(\d+)")
# How code, config and tests cite the study: "study §2", or a range "study §7-§9".
CITATION = re.compile(r"study §\d+(?:-§\d+)?")
# Built from pieces so that this file does not name them itself.
OUTSIDE = ["../" + "shared", "SPEC" + ".md", "SPEC" + " §", "../" + "SPEC"]


def repository_text_files() -> dict[Path, str]:
    """Every tracked text file (every file outside hidden folders and results where git is absent)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        cwd=REPO,
    )
    if listing.returncode == 0:
        paths = [REPO / name for name in listing.stdout.decode().split("\0") if name]
    else:
        paths = [
            p
            for p in REPO.rglob("*")
            if p.is_file()
            and not any(
                part.startswith(".") or part == "results" for part in p.relative_to(REPO).parts
            )
        ]
    texts = {}
    for path in paths:
        try:
            texts[path] = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted but not yet staged
    return texts


def study_sections() -> set[int]:
    return {int(n) for n in re.findall(r"^## (\d+)\. ", STUDY.read_text(encoding="utf-8"), re.M)}


def test_study_has_the_nine_numbered_sections_the_code_cites():
    assert study_sections() == set(range(1, 10))


def test_every_docs_path_mentioned_in_the_repository_exists():
    missing = [
        f"{path.relative_to(REPO)}: {name}"
        for path, text in repository_text_files().items()
        for name in DOCS_PATH.findall(text)
        if not (REPO / name).exists()
    ]
    assert not missing, "paths under docs/ that do not exist:\n" + "\n".join(missing)


def test_every_section_cited_is_a_heading_of_the_study_and_cited_as_study_section():
    sections = study_sections()
    problems = []
    for path, text in repository_text_files().items():
        for number, line in enumerate(text.splitlines(), start=1):
            where = f"{path.relative_to(REPO)}:{number}"
            problems += [
                f"{where}: §{n} is no section of docs/study.md"
                for n in map(int, SECTION.findall(line))
                if n not in sections
            ]
            if path != STUDY and SECTION.sub("", CITATION.sub("", line)) != CITATION.sub("", line):
                problems.append(f"{where}: cite the study as 'study §n': {line.strip()}")
    assert not problems, "\n".join(problems)


def test_no_tracked_file_points_outside_the_repository():
    found = [
        f"{path.relative_to(REPO)}:{number}: {pattern}"
        for path, text in repository_text_files().items()
        for number, line in enumerate(text.splitlines(), start=1)
        for pattern in OUTSIDE
        if pattern in line
    ]
    assert not found, "\n".join(found)


# --- Installable as a library: the config schema is package data, not a file of the source tree.


@pytest.mark.slow
def test_installed_wheel_validates_the_config_without_the_source_tree(tmp_path):
    # Build from a copy of what the wheel needs, so no build/ or egg-info is left in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + [str(source), "-w", str(wheels)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("advmri-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "advmri/schemas/config.schema.yaml" in archive.namelist()

    # A fresh venv that sees this interpreter's packages (torch, ...) but neither src/ nor the
    # editable install (a path in a .pth file is added as it is; its own .pth files are not read).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (purelib / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(purelib)

    bad = tmp_path / "bad.yaml"
    bad.write_text("synthesis: {nosie_std: 0.1}\n")
    check = f"""
import advmri
from advmri.config import load_config
from advmri.errors import ConfigError
print(advmri.__file__)
load_config({str(REPO / "config.yaml")!r}, {str(REPO / "config" / "demo.yaml")!r})
try:
    load_config({str(REPO / "config.yaml")!r}, {str(bad)!r})
except ConfigError as error:
    print(error)
"""
    work = tmp_path / "elsewhere"
    work.mkdir()
    # -I: no PYTHONPATH, no user site, no current folder on sys.path.
    result = subprocess.run([python, "-I", "-c", check], capture_output=True, text=True, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    module, error = result.stdout.splitlines()[-2:]
    assert Path(module).is_relative_to(purelib), module
    assert not Path(module).is_relative_to(REPO), module
    assert "synthesis: unknown key 'nosie_std'" in error
