"""Effective settings: exactly what determines one network, nothing else.

A training rule passes these as Snakemake ``params``; Snakemake reruns a job when its params change,
so a setting belongs here iff changing it changes the trained weights. That is why the grid lists
are absent (adding a W_adv value must not retrain the other cells), why ``checkpoint_every`` is
absent (a resumed run is bit-identical to an uninterrupted one), and why a VGG-Enhanced cell
(W_adv = 0) carries no discriminator settings and no ``objective.gan_loss`` (it trains no D and
computes no adversarial term, so changing the GAN loss retrains the VGG+GAN cells only).
"""

from __future__ import annotations

import copy
import hashlib
import json

from advmri.errors import ConfigError
from advmri.grid import Cell
from advmri.models.discriminator import discriminator_arguments
from advmri.models.unet import unet_arguments

#: Keys of a stage's section that steer the run but do not change the weights.
RUN_ONLY_KEYS = ("checkpoint_every",)
#: ``compute`` switches that change speed only (same batches, fp32 Adam either way): kept out of
#: the settings, so turning one on or off reruns no network and keeps its checkpoints valid.
SPEED_ONLY_COMPUTE_KEYS = ("data_on_device", "fused_adam")


def speed_options(config: dict) -> dict:
    """The speed-only ``compute`` switches of ``config``; pass them to ``train_network(speed=)``."""
    return {k: v for k, v in config["compute"].items() if k in SPEED_ONLY_COMPUTE_KEYS}


def _hashed_compute(config: dict) -> dict:
    return {k: v for k, v in config["compute"].items() if k not in SPEED_ONLY_COMPUTE_KEYS}


def _canonical(value: object) -> object:
    """A JSON round trip with sorted keys: stable order and built-in types only."""
    return json.loads(json.dumps(value, sort_keys=True))


def settings_hash(settings: dict) -> str:
    """SHA-256 (hex, 16 characters) of ``settings`` serialised as sorted-key JSON."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def effective_pretrain_settings(config: dict) -> dict:
    """What determines the pretrained generator: seed, generator (its constructor arguments,
    :func:`advmri.models.unet.unet_arguments`), ``pretrain`` section, compute."""
    pretrain = {k: v for k, v in config["pretrain"].items() if k not in RUN_ONLY_KEYS}
    return _canonical(
        {
            "stage": "pretrain",
            "seed": config["seed"],
            "model": {"generator": unet_arguments(config["model"]["generator"])},
            "pretrain": pretrain,
            "compute": _hashed_compute(config),
        }
    )


def cell_overrides(config: dict) -> dict[str, dict]:
    """``finetune.cell_overrides`` keyed by canonical cell name, checked against ``finetune``.

    Raises
    ------
    ConfigError
        A key is not a cell name, or an override names a setting ``finetune`` does not have.
    """
    raw = config["finetune"].get("cell_overrides") or {}
    allowed = set(config["finetune"]) - {"cell_overrides"}
    overrides: dict[str, dict] = {}
    for name, override in raw.items():
        try:
            canonical = Cell.parse(str(name)).name
        except ValueError as error:
            raise ConfigError(
                f"finetune.cell_overrides: {name!r} is not a cell name like wper1_wadv0.5_lr0.01"
            ) from error
        if not isinstance(override, dict):
            raise ConfigError(f"finetune.cell_overrides.{name} must be a mapping of settings")
        unknown = sorted(set(override) - allowed)
        if unknown:
            raise ConfigError(
                f"finetune.cell_overrides.{name}: {unknown[0]!r} is not a finetune setting "
                f"(one of {', '.join(sorted(allowed))})"
            )
        if canonical in overrides:
            raise ConfigError(f"finetune.cell_overrides names cell {canonical} twice")
        overrides[canonical] = override
    return overrides


def finetune_section(config: dict, cell: Cell) -> dict:
    """The ``finetune`` section for ``cell``: defaults merged with the cell's override."""
    section = {k: copy.deepcopy(v) for k, v in config["finetune"].items() if k != "cell_overrides"}
    section.update(copy.deepcopy(cell_overrides(config).get(cell.name, {})))
    return section


def effective_finetune_settings(config: dict, cell: Cell) -> dict:
    """Everything that determines ``cell``'s fine-tuned network, and nothing else.

    Returns
    -------
    dict
        ``stage``, ``seed``, ``model`` (the generator's constructor arguments; the
        discriminator's only when W_adv > 0),
        ``objective`` (``gan_loss``; only when W_adv > 0), ``perceptual`` (only when W_per > 0), ``finetune`` (merged with the cell's override,
        without ``checkpoint_every``), ``compute``, ``cell`` (name, w_per, w_adv, lr) and
        ``pretrain_hash`` (:func:`settings_hash` of :func:`effective_pretrain_settings`).
        Sorted keys, built-in types only.
    """
    finetune = {k: v for k, v in finetune_section(config, cell).items() if k not in RUN_ONLY_KEYS}
    model = {"generator": unet_arguments(config["model"]["generator"])}
    if cell.adversarial:
        model["discriminator"] = discriminator_arguments(config["model"]["discriminator"])
    settings = {
        "stage": "finetune",
        "seed": config["seed"],
        "model": model,
        "finetune": finetune,
        "compute": _hashed_compute(config),
        "cell": {"name": cell.name, "w_per": cell.w_per, "w_adv": cell.w_adv, "lr": cell.lr},
        "pretrain_hash": settings_hash(effective_pretrain_settings(config)),
    }
    if cell.adversarial:
        settings["objective"] = {"gan_loss": config["objective"]["gan_loss"]}
    if cell.w_per > 0:
        settings["perceptual"] = config["perceptual"]
    return _canonical(settings)


def finetune_settings_of(config: dict, cell_name: str) -> dict:
    """:func:`effective_finetune_settings` of the cell named ``cell_name`` (a rule's wildcard).

    Raises
    ------
    ConfigError
        ``cell_name`` is not a cell name, or not in canonical form (``wper1.0`` for ``wper1``):
        a second spelling would train the same network twice under two names.
    """
    try:
        cell = Cell.parse(cell_name)
    except ValueError as error:
        raise ConfigError(f"{cell_name!r} is not a cell name like wper1_wadv0.5_lr0.01") from error
    if cell.name != cell_name:
        raise ConfigError(
            f"cell name {cell_name} is not canonical; ask for results/networks/{cell.name}/"
        )
    return effective_finetune_settings(config, cell)


def checkpoint_every(config: dict, cell: Cell | None = None) -> int:
    """Epochs between checkpoints of the pretraining (``cell=None``) or of ``cell``'s run."""
    section = config["pretrain"] if cell is None else finetune_section(config, cell)
    return int(section["checkpoint_every"])
