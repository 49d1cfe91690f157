"""The generator of a network's folder, checked, and run over grid slices
(:mod:`advmri.models.inference`'s device rule and batched loop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from advmri.data.geometry import GRID_SHAPE
from advmri.enhance.errors import EnhanceError
from advmri.errors import AdvmriError, ConfigError, DataError
from advmri.models import RANDOM_FLAG, UNet, inference, load_generator
from advmri.models.io import NonFiniteWeightsError

#: The file of a network's folder (``results/networks/<cell>/``) that holds the generator.
GENERATOR_FILE = "generator.pt"
_NETWORK_HINT = f"expected a network's folder, results/networks/<cell>/, holding {GENERATOR_FILE}"


def resolve_device(name: str = "auto") -> torch.device:
    """``--device``: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``
    (:func:`advmri.models.inference.resolve_device`); EnhanceError for CUDA absent."""
    try:
        return inference.resolve_device(name, "--device")
    except ConfigError as error:
        raise EnhanceError(str(error)) from error


def check_network(generator: torch.nn.Module, name: str = "the network") -> None:
    """Raise EnhanceError unless ``generator`` is a 1-in, 1-out UNet that takes the 208 x 176 grid."""
    module = getattr(generator, "_orig_mod", generator)
    if not isinstance(module, UNet):
        raise EnhanceError(f"{name} is a {type(module).__name__}, not an advmri UNet generator")
    if (module.in_channels, module.out_channels) != (1, 1):
        raise EnhanceError(
            f"{name} maps {module.in_channels} channel(s) to {module.out_channels}; "
            "enhance needs a 1-channel to 1-channel generator"
        )
    try:
        module.check_size(*GRID_SHAPE)
    except AdvmriError as error:
        raise EnhanceError(
            f"{name} cannot take the {GRID_SHAPE[0]} x {GRID_SHAPE[1]} grid: {error}"
        ) from error


def network_file(path: str | Path) -> Path:
    """``--network``'s generator file: ``path/generator.pt`` for a folder, else ``path`` itself.

    Raises
    ------
    EnhanceError
        A folder without ``generator.pt``, or nothing at ``path``.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / GENERATOR_FILE).is_file():
            raise EnhanceError(
                f"--network: {path} is a folder without {GENERATOR_FILE} (its training has not "
                f"finished, or a failed rerun removed it); {_NETWORK_HINT}"
            )
        return path / GENERATOR_FILE
    if not path.exists():
        raise EnhanceError(f"--network: {path} does not exist; {_NETWORK_HINT}")
    return path


def load_network(path: str | Path, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """The generator of ``path`` (eval mode, on ``device``) and its metadata.

    Parameters
    ----------
    path : path
        A network's folder, ``results/networks/<cell>/`` (or ``pretrain``), holding
        ``generator.pt``; that file itself is accepted too.

    Raises
    ------
    EnhanceError
        Missing folder or file, not an advmri generator file (a checkpoint, another torch file,
        text), weights holding NaN or inf, or a network that cannot take the 208 x 176 grid.
    """
    path = network_file(path)
    try:
        model, metadata = load_generator(path, device=device)
    except NonFiniteWeightsError as error:
        raise EnhanceError(f"--network: {error}") from error
    except DataError as error:
        raise EnhanceError(f"--network: {error} ({_NETWORK_HINT})") from error
    check_network(model, str(path))
    return model, metadata  # type: ignore[return-value]


def network_warnings(metadata: dict, name: str = "the network") -> list[str]:
    """Lines to show the user before enhancing: a network trained with a random VGG19, say.

    Returns
    -------
    list of str
        Empty for a network trained with ImageNet (or file) VGG weights or without VGG loss.
    """
    notes = [str(metadata.get("warning") or ""), str(metadata.get("perceptual_weights") or "")]
    if any(RANDOM_FLAG in note or "random VGG19" in note for note in notes):
        return [
            f"{name} was trained with a randomly initialised VGG19 ({RANDOM_FLAG}): a pipeline "
            "check, its enhancement is not the paper's"
        ]
    return []


def enhance_slices(
    slices: np.ndarray,
    generator: torch.nn.Module,
    batch_size: int = 8,
    progress: bool = False,
    name: str = "the network",
) -> np.ndarray:
    """Run ``generator`` over ``(N, 208, 176)`` grid slices in batches; float32, same shape.

    The slices go to the generator's device in fixed-order batches
    (:func:`advmri.models.inference.run_network`: ``torch.inference_mode``, cuDNN's deterministic
    algorithms without autotuning), so a scan gives one result on a given device. ``progress``
    shows a tqdm bar, only when stderr is a terminal.

    Raises
    ------
    EnhanceError
        The output holds NaN or inf (``name`` names the network): nothing comes back that is not
        a number.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise EnhanceError(f"--batch-size {batch_size!r} must be an integer >= 1")
    check_network(generator)
    out = inference.run_network(
        generator, slices, int(batch_size), progress="enhance" if progress else None
    )
    bad = inference.nonfinite_images(out)
    if bad.size:
        raise EnhanceError(
            f"{name} gave NaN or infinite values on {bad.size} of {len(out)} axial slices (the "
            f"first: slice {bad[0]}); nothing was written"
        )
    return out
