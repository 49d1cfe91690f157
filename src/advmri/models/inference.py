"""Running a network over a stack of images: the device, cuDNN's settings and the batched loop.

One definition for every stage that runs a trained generator: evaluation
(:mod:`advmri.evaluation`, rules ``evaluate`` and ``evaluate_reference``), ``advmri enhance``
(:mod:`advmri.enhance`) and training's choice of device (:func:`advmri.train.train_network`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

from advmri.errors import ConfigError

#: The values a device setting takes (``compute.device``, ``advmri enhance --device``).
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, setting: str = "compute.device") -> torch.device:
    """The torch device a device setting names.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda"}
        ``auto`` is CUDA when torch sees a GPU, else the CPU.
    setting : str
        What the user set, for the error message (``compute.device``, ``--device``).

    Raises
    ------
    ConfigError
        ``cuda`` without a CUDA GPU, or a name that is not one of :data:`DEVICES`; one line
        naming ``setting``.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"{setting} = {name!r} is not one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{setting} = cuda but torch sees no CUDA GPU; use auto or cpu")
    return torch.device(name)


@contextlib.contextmanager
def deterministic_cudnn() -> Iterator[None]:
    """For the duration of the block, cuDNN's deterministic algorithms without autotuning.

    The previous ``torch.backends.cudnn.deterministic`` and ``benchmark`` flags come back on exit
    (training sets ``benchmark`` for its own speed). No effect on the CPU.
    """
    previous = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous


def run_network(
    model: torch.nn.Module,
    images: np.ndarray,
    batch_size: int,
    device: str | torch.device | None = None,
    progress: str | None = None,
) -> np.ndarray:
    """``model`` applied to every image of ``images`` (N, H, W) in fixed-order batches.

    Parameters
    ----------
    model : torch.nn.Module
        A 1-channel to 1-channel image network (a generator); put in eval mode.
    images : (N, H, W) array
        Any float dtype (a memory map too); each batch is copied to ``device`` as float32.
    batch_size : int
        Images per forward pass, >= 1.
    device : torch device, optional
        Where the batches go; default the device of ``model``'s first parameter.
    progress : str, optional
        Label of a tqdm bar on stderr, shown only when stderr is a terminal; None for no bar.

    Returns
    -------
    (N, H, W) float32
        The network's output, not clipped and not checked (see :func:`nonfinite_images`).

    Notes
    -----
    Deterministic for a device: eval mode, ``torch.inference_mode``, a fixed batch composition
    and, on CUDA, cuDNN's deterministic algorithms (:func:`deterministic_cudnn`).
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size {batch_size!r} must be an integer >= 1")
    batch_size = int(batch_size)
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    model.eval()
    out = np.empty(images.shape, dtype=np.float32)
    bar = tqdm(
        total=len(images),
        desc=progress,
        unit="image",
        disable=progress is None or not sys.stderr.isatty(),
        file=sys.stderr,
    )
    try:
        with deterministic_cudnn(), torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
                result = model(batch.to(device=device, dtype=torch.float32).unsqueeze(1))
                out[start : start + len(batch)] = result[:, 0].float().cpu().numpy()
                bar.update(len(batch))
    finally:
        bar.close()
    return out


def nonfinite_images(images: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the images of an (N, H, W) stack that hold a NaN or inf pixel."""
    return np.flatnonzero(~np.isfinite(images).all(axis=tuple(range(1, images.ndim))))
