"""The objective of study §4, checked against hand-written formulas."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from advmri.models import UNetDiscriminatorSN
from advmri.train.objective import discriminator_loss, generator_loss


def _setup():
    torch.manual_seed(0)
    d = UNetDiscriminatorSN(1, num_feat=4)
    for _ in range(20):  # converge spectral norm's power iteration, then freeze it (eval)
        d(torch.rand(1, 1, 16, 16))
    d.eval()
    return d, torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)


def test_generator_loss_is_l1_plus_weighted_perceptual_plus_weighted_non_saturating_term():
    d, fake, hq = _setup()

    def perceptual(a, b):
        return ((a - b) ** 2).mean() * 3.0

    total, terms = generator_loss(
        fake, hq, w_per=0.7, w_adv=0.2, perceptual=perceptual, discriminator=d
    )
    adv = -F.logsigmoid(d(fake)).mean()  # -E log D(G(LR)), Eq. 3
    expected = (fake - hq).abs().mean() + 0.7 * perceptual(fake, hq) + 0.2 * adv
    assert torch.allclose(total, expected, rtol=1e-5)
    assert torch.allclose(terms["adversarial"], adv, rtol=1e-5)


def test_discriminator_loss_is_eq4_on_real_and_detached_fake():
    d, fake, hq = _setup()
    fake.requires_grad_(True)
    loss, terms = discriminator_loss(d, hq, fake)
    expected = (
        -torch.log(torch.sigmoid(d(hq))).mean() - torch.log(1 - torch.sigmoid(d(fake))).mean()
    )
    assert torch.allclose(loss, expected, rtol=1e-4)
    loss.backward()
    assert fake.grad is None  # no gradient reaches G through D's loss
    assert torch.allclose(terms["d_real"], d(hq).mean())


def test_zero_adversarial_weight_needs_no_discriminator_and_adds_no_term():
    _, fake, hq = _setup()
    total, terms = generator_loss(fake, hq, w_per=0.0, w_adv=0.0)
    assert set(terms) == {"l1", "total"}
    assert torch.allclose(total, F.l1_loss(fake, hq))
