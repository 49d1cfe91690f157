"""The study's objective, study §4 (Javadi et al. 2024, Eq. 1-5).

Every adversarial term is binary cross-entropy with logits on D's per-pixel logit map, reduced to one
number per batch in one of two ways (``objective.gan_loss``, a [choice]: the paper "takes an average
over this map" without saying whether of the logits or of the losses):

* ``pixel`` (default): BCE of every pixel's logit, averaged over the map and the batch (Real-ESRGAN's
  vanilla GAN loss on the U-Net discriminator, and BasicSR's, see ``baseline.py``).
* ``image``: BCE of each image's mean logit (D's realness score of the image), averaged over the batch.

With ``bce`` one of these:

* J_adv = bce(D(G(LQ)), real): the non-saturating generator loss, -E log sigmoid(D(G(LQ))).
* J_D = bce(D(HQ), real) + bce(D(G(LQ).detach()), fake).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Values of ``objective.gan_loss``: how a per-pixel logit map becomes one adversarial loss.
GAN_LOSSES = ("pixel", "image")


def _scored(logits: torch.Tensor, gan_loss: str) -> torch.Tensor:
    """The logits the BCE is taken over: the map itself (``pixel``) or each image's mean (``image``)."""
    logits = logits.float()
    if gan_loss == "pixel":
        return logits
    if gan_loss == "image":
        return logits.flatten(start_dim=1).mean(dim=1)  # (N,): D's realness score per image
    raise ValueError(f"objective.gan_loss = {gan_loss!r}; use one of {', '.join(GAN_LOSSES)}")


def bce_real(logits: torch.Tensor, gan_loss: str = "pixel") -> torch.Tensor:
    """Cross-entropy of a logit map against the label "real".

    ``pixel``: -mean over pixels and images of log sigmoid(logit); ``image``: -mean over images of
    log sigmoid(mean logit of the image). Equal for a map that is uniform within each image.
    """
    scored = _scored(logits, gan_loss)
    return F.binary_cross_entropy_with_logits(scored, torch.ones_like(scored))


def bce_fake(logits: torch.Tensor, gan_loss: str = "pixel") -> torch.Tensor:
    """Cross-entropy of a logit map against the label "fake" (log(1 - sigmoid)), as ``bce_real``."""
    scored = _scored(logits, gan_loss)
    return F.binary_cross_entropy_with_logits(scored, torch.zeros_like(scored))


def generator_loss(
    fake: torch.Tensor,
    hq: torch.Tensor,
    *,
    w_per: float = 0.0,
    w_adv: float = 0.0,
    perceptual: nn.Module | None = None,
    discriminator: nn.Module | None = None,
    gan_loss: str = "pixel",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """J_total = J_L1 + W_per * J_per + W_adv * J_adv (Eq. 5) and its terms.

    Parameters
    ----------
    fake : G(LQ), the enhanced LQ input, (N, 1, H, W).
    hq : HQ (the ground truth), (N, 1, H, W).
    w_per, w_adv : the cell's weights; a zero weight skips its term (no VGG / D forward).
    perceptual, discriminator : needed when their weight is > 0.
    gan_loss : ``pixel`` or ``image`` (``objective.gan_loss``): how J_adv reduces D's logit map.

    Returns
    -------
    total : scalar tensor to backpropagate.
    terms : detached scalars ``l1``, ``perceptual``, ``adversarial`` (those computed), ``total``.
    """
    l1 = F.l1_loss(fake.float(), hq.float())  # J_L1, Eq. 1
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
        adv = bce_real(discriminator(fake), gan_loss)  # J_adv, Eq. 3: G wants D to say "real"
        total = total + w_adv * adv
        terms["adversarial"] = adv.detach()
    terms["total"] = total.detach()
    return total, terms


def discriminator_loss(
    discriminator: nn.Module, hq: torch.Tensor, fake: torch.Tensor, gan_loss: str = "pixel"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """J_D = -E log D(HQ) - E log(1 - D(G(LQ))) (Eq. 4), with G(LQ) detached.

    ``gan_loss`` reduces D's logit maps as in :func:`generator_loss` (``pixel`` or ``image``).

    Returns
    -------
    loss : scalar tensor to backpropagate into D only.
    terms : detached ``discriminator`` (J_D), ``d_real`` and ``d_fake`` (mean logits: D's mean
        realness scores of the real and the enhanced images).
    """
    real_logits = discriminator(hq)
    fake_logits = discriminator(fake.detach())
    loss = bce_real(real_logits, gan_loss) + bce_fake(fake_logits, gan_loss)
    return loss, {
        "discriminator": loss.detach(),
        "d_real": real_logits.detach().float().mean(),
        "d_fake": fake_logits.detach().float().mean(),
    }
