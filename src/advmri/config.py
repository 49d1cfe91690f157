"""Load and check the study configuration against ``workflow/schemas/config.schema.yaml``.

The schema documents every key (type, range, meaning) and forbids unknown keys. A violation stops the
run before any job, with one line naming the key path and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml

from advmri.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def key_path(path) -> str:
    """``['grid', 'w_adv', 3]`` -> ``grid.w_adv[3]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    where = key_path(error.absolute_path)
    value = error.instance
    match error.validator:
        case "additionalProperties":
            extra = sorted(set(value) - set(error.schema.get("properties", {})))
            allowed = ", ".join(sorted(error.schema.get("properties", {})))
            return f"{where}: unknown key {extra[0]!r} (allowed: {allowed})"
        case "minimum" | "exclusiveMinimum":
            bound = "at least" if error.validator == "minimum" else "above"
            return f"{where} = {value!r} must be {bound} {error.validator_value}"
        case "maximum" | "exclusiveMaximum":
            bound = "at most" if error.validator == "maximum" else "below"
            return f"{where} = {value!r} must be {bound} {error.validator_value}"
        case "enum":
            return f"{where} = {value!r} is not one of {error.validator_value}"
        case "type":
            return f"{where} = {value!r} is not of type {error.validator_value}"
        case "required":
            return f"{where}: {error.message}"
        case _:
            return f"{where} = {value!r}: {error.message}"


def validate_config(config: Mapping, schema_path: str | Path = SCHEMA_PATH) -> None:
    """Raise :class:`ConfigError` with one line for the first (most specific) schema violation."""
    with open(schema_path) as handle:
        schema = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(config)))
    if error is not None:
        raise ConfigError(f"config: {_describe(error)}")
    _check_consistency(config)


def _check_consistency(config: Mapping) -> None:
    """Rules a JSON schema cannot say."""
    for factor in ("w_per", "w_adv", "lr"):
        values = config["grid"][factor]
        if len(set(map(float, values))) != len(values):
            raise ConfigError(f"config: grid.{factor} lists a value twice: {values}")
    perceptual = config["perceptual"]
    if len(perceptual["layers"]) != len(perceptual["layer_weights"]):
        raise ConfigError(
            f"config: perceptual.layer_weights has {len(perceptual['layer_weights'])} entries for "
            f"{len(perceptual['layers'])} perceptual.layers"
        )
    if perceptual["weights"] == "file" and not perceptual.get("weights_path"):
        raise ConfigError(
            "config: perceptual.weights is 'file' but perceptual.weights_path is empty"
        )
    figures = config["stats"]["figures"]
    for factor in ("w_per", "lr"):
        if float(figures[factor]) not in map(float, config["grid"][factor]):
            raise ConfigError(
                f"config: stats.figures.{factor} = {figures[factor]} is not in grid.{factor}"
            )
    source = config["data"]["source"]
    if source == "oasis1" and not config["data"]["oasis1"].get("root"):
        raise ConfigError(
            "config: data.source is 'oasis1' but data.oasis1.root is empty; set it to the folder "
            "holding your unpacked OASIS-1 sessions (OAS1_xxxx_MRn), e.g. in config/oasis1.yaml"
        )
    for name in ("wm", "gm", "csf"):
        low, high = config["synthesis"]["tissue_weights"][name]
        if low > high:
            raise ConfigError(
                f"config: synthesis.tissue_weights.{name} = [{low}, {high}] is reversed"
            )


def load_config(*paths: str | Path) -> dict:
    """Deep-merge YAML files left to right (later files override) and validate the result."""
    merged: dict = {}
    for path in paths:
        with open(path) as handle:
            deep_update(merged, yaml.safe_load(handle) or {})
    validate_config(merged)
    return merged


def deep_update(base: dict, update: Mapping) -> dict:
    """Merge ``update`` into ``base`` recursively, as Snakemake merges ``--configfile`` files."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base
