import sys

from advmri.config import validate_config
from advmri.data.nifti import manifest_files
from advmri.errors import ConfigError
from advmri.grid import NUMBER_PATTERN, Cell, format_number, grid_cells
from advmri.train.settings import SPEED_ONLY_COMPUTE_KEYS

# Stop before any job when the merged config breaks the schema (one line naming the key). The
# schema is advmri's package data (src/advmri/schemas/config.schema.yaml), the file the library uses.
try:
    validate_config(config)
except ConfigError as error:
    sys.exit(str(error))


wildcard_constraints:
    cell=rf"wper{NUMBER_PATTERN}_wadv{NUMBER_PATTERN}_lr{NUMBER_PATTERN}",


CELLS = grid_cells(config["grid"])


def anatomy_files(wildcards):
    """Files the anatomy is read from: the nifti source's manifest and the maps it lists (a
    changed file reruns synthesis); none for the embedded or OASIS-1 anatomy."""
    if config["data"]["source"] != "nifti":
        return {}
    return manifest_files(config["data"]["nifti"]["manifest"])


def resources_of(rule_name):
    """Threads and resources of a rule, from the config's `resources` section."""
    return config["resources"][rule_name]


def evaluate_device():
    """The torch device of evaluation jobs: the configured one when the rule asks for a GPU."""
    return config["compute"]["device"] if resources_of("evaluate")["gpu"] else "cpu"


def study_targets():
    """Final outputs of the stages that exist."""
    return [
        "results/dataset/preview.png",
        "results/split/split.csv",
        "results/report/report.html",
    ]


def statistics_settings(config):
    """What changes the statistics: the seed, the `stats` section less its figure levels, and
    the study's responses (`metrics.responses`)."""
    stats = {key: value for key, value in config["stats"].items() if key != "figures"}
    responses = (
        {"responses": config["metrics"]["responses"]}
        if "responses" in config["metrics"]
        else {}
    )
    return {"seed": config["seed"], "stats": stats, "metrics": responses}


def report_settings(config):
    """What the report prints and draws: the study config less `resources` (where and how long
    jobs run) and the speed-only `compute` switches (neither changes a number)."""
    settings = {key: value for key, value in config.items() if key != "resources"}
    settings["compute"] = {
        key: value
        for key, value in config["compute"].items()
        if key not in SPEED_ONLY_COMPUTE_KEYS
    }
    return settings
