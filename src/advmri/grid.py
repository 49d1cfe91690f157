"""The study's grid of (W_per, W_adv, LR) cells and their one canonical name.

A cell's name is its folder under ``results/networks/`` and ``results/eval/``:
``wper{w_per}_wadv{w_adv}_lr{lr}`` with every number written positionally, shortest
round-tripping form, no exponent and no trailing zeros (``1.0`` -> ``1``, ``1e-4`` -> ``0.0001``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

#: Regex for one number in a cell name (used as Snakemake wildcard constraint).
NUMBER_PATTERN = r"[0-9]+(?:\.[0-9]+)?"
CELL_PATTERN = (
    rf"wper(?P<w_per>{NUMBER_PATTERN})_wadv(?P<w_adv>{NUMBER_PATTERN})_lr(?P<lr>{NUMBER_PATTERN})"
)


def format_number(value: float) -> str:
    """Canonical text of a grid value: positional, shortest round-trip, no trailing zeros."""
    return np.format_float_positional(float(value), trim="-")


@dataclass(frozen=True)
class Cell:
    """One network of the grid."""

    w_per: float
    w_adv: float
    lr: float

    @property
    def name(self) -> str:
        return (
            f"wper{format_number(self.w_per)}_wadv{format_number(self.w_adv)}"
            f"_lr{format_number(self.lr)}"
        )

    @property
    def adversarial(self) -> bool:
        """True for VGG+GAN-Enhanced cells (W_adv > 0)."""
        return self.w_adv > 0

    @classmethod
    def parse(cls, name: str) -> Cell:
        match = re.fullmatch(CELL_PATTERN, name)
        if match is None:
            raise ValueError(f"not a grid cell name: {name!r} (expected wper<x>_wadv<y>_lr<z>)")
        return cls(float(match["w_per"]), float(match["w_adv"]), float(match["lr"]))


def grid_cells(grid: dict) -> list[Cell]:
    """All cells of a full-factorial grid ``{"w_per": [...], "w_adv": [...], "lr": [...]}``."""
    return [
        Cell(float(w_per), float(w_adv), float(lr))
        for w_per, w_adv, lr in itertools.product(grid["w_per"], grid["w_adv"], grid["lr"])
    ]
