"""Generator files: ``results/networks/<name>/generator.pt`` (weights + architecture + metadata).

The file is a plain dict of tensors and built-in types so that ``torch.load(weights_only=True)``
reads it; no pickled classes. Layout::

    {"format": "advmri-generator", "format_version": 1,
     "architecture": {"depth": 4, "base_features": 64, "in_channels": 1, "out_channels": 1},
     "state_dict": {...}, "metadata": {...}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from advmri.errors import DataError
from advmri.models.unet import UNet

FORMAT = "advmri-generator"
FORMAT_VERSION = 1


class NonFiniteWeightsError(DataError):
    """A generator file whose weights hold NaN or infinite values (a diverged or damaged run)."""


def check_finite_weights(state_dict: dict, path: str | Path) -> None:
    """Raise :class:`NonFiniteWeightsError` naming ``path`` and the first tensor with NaN or inf."""
    bad = [
        (key, int((~torch.isfinite(value)).sum()))
        for key, value in state_dict.items()
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all()
    ]
    if bad:
        key, count = bad[0]
        others = len(bad) - 1
        more = f" (and {others} more tensor{'s' if others > 1 else ''})" if others else ""
        raise NonFiniteWeightsError(
            f"{path}: weights hold NaN or infinite values, {count:,} in {key!r}{more}; the network "
            "is unusable, retrain it"
        )


def clean_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict on CPU, without ``torch.compile``'s ``_orig_mod.`` prefix."""
    module = getattr(model, "_orig_mod", model)
    return {key: value.detach().cpu().clone() for key, value in module.state_dict().items()}


def save_generator(model: UNet, path: str | Path, metadata: dict) -> None:
    """Write a trained UNet and its metadata to ``path`` (atomically: tmp file, then rename).

    Parameters
    ----------
    model : UNet
        The generator (may be wrapped by ``torch.compile``).
    path : str or Path
        Destination, conventionally ``results/networks/<name>/generator.pt``.
    metadata : dict
        Built-in types only (dict, list, str, int, float, bool, None): effective settings,
        perceptual-weights source, epochs run, torch version, ...
    """
    module = getattr(model, "_orig_mod", model)
    if not isinstance(module, UNet):
        raise TypeError(f"save_generator expects an advmri UNet, got {type(module).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": module.architecture,
        "state_dict": clean_state_dict(module),
        # a JSON round trip keeps built-in types only (e.g. torch.__version__ is a str subclass
        # that weights_only loading refuses)
        "metadata": json.loads(json.dumps(metadata)),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the UNet stored in ``path`` and return it (eval mode, on ``device``) with metadata.

    Raises
    ------
    DataError
        The file is missing, unreadable, or not an advmri generator file;
        :class:`NonFiniteWeightsError` for weights holding NaN or inf.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"generator file {path} does not exist; run the training rule first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle/zip errors have many types; all mean "not our file"
        raise DataError(
            f"{path} is not an advmri generator file that torch.load(weights_only=True) can read "
            f"({type(error).__name__}); write it with advmri.models.save_generator"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(
            f"{path} is not an advmri generator file (no 'format': '{FORMAT}' entry); "
            "write it with advmri.models.save_generator"
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{path} has generator format version {payload.get('format_version')!r}, "
            f"this advmri reads version {FORMAT_VERSION}; retrain or update advmri"
        )
    if not isinstance(payload.get("state_dict"), dict) or not isinstance(
        payload.get("architecture"), dict
    ):
        raise DataError(
            f"{path} is not an advmri generator file (no state_dict and architecture); "
            "write it with advmri.models.save_generator"
        )
    check_finite_weights(payload["state_dict"], path)
    model = UNet(**payload["architecture"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise DataError(
            f"{path}: weights do not match the stored architecture {payload['architecture']}"
        ) from error
    model.to(device).eval()
    return model, dict(payload["metadata"])
