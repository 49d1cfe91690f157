"""The eager fp32 fine-tune step written the way BasicSR / Real-ESRGAN write it: the baseline.

:func:`basicsr_style_step` follows ``SRGANModel.optimize_parameters`` of BasicSR (which
Real-ESRGAN's ``RealESRGANModel`` inherits): D frozen by a loop over its parameters, the G loss
summed from the pixel, perceptual and GAN terms and backpropagated once; then D's real and fake
losses backpropagated one after the other on ``output.detach().clone()``; every loss turned into a
Python float each step for logging (``reduce_loss_dict``), which waits for the GPU.

Real-ESRGAN also keeps an EMA copy of G (``ema_decay`` 0.999); the baseline leaves it out,
so it is, if anything, faster than the real thing, and the measured speed-up understated.

It is the reference the project's :func:`advmri.train.loop.training_step` is checked against
(same losses and parameters, tests/train/test_fast_step.py) and timed against
(benchmarks/train_step.py). The training loop never calls it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def basicsr_style_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    perceptual: nn.Module,
    lq: torch.Tensor,
    hq: torch.Tensor,
    w_per: float,
    w_adv: float,
) -> dict[str, float]:
    """One G step and one D step, eager fp32; returns the loss terms as Python floats.

    The terms use the project's names (``l1``, ``perceptual``, ``adversarial``, ``total``,
    ``discriminator``, ``d_real``, ``d_fake``), unweighted, so they compare one to one with
    :func:`advmri.train.loop.training_step`.
    """
    for parameter in discriminator.parameters():
        parameter.requires_grad = False
    opt_g.zero_grad()
    output = generator(lq)
    l_g_pix = F.l1_loss(output, hq)
    l_g_percep = perceptual(output, hq)
    fake_g_pred = discriminator(output)
    l_g_gan = F.binary_cross_entropy_with_logits(fake_g_pred, torch.ones_like(fake_g_pred))
    l_g_total = l_g_pix + w_per * l_g_percep + w_adv * l_g_gan
    l_g_total.backward()
    opt_g.step()

    for parameter in discriminator.parameters():
        parameter.requires_grad = True
    opt_d.zero_grad()
    real_d_pred = discriminator(hq)
    l_d_real = F.binary_cross_entropy_with_logits(real_d_pred, torch.ones_like(real_d_pred))
    l_d_real.backward()
    fake_d_pred = discriminator(output.detach().clone())
    l_d_fake = F.binary_cross_entropy_with_logits(fake_d_pred, torch.zeros_like(fake_d_pred))
    l_d_fake.backward()
    opt_d.step()
    terms = {
        "l1": l_g_pix,
        "perceptual": l_g_percep,
        "adversarial": l_g_gan,
        "total": l_g_total,
        "discriminator": l_d_real + l_d_fake,
        "d_real": real_d_pred.detach().mean(),
        "d_fake": fake_d_pred.detach().mean(),
    }
    return {name: value.item() for name, value in terms.items()}  # a host sync per term
