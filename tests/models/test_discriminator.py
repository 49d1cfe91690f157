"""Real-ESRGAN's U-Net discriminator with spectral normalisation, 1-channel input."""

from __future__ import annotations

import torch
from torch import nn

from advmri.models import UNetDiscriminatorSN


def _is_spectral_normed(conv: nn.Conv2d) -> bool:
    return hasattr(conv, "weight_orig") and hasattr(conv, "weight_u")


def test_discriminator_returns_a_one_channel_logit_map_of_the_input_size():
    d = UNetDiscriminatorSN(1, num_feat=4)
    assert d(torch.rand(2, 1, 208, 176)).shape == (2, 1, 208, 176)


def test_every_conv_but_the_first_and_last_is_spectral_normed():
    d = UNetDiscriminatorSN(1, num_feat=4)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 10
    assert not _is_spectral_normed(convs[0]) and not _is_spectral_normed(convs[-1])
    assert all(_is_spectral_normed(conv) for conv in convs[1:-1])


def test_downsampling_widths_double_from_num_feat_to_eight_times_num_feat():
    d = UNetDiscriminatorSN(1, num_feat=8)
    assert [d.down1.out_channels, d.down2.out_channels, d.down3.out_channels] == [16, 32, 64]
    assert d.down1.stride == (2, 2) and d.down1.kernel_size == (4, 4)


def test_skip_connections_change_the_output():
    torch.manual_seed(0)
    with_skip = UNetDiscriminatorSN(1, num_feat=4, skip_connection=True)
    without = UNetDiscriminatorSN(1, num_feat=4, skip_connection=False)
    without.load_state_dict(with_skip.state_dict())
    x = torch.rand(1, 1, 16, 16)
    with_skip.eval(), without.eval()
    assert not torch.allclose(with_skip(x), without(x))
