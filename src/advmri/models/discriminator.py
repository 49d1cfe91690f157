"""The discriminator D: Real-ESRGAN's U-Net discriminator with spectral normalisation.

Wang et al. 2021 (Real-ESRGAN), ``UNetDiscriminatorSN`` in BasicSR/Real-ESRGAN; rewritten here for
1-channel input (study §3). D returns a per-pixel realness *logit* map of the input's size; its
mean is the image's realness score.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from advmri.errors import ConfigError


def _sn_conv(in_ch: int, out_ch: int, kernel: int, stride: int) -> nn.Module:
    # Spectral norm bounds each layer's Lipschitz constant, which keeps D's gradients to G tame;
    # bias is dropped as in Real-ESRGAN.
    return spectral_norm(nn.Conv2d(in_ch, out_ch, kernel, stride, 1, bias=False))


def discriminator_arguments(discriminator: Mapping) -> dict:
    """``UNetDiscriminatorSN``'s arguments from the config's ``model.discriminator`` section.

    The config's ``width`` is the constructor's ``num_feat`` (Real-ESRGAN's name), so the
    networks' settings (and their hash) do not depend on the config's vocabulary.
    """
    return {"num_feat": discriminator["width"], "skip_connection": discriminator["skip_connection"]}


class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator: 3 stride-2 downsamplings, bilinear upsampling with additive skips.

    Layers (``f = num_feat``): 3x3 conv in->f (no spectral norm); three 4x4 stride-2 spectral-normed
    convs f->2f->4f->8f; three (bilinear x2 upsample, spectral-normed 3x3 conv) steps 8f->4f->2f->f,
    each adding the encoder feature of that resolution when ``skip_connection``; two more
    spectral-normed 3x3 convs f->f; a last 3x3 conv f->1 without spectral norm. LeakyReLU(0.2)
    after every conv but the last.

    Parameters
    ----------
    in_channels : int
        1 for this project's grey images.
    num_feat : int
        ``f`` above (64 in Real-ESRGAN and the paper): the config's ``model.discriminator.width``.
    skip_connection : bool
        Add encoder features in the decoder (Real-ESRGAN default True).

    Notes
    -----
    Height and width must be divisible by 8 (three stride-2 convolutions then three x2
    upsamplings); 208 x 176 is.
    """

    def __init__(self, in_channels: int = 1, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        if int(num_feat) != num_feat or num_feat < 1:
            raise ConfigError(f"model.discriminator.width = {num_feat!r} must be an integer >= 1")
        f = int(num_feat)
        self.in_channels = int(in_channels)
        self.num_feat = f
        self.skip_connection = bool(skip_connection)
        self.conv0 = nn.Conv2d(in_channels, f, 3, 1, 1)
        self.down1 = _sn_conv(f, 2 * f, 4, 2)
        self.down2 = _sn_conv(2 * f, 4 * f, 4, 2)
        self.down3 = _sn_conv(4 * f, 8 * f, 4, 2)
        self.up1 = _sn_conv(8 * f, 4 * f, 3, 1)
        self.up2 = _sn_conv(4 * f, 2 * f, 3, 1)
        self.up3 = _sn_conv(2 * f, f, 3, 1)
        self.extra1 = _sn_conv(f, f, 3, 1)
        self.extra2 = _sn_conv(f, f, 3, 1)
        self.last = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Realness logits ``(N, 1, H, W)`` of a batch ``(N, in_channels, H, W)``."""
        height, width = x.shape[-2:]
        if height % 8 or width % 8:
            raise ConfigError(
                f"UNetDiscriminatorSN needs image height and width divisible by 8, "
                f"got {height} x {width}"
            )

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, 0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.down1(x0))
        x2 = act(self.down2(x1))
        x3 = act(self.down3(x2))
        x4 = act(self.up1(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.up2(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.up3(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.extra1(x6))
        out = act(self.extra2(out))
        return self.last(out)
