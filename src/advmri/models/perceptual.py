"""The perceptual loss J_per: distances between frozen VGG-19 features of G(LQ) and HQ (study §4 Eq. 2).

Features are taken *before* the ReLU of the named conv layers (Real-ESRGAN's choice), weighted per
layer, compared by mean squared error (``l2``, the paper) or mean absolute error (``l1``,
Real-ESRGAN). Grey images are repeated to 3 channels and ImageNet-normalised.

Weights come from one of three sources (``perceptual.weights``):

``imagenet``
    torchvision's ``VGG19_Weights.IMAGENET1K_V1`` through torchvision's own cache
    (``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``), downloaded once when online.
``file``
    a local state_dict (``perceptual.weights_path``), torchvision's layout (``features.<i>.*``)
    or the features alone (``<i>.*``).
``random``
    a seeded random initialisation, for demos and tests only; everything trained with it is
    flagged :data:`RANDOM_FLAG`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from advmri.errors import ConfigError

#: The words every artefact trained with random VGG weights carries.
RANDOM_FLAG = "random VGG19, not ImageNet"

#: torchvision ``vgg19().features`` index of each conv layer (its output is the pre-ReLU feature).
VGG19_CONV_INDEX: dict[str, int] = {}
_VGG19_CFG = [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4]  # torchvision's config "E"


def _build_index() -> None:
    index = 0
    for block, widths in enumerate(_VGG19_CFG, start=1):
        for position in range(1, len(widths) + 1):
            VGG19_CONV_INDEX[f"conv{block}_{position}"] = index
            index += 2  # conv, relu
        index += 1  # max pool


_build_index()

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_features(last_index: int) -> nn.Sequential:
    """torchvision's ``vgg19().features`` layers ``0 .. last_index`` (same indices, random init)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for widths in _VGG19_CFG:
        for width in widths:
            layers += [nn.Conv2d(in_ch, width, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers[: last_index + 1])


def imagenet_weights_file() -> Path:
    """Where torchvision caches ``VGG19_Weights.IMAGENET1K_V1`` (depends on ``$TORCH_HOME``)."""
    from torchvision.models import VGG19_Weights

    url = VGG19_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def imagenet_weights_url() -> str:
    """torchvision's download address of ``VGG19_Weights.IMAGENET1K_V1``."""
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1.url


def fetch_imagenet_weights(url: str | None = None) -> tuple[Path, bool]:
    """Download the VGG19 ImageNet weights once into the cache :func:`imagenet_weights_file`.

    For ``advmri fetch-weights``, run on a login node before the jobs (compute nodes are often
    offline). Jobs find the file through the same ``$TORCH_HOME`` (SLURM exports it to them).

    Parameters
    ----------
    url : where to download from; default torchvision's address (:func:`imagenet_weights_url`).
        A mirror (``file:///shared/vgg19-dcbb9e9d.pth``) must hold the same file.

    Returns
    -------
    (Path, bool)
        the cached file, and True when this call downloaded it (False: it was already there).

    Raises
    ------
    ConfigError
        when the download fails or its SHA-256 does not start with the prefix in torchvision's
        file name (``dcbb9e9d``); nothing is left in the cache then.
    """
    target = imagenet_weights_file()
    if target.is_file() and target.stat().st_size > 0:
        return target, False
    url = url or imagenet_weights_url()
    hash_prefix = torch.hub.HASH_REGEX.search(target.name).group(1)
    target.parent.mkdir(parents=True, exist_ok=True)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)
    try:
        # writes a temporary file next to target and renames it only once the hash matched
        torch.hub.download_url_to_file(url, str(target), hash_prefix=hash_prefix, progress=False)
    except Exception as error:
        target.unlink(missing_ok=True)
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ConfigError(
            f"VGG19 ImageNet weights: downloading {url} to {target} failed ({reason}); "
            f"run it where the address can be reached, or copy {target.name} from "
            f"{imagenet_weights_url()} there"
        ) from error
    finally:
        socket.setdefaulttimeout(previous_timeout)
    return target, True


def _load_imagenet_state_dict() -> dict[str, torch.Tensor]:
    from torchvision.models import VGG19_Weights

    weights = VGG19_Weights.IMAGENET1K_V1
    target = imagenet_weights_file()
    previous_timeout = socket.getdefaulttimeout()
    # without a timeout an offline machine can hang in the download for minutes
    socket.setdefaulttimeout(60)
    try:
        return weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except Exception as error:
        raise ConfigError(
            f"perceptual.weights: imagenet: VGG19 ImageNet weights are not cached at {target} and "
            f"could not be downloaded ({type(error).__name__}); put {target.name} from "
            f"{weights.url} there, or set perceptual.weights: file and perceptual.weights_path"
        ) from error
    finally:
        socket.setdefaulttimeout(previous_timeout)


def _load_file_state_dict(path: str | Path | None) -> dict[str, torch.Tensor]:
    if path is None:
        raise ConfigError("perceptual.weights: file needs perceptual.weights_path (a state_dict)")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"perceptual.weights_path {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConfigError(
            f"perceptual.weights_path {path} is not a torch state_dict ({type(error).__name__})"
        ) from error
    if not isinstance(state, dict):
        raise ConfigError(
            f"perceptual.weights_path {path} holds a {type(state).__name__}, not a state_dict"
        )
    return state


