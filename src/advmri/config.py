"""Load and check the study configuration against the schema shipped in the package,
``advmri/schemas/config.schema.yaml`` (:data:`SCHEMA`, read with :mod:`importlib.resources`).

The schema documents every key (type, range, meaning) and forbids unknown keys. A violation stops the
run before any job, with one line naming the key path and what was expected.

Beyond JSON Schema's own keywords the schema uses three of this project's (checked by
:data:`Validator`): ``ordered: true`` on a ``[low, high]`` array (``low <= high``),
``notAllZero: true`` on an object or array of numbers (probabilities that must not all be 0) and
``renamed: {old: new.key.path}`` on an object (an old key name refused with the new one). Every
number anywhere in the config must be finite (:func:`check_finite`): JSON Schema's ``minimum`` and
``maximum`` tests are false for NaN, so a NaN would pass them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from advmri.data.anatomy import IMAGE_SHAPE
from advmri.data.kspace import band_shape, divisor_fractions
from advmri.errors import ConfigError
from advmri.grid import Cell, format_number

#: The configuration schema: package data, so an installed advmri (not only a source tree) has it.
SCHEMA = resources.files("advmri").joinpath("schemas", "config.schema.yaml")


def key_path(path) -> str:
    """``['grid', 'w_adv', 3]`` -> ``grid.w_adv[3]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _ordered(validator, ordered, instance, schema):
    """Keyword ``ordered: true``: a ``[low, high]`` array with ``low <= high``."""
    if not (ordered and validator.is_type(instance, "array") and len(instance) == 2):
        return
    low, high = instance
    numbers = all(validator.is_type(v, "number") for v in instance)
    if numbers and low > high:
        yield jsonschema.ValidationError(f"{instance!r} is not [low, high] with low <= high")


def _not_all_zero(validator, wanted, instance, schema):
    """Keyword ``notAllZero: true``: an object's (or array's) numbers are not all 0."""
    if not wanted:
        return
    if validator.is_type(instance, "object"):
        values = list(instance.values())
    elif validator.is_type(instance, "array"):
        values = list(instance)
    else:
        return
    numbers = [v for v in values if validator.is_type(v, "number")]
    if numbers and not any(numbers):
        yield jsonschema.ValidationError(f"{instance!r} are all zero")


def _renamed(validator, renamed, instance, schema):
    """Keyword ``renamed: {old: new.key.path}`` on an object: an old key is refused with a hint.

    The error names the old key; :func:`validate_config` shows it before the errors the old key
    causes (an unknown key, a missing new key).
    """
    if not validator.is_type(instance, "object"):
        return
    for old, new in renamed.items():
        if old in instance:
            yield jsonschema.ValidationError(
                f"the key is now {new} (same meaning); rename it in your config",
                instance=instance[old],
                path=[old],
            )


#: Draft 2020-12 plus this project's ``ordered``, ``notAllZero`` and ``renamed`` keywords.
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {"ordered": _ordered, "notAllZero": _not_all_zero, "renamed": _renamed},
)


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
        case "ordered":
            return f"{where} = {value!r} must be [low, high] with low <= high"
        case "notAllZero":
            return f"{where} = {value!r} must not be all zero (nothing could be drawn)"
        case _:
            return f"{where} = {value!r}: {error.message}"


def check_finite(config: Mapping) -> None:
    """Raise :class:`ConfigError` naming the first number of ``config`` that is NaN or infinite.

    Walks every mapping and list, whatever its keys, so a key added to the schema is covered.
    """

    def walk(node, path):
        if isinstance(node, bool):
            return
        if isinstance(node, float | int):
            if not math.isfinite(node):
                raise ConfigError(f"config: {key_path(path)} = {node!r} must be a finite number")
        elif isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, [*path, key])
        elif isinstance(node, list | tuple):
            for index, value in enumerate(node):
                walk(value, [*path, index])

    walk(config, [])


def _renamed_first(error: jsonschema.ValidationError) -> tuple:
    """``best_match``'s order, with an old key's hint before the errors that old key causes."""
    return (error.validator == "renamed", jsonschema.exceptions.relevance(error))


def validate_config(config: Mapping, schema_path: str | Path | None = None) -> None:
    """Raise :class:`ConfigError` with one line for the first problem of ``config``.

    In order: a number that is not finite (:func:`check_finite`), the most specific schema
    violation, then the rules a schema cannot say (:func:`_check_consistency`). ``schema_path``
    defaults to the package's schema (:data:`SCHEMA`).
    """
    check_finite(config)
    validator = Validator(_schema(schema_path))
    error = jsonschema.exceptions.best_match(
        validator.iter_errors(dict(config)), key=_renamed_first
    )
    if error is not None:
        raise ConfigError(f"config: {_describe(error)}")
    _check_consistency(config)


