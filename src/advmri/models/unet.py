"""The generator G: a UNet (Ronneberger et al. 2015) that maps the LQ image to the enhanced image.

Javadi et al. 2024 give neither depth nor width; both are config keys (``model.generator.depth``,
``model.generator.width``), default 4 downsamplings and 64 channels at full resolution (study §3,
[choice]). 1 channel in, 1 channel out, same size.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from advmri.errors import ConfigError


class _DoubleConv(nn.Module):
    """Two (3x3 conv, batch norm, ReLU) blocks at one resolution; padding keeps the size."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            # bias is redundant before batch norm
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def unet_arguments(generator: Mapping) -> dict:
    """``UNet``'s constructor arguments from the config's ``model.generator`` section.

    The config's ``width`` is the constructor's ``base_features``, the name a network file's
    ``architecture`` keeps, so the networks' settings (and their hash) do not depend on the config's
    vocabulary and files written before the key was renamed still load.
    """
    return {"depth": generator["depth"], "base_features": generator["width"]}


class UNet(nn.Module):
    """UNet generator: ``depth`` 2x2 max-pool downsamplings, as many 2x2 up-convolutions back.

    Level ``k`` (0 = full resolution) has ``base_features * 2**k`` channels; skip connections
    concatenate the encoder's features with the upsampled decoder features, as in Ronneberger
    et al. 2015, but with padded convolutions (output size = input size) and batch norm.
    The last layer is a 1x1 convolution to ``out_channels`` with no activation: the output is the
    enhanced image on the input's intensity scale ([0, 1] in this project), not clipped.

    Parameters
    ----------
    depth : int
        Number of downsamplings (>= 1). Height and width of the input must be divisible by
        ``2**depth``; 208 x 176 allows depth <= 4 (208 = 16 * 13, 176 = 16 * 11).
    base_features : int
        Channels at full resolution (>= 1): the config's ``model.generator.width``.
    in_channels, out_channels : int
        1 and 1 for this project's grey images.
    """

    def __init__(
        self, depth: int = 4, base_features: int = 64, in_channels: int = 1, out_channels: int = 1
    ) -> None:
        super().__init__()
        if int(depth) != depth or depth < 1:
            raise ConfigError(f"model.generator.depth = {depth!r} must be an integer >= 1")
        if int(base_features) != base_features or base_features < 1:
            raise ConfigError(f"model.generator.width = {base_features!r} must be an integer >= 1")
        self.depth = int(depth)
        self.base_features = int(base_features)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        widths = [self.base_features * 2**k for k in range(self.depth + 1)]
        self.encoders = nn.ModuleList()
        previous = self.in_channels
        for width in widths:
            self.encoders.append(_DoubleConv(previous, width))
            previous = width
        self.pool = nn.MaxPool2d(2)
        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for k in reversed(range(self.depth)):
            self.upsamplers.append(nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2))
            self.decoders.append(_DoubleConv(2 * widths[k], widths[k]))
        self.head = nn.Conv2d(widths[0], self.out_channels, 1)

    @property
    def architecture(self) -> dict:
        """The constructor arguments; ``UNet(**model.architecture)`` rebuilds the same network."""
        return {
            "depth": self.depth,
            "base_features": self.base_features,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
        }

    def check_size(self, height: int, width: int) -> None:
        """Raise ConfigError unless ``height`` and ``width`` are divisible by ``2**depth``."""
        factor = 2**self.depth
        if height % factor or width % factor:
            raise ConfigError(
                f"UNet of depth {self.depth} needs image height and width divisible by "
                f"2**{self.depth} = {factor}, got {height} x {width}; lower model.generator.depth"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Enhance a batch ``(N, in_channels, H, W)``; returns ``(N, out_channels, H, W)``."""
        self.check_size(x.shape[-2], x.shape[-1])
        skips = []
        for k, encoder in enumerate(self.encoders):
            if k > 0:
                x = self.pool(x)
            x = encoder(x)
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip connection
        for upsample, decoder in zip(self.upsamplers, self.decoders, strict=True):
            x = decoder(torch.cat([skips.pop(), upsample(x)], dim=1))
        return self.head(x)
