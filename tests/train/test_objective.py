"""The objective of study §4, checked against hand-written formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from advmri.models import UNetDiscriminatorSN
from advmri.train.objective import (
    GAN_LOSSES,
    bce_fake,
    bce_real,
    discriminator_loss,
    generator_loss,
)


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
    adv = -F.logsigmoid(d(fake)).mean()  # -E log D(G(LQ)), Eq. 3
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


def _uneven_logits() -> torch.Tensor:
    """Two images' logit maps, non-uniform within each image (where the two reductions differ)."""
    torch.manual_seed(1)
    return torch.randn(2, 1, 8, 8) * 3.0 + torch.tensor([0.5, -1.0]).view(2, 1, 1, 1)


def test_image_gan_loss_is_bce_of_each_images_mean_logit_and_differs_from_pixel():
    logits = _uneven_logits()
    means = logits.mean(dim=(1, 2, 3))
    assert torch.allclose(bce_real(logits, "image"), -F.logsigmoid(means).mean())
    assert torch.allclose(bce_fake(logits, "image"), -F.logsigmoid(-means).mean())
    assert torch.allclose(bce_real(logits, "pixel"), -F.logsigmoid(logits).mean())
    # log sigmoid is concave: the mean of per-pixel losses exceeds the loss of the mean logit
    assert bce_real(logits, "pixel") > bce_real(logits, "image") + 0.1
    assert bce_fake(logits, "pixel") > bce_fake(logits, "image") + 0.1


def test_both_gan_losses_agree_on_a_map_that_is_uniform_per_image():
    logits = torch.tensor([0.7, -2.0]).view(2, 1, 1, 1).expand(2, 1, 8, 8)
    for bce in (bce_real, bce_fake):
        assert torch.allclose(bce(logits, "pixel"), bce(logits, "image"))


def test_both_gan_losses_push_every_logit_the_same_way():
    for bce, sign in ((bce_real, -1.0), (bce_fake, 1.0)):  # real: raise logits; fake: lower them
        grads = {}
        for gan_loss in GAN_LOSSES:
            logits = _uneven_logits().requires_grad_(True)
            bce(logits, gan_loss).backward()
            grads[gan_loss] = logits.grad
        for grad in grads.values():
            assert (torch.sign(grad) == sign).all()
        # image: every pixel of an image gets the same gradient (only the image's mean counts)
        image = grads["image"].flatten(start_dim=1)
        assert torch.allclose(image, image[:, :1].expand_as(image))


def test_gan_loss_reaches_the_generator_and_discriminator_losses():
    d, fake, hq = _setup()
    losses = {}
    for gan_loss in GAN_LOSSES:
        _, g_terms = generator_loss(fake, hq, w_adv=0.2, discriminator=d, gan_loss=gan_loss)
        d_loss, _ = discriminator_loss(d, hq, fake, gan_loss)
        losses[gan_loss] = (g_terms["adversarial"], d_loss)
    image_map = d(fake).mean(dim=(1, 2, 3))
    assert torch.allclose(losses["image"][0], -F.logsigmoid(image_map).mean(), rtol=1e-5)
    assert not torch.allclose(losses["image"][0], losses["pixel"][0])
    assert not torch.allclose(losses["image"][1], losses["pixel"][1])


def test_an_unknown_gan_loss_is_refused_naming_the_key():
    with pytest.raises(ValueError, match="objective.gan_loss = 'mean'"):
        bce_real(_uneven_logits(), "mean")