def _schema(schema_path: str | Path | None = None) -> dict:
    """The schema as a dict: the package's (:data:`SCHEMA`) unless ``schema_path`` is given."""
    text = (
        SCHEMA.read_text(encoding="utf-8")
        if schema_path is None
        else Path(schema_path).read_text(encoding="utf-8")
    )
    return yaml.safe_load(text)


def _without_required(node):
    """A copy of a schema with every ``required`` list dropped (for a partial config)."""
    if isinstance(node, Mapping):
        return {
            key: _without_required(value)
            for key, value in node.items()
            if not (key == "required" and isinstance(value, list))
        }
    if isinstance(node, list):
        return [_without_required(value) for value in node]
    return node


def validate_overlay(config: Mapping) -> None:
    """Raise :class:`ConfigError` with one line for the first bad key of a partial config.

    A partial config is what ``--configfile`` overlays are, or ``advmri enhance --config``: any
    subset of the keys, each of which must be a key of the schema with a valid, finite value;
    keys it leaves out are not required. The rules across sections (:func:`validate_config`'s
    consistency checks) need the whole config and are not applied.
    """
    check_finite(config)
    validator = Validator(_without_required(_schema()))
    error = jsonschema.exceptions.best_match(
        validator.iter_errors(dict(config)), key=_renamed_first
    )
    if error is not None:
        raise ConfigError(f"config: {_describe(error)}")


def schema_default(path: str):
    """The ``default`` the package's schema documents for the key ``path`` (``synthesis.noise_std``).

    Raises
    ------
    KeyError
        The schema has no such key, or no default for it.
    """
    node = _schema()
    for part in path.split("."):
        node = node["properties"][part]
    return node["default"]


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
    if source == "nifti" and not config["data"]["nifti"].get("manifest"):
        raise ConfigError(
            "config: data.source is 'nifti' but data.nifti.manifest is empty; set it to your "
            "table of sessions and tissue maps (.tsv or .csv), e.g. in config/nifti.yaml"
        )
    if source == "nifti":
        labels = config["data"]["nifti"]["labels"]
        for first, second in (("gm", "wm"), ("gm", "csf"), ("wm", "csf")):
            shared = sorted(set(labels[first]) & set(labels[second]))
            if shared:
                raise ConfigError(
                    f"config: data.nifti.labels: label {shared[0]} is in both {first} and {second}"
                )
    fraction = config["synthesis"]["kspace_fraction"]
    try:
        band_shape(IMAGE_SHAPE, fraction)
    except ValueError:
        lines = " x ".join(f"{side * fraction:g}" for side in IMAGE_SHAPE)
        raise ConfigError(
            f"config: synthesis.kspace_fraction = {fraction!r} keeps {lines} k-space lines; it "
            f"must keep whole lines that divide the grid "
            f"({divisor_fractions(IMAGE_SHAPE)})"
        ) from None
    _check_cell_overrides(config)
    _check_responses(config)


#: Responses every study has, and what needs each.
REQUIRED_RESPONSES = {
    "ge": "Table 1 ranks the networks by ln(GE)",
    "mie": "the training-health check compares each network's MIE and SSIM with the LQ input's",
    "ssim": "the training-health check compares each network's MIE and SSIM with the LQ input's",
}


def _check_responses(config: Mapping) -> None:
    """``metrics.responses`` names registered responses, :data:`REQUIRED_RESPONSES` among them."""
    from advmri.metrics.registry import select_responses  # the metric code, only when needed

    names = config["metrics"].get("responses")
    if names is None:
        return
    select_responses(names)
    for name, needed_by in REQUIRED_RESPONSES.items():
        if name not in names:
            raise ConfigError(
                f"config: metrics.responses = {list(names)} lacks {name!r}; {needed_by}, so "
                "every study has it"
            )


def _check_cell_overrides(config: Mapping) -> None:
    """Each key of ``finetune.cell_overrides`` must name a cell of the grid (a typo is no cell)."""
    grid = config["grid"]
    for name in config["finetune"].get("cell_overrides") or {}:
        try:
            cell = Cell.parse(str(name))
        except ValueError:
            raise ConfigError(
                f"config: finetune.cell_overrides: {name!r} is not a cell name like "
                "wper1_wadv0.5_lr0.01"
            ) from None
        absent = [
            f"grid.{factor} = [{', '.join(format_number(v) for v in grid[factor])}] has no "
            f"{format_number(getattr(cell, factor))}"
            for factor in ("w_per", "w_adv", "lr")
            if float(getattr(cell, factor)) not in map(float, grid[factor])
        ]
        if absent:
            raise ConfigError(
                f"config: finetune.cell_overrides.{name} is not a cell of the grid "
                f"({'; '.join(absent)}); the override would be ignored"
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
