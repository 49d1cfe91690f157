"""The error of ``advmri enhance`` and how it quotes the errors of the libraries it calls."""

from __future__ import annotations

from advmri.data.geometry import GeometryError


class EnhanceError(GeometryError):
    """A scan, network file or setting that ``advmri enhance`` cannot use; one line."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, or ``no message``."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"