def _features_state(state: dict, last_index: int, origin: str) -> dict[str, torch.Tensor]:
    """The ``features`` entries of ``state`` (prefix stripped), checked for the layers needed."""
    if any(key.startswith("features.") for key in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    with torch.random.fork_rng(devices=[]):  # building the reference must not move the RNG
        needed = vgg19_features(last_index).state_dict()
    selected = {}
    for key, reference in needed.items():
        if key not in state:
            raise ConfigError(f"{origin} lacks VGG19 weight features.{key}")
        value = state[key]
        if not isinstance(value, torch.Tensor) or value.shape != reference.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ConfigError(
                f"{origin}: features.{key} has shape {shape}, VGG19 needs {tuple(reference.shape)}"
            )
        selected[key] = value
    return selected


class PerceptualLoss(nn.Module):
    """J_per = sum_i w_i * criterion(phi_i(G(LQ)), phi_i(HQ)) with a frozen VGG-19.

    Parameters
    ----------
    layers : sequence of str
        VGG-19 conv layer names (``conv1_2``, ...); the feature is the conv output before ReLU.
    layer_weights : sequence of float
        One weight per layer.
    criterion : {"l2", "l1"}
        Mean squared error (paper) or mean absolute error (Real-ESRGAN) per layer, averaged over
        batch, channels and pixels.
    weights : {"imagenet", "file", "random"}
        Source of the VGG weights (see the module docstring).
    weights_path : str or Path, optional
        The state_dict for ``weights="file"``.
    seed : int
        Seed of the ``random`` initialisation (ignored otherwise).

    Attributes
    ----------
    description : str
        Where the weights came from, in words; contains :data:`RANDOM_FLAG` for ``random``.
    """

    def __init__(
        self,
        layers: Sequence[str] = ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4"),
        layer_weights: Sequence[float] = (0.1, 0.1, 1.0, 1.0, 1.0),
        criterion: str = "l2",
        weights: str = "imagenet",
        weights_path: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        layers = list(layers)
        if not layers:
            raise ConfigError("perceptual.layers is empty; name at least one VGG19 conv layer")
        unknown = [name for name in layers if name not in VGG19_CONV_INDEX]
        if unknown:
            raise ConfigError(
                f"perceptual.layers: {unknown[0]!r} is not a VGG19 conv layer (conv1_1 .. conv5_4)"
            )
        if len(layer_weights) != len(layers):
            raise ConfigError(
                f"perceptual.layer_weights has {len(layer_weights)} entries for "
                f"{len(layers)} layers"
            )
        if criterion not in ("l2", "l1"):
            raise ConfigError(f"perceptual.criterion = {criterion!r}; use l2 or l1")
        self.layers = layers
        self.layer_weights = [float(w) for w in layer_weights]
        self.criterion = criterion
        self.indices = [VGG19_CONV_INDEX[name] for name in layers]
        last_index = max(self.indices)
        # fork_rng: neither building nor the seeded draw may move the caller's global RNG stream
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.features = vgg19_features(last_index)
            for module in self.features:
                if isinstance(module, nn.Conv2d):  # torchvision's VGG initialisation
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(module.bias)
        if weights == "imagenet":
            state = _features_state(
                _load_imagenet_state_dict(), last_index, f"ImageNet file {imagenet_weights_file()}"
            )
            self.features.load_state_dict(state)
            self.description = "ImageNet VGG19 (torchvision VGG19_Weights.IMAGENET1K_V1)"
        elif weights == "file":
            state = _features_state(
                _load_file_state_dict(weights_path),
                last_index,
                f"perceptual.weights_path {weights_path}",
            )
            self.features.load_state_dict(state)
            self.description = f"VGG19 weights from file {weights_path}"
        elif weights == "random":  # keep the seeded initialisation above
            self.description = f"{RANDOM_FLAG} (seeded random weights, seed {int(seed)})"
        else:
            raise ConfigError(f"perceptual.weights = {weights!r}; use imagenet, file or random")
        self.source = weights
        self.features.requires_grad_(False)
        self.features.eval()
        self.register_buffer(
            "mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, perceptual: dict, seed: int) -> PerceptualLoss:
        """Build from the config's ``perceptual`` section and the study seed."""
        return cls(
            layers=perceptual["layers"],
            layer_weights=perceptual["layer_weights"],
            criterion=perceptual["criterion"],
            weights=perceptual["weights"],
            weights_path=perceptual.get("weights_path"),
            seed=seed,
        )

    @property
    def is_random(self) -> bool:
        """True when the VGG weights are random (not ImageNet)."""
        return self.source == "random"

    def train(self, mode: bool = True) -> PerceptualLoss:
        # the VGG stays in eval mode whatever the caller does (it has no dropout/BN, but be safe)
        super().train(mode)
        self.features.eval()
        return self

    def _feature_maps(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image.expand(-1, 3, -1, -1) - self.mean) / self.std
        wanted = set(self.indices)
        maps = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                maps[index] = x
        return [maps[index] for index in self.indices]

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Weighted perceptual distance (scalar) of ``output`` to ``target``, both (N, 1, H, W)."""
        distance = F.mse_loss if self.criterion == "l2" else F.l1_loss
        with torch.no_grad():
            target_maps = self._feature_maps(target)
        output_maps = self._feature_maps(output)
        total = output.new_zeros((), dtype=torch.float32)
        for weight, out_map, target_map in zip(
            self.layer_weights, output_maps, target_maps, strict=True
        ):
            total = total + weight * distance(out_map.float(), target_map.float())
        return total
