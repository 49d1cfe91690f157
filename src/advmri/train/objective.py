"""The study's objective, study §4 (Javadi et al. 2024, Eq. 1-5).

Every adversarial term is binary cross-entropy with logits on D's per-pixel logit map, averaged over
the map and the batch (Real-ESRGAN's vanilla GAN loss on the U-Net discriminator):

* J_adv = BCE(D(G(LR)), real): the non-saturating generator loss, -E log sigmoid(D(G(LR))).
* J_D = BCE(D(HR), real) + BCE(D(G(LR).detach()), fake).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    """-E log sigmoid(logits): cross-entropy of a logit map against the label "real"."""
    return F.binary_cross_entropy_with_logits(logits.float(), torch.ones_like(logits.float()))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    """-E log(1 - sigmoid(logits)): cross-entropy of a logit map against the label "fake"."""
    return F.binary_cross_entropy_with_logits(logits.float(), torch.zeros_like(logits.float()))


def generator_loss(
    fake: torch.Tensor,
    hq: torch.Tensor,
    *,
    w_per: float = 0.0,
    w_adv: float = 0.0,
    perceptual: nn.Module | None = None,
    discriminator: nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """J_total = J_mie + W_per * J_per + W_adv * J_adv (Eq. 5) and its terms.

    Parameters
    ----------
    fake : G(LR), (N, 1, H, W).
    hq : HR, (N, 1, H, W).
    w_per, w_adv : the cell's weights; a zero weight skips its term (no VGG / D forward).
    perceptual, discriminator : needed when their weight is > 0.

    Returns
    -------
    total : scalar tensor to backpropagate.
    terms : detached scalars ``l1``, ``perceptual``, ``adversarial`` (those computed), ``total``.
    """
    l1 = F.l1_loss(fake.float(), hq.float())  # J_mie, Eq. 1
    total = l1
    terms = {"l1": l1.detach()}
    if w_per > 0:
        if perceptual is None:
            raise ValueError("w_per > 0 needs a perceptual loss module")
        per = perceptual(fake, hq)  # J_per, Eq. 2
        total = total + w_per * per
        terms["perceptual"] = per.detach()
    if w_adv > 0:
        if discriminator is None:
            raise ValueError("w_adv > 0 needs a discriminator")
        adv = bce_real(discriminator(fake))  # J_adv, Eq. 3: G wants D to say "real"
        total = total + w_adv * adv
        terms["adversarial"] = adv.detach()
    terms["total"] = total.detach()
    return total, terms


def discriminator_loss(
    discriminator: nn.Module, hq: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """J_D = -E log D(HR) - E log(1 - D(G(LR))) (Eq. 4), with G(LR) detached.

    Returns
    -------
    loss : scalar tensor to backpropagate into D only.
    terms : detached ``discriminator`` (J_D), ``d_real`` and ``d_fake`` (mean logits: D's mean
        realness scores of the real and the enhanced images).
    """
    real_logits = discriminator(hq)
    fake_logits = discriminator(fake.detach())
    loss = bce_real(real_logits) + bce_fake(fake_logits)
    return loss, {
        "discriminator": loss.detach(),
        "d_real": real_logits.detach().float().mean(),
        "d_fake": fake_logits.detach().float().mean(),
    }
