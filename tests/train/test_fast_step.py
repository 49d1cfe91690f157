"""The project's fine-tune step against the eager BasicSR-style baseline it is timed against.

Same networks, weights and batches: fp32 must give the same losses and parameters (to fp32
rounding); the switches of the fast step (fused Adam, channels_last, bf16 autocast) must stay
within their own tolerance of it.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from advmri.models import PerceptualLoss, UNet, UNetDiscriminatorSN
from advmri.train.baseline import basicsr_style_step
from advmri.train.loop import training_step

W_PER, W_ADV, LR, STEPS = 1.0, 0.1, 1e-3, 3
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here"),
    ),
]


@pytest.fixture(autouse=True)
def deterministic_cudnn():
    # cuDNN's autotuned kernels sum in varying order; Adam turns that noise into LR-sized steps
    previous = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous


def make_nets(device: str):
    torch.manual_seed(0)
    generator = UNet(depth=2, base_features=4)
    discriminator = UNetDiscriminatorSN(1, num_feat=4)
    perceptual = PerceptualLoss(["conv1_2", "conv2_2"], [0.1, 1.0], weights="random", seed=0)
    batches = [(torch.rand(4, 1, 32, 32), torch.rand(4, 1, 32, 32)) for _ in range(STEPS)]
    return (
        generator.to(device),
        discriminator.to(device),
        perceptual.to(device),
        [(lq.to(device), hq.to(device)) for lq, hq in batches],
    )


def run_baseline(device: str, optimizer=torch.optim.Adam):
    generator, discriminator, perceptual, batches = make_nets(device)
    opt_g = optimizer(generator.parameters(), lr=LR)
    opt_d = optimizer(discriminator.parameters(), lr=LR)
    losses = [
        basicsr_style_step(generator, discriminator, opt_g, opt_d, perceptual, lq, hq, W_PER, W_ADV)
        for lq, hq in batches
    ]
    return losses, generator, discriminator


def run_fast(
    device: str,
    optimizer=torch.optim.Adam,
    fused: bool | None = None,
    channels_last: bool = False,
    bf16: bool = False,
):
    generator, discriminator, perceptual, batches = make_nets(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for module in (generator, discriminator, perceptual):
        module.to(memory_format=memory_format)
    options = {"fused": fused} if fused is not None else {}
    opt_g = optimizer(generator.parameters(), lr=LR, **options)
    opt_d = optimizer(discriminator.parameters(), lr=LR, **options)

    def autocast():
        if bf16:
            return torch.autocast(device, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    losses = []
    for lq, hq in batches:
        terms = training_step(
            generator,
            opt_g,
            lq.contiguous(memory_format=memory_format),
            hq.contiguous(memory_format=memory_format),
            w_per=W_PER,
            w_adv=W_ADV,
            perceptual=perceptual,
            discriminator=discriminator,
            opt_d=opt_d,
            autocast=autocast,
        )
        losses.append({name: float(value) for name, value in terms.items()})
    return losses, generator, discriminator


def assert_same_losses(fast, baseline, rtol):
    for step, (ours, theirs) in enumerate(zip(fast, baseline, strict=True)):
        assert ours.keys() == theirs.keys()
        for name in ours:
            assert ours[name] == pytest.approx(theirs[name], rel=rtol, abs=rtol * 1e-2), (
                step,
                name,
            )


def parameters(*modules) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten().cpu() for m in modules for p in m.parameters()])


@pytest.mark.parametrize("fused", [None, True], ids=["foreach_adam", "fused_adam"])
@pytest.mark.parametrize("device", DEVICES)
def test_fp32_step_gives_the_baselines_losses_and_parameters(device, fused):
    baseline, g_ref, d_ref = run_baseline(device)
    fast, g, d = run_fast(device, fused=fused)
    assert_same_losses(fast, baseline, rtol=1e-5)
    # Adam moves each weight by about LR per step: 1e-6 is a thousandth of one step
    assert torch.allclose(parameters(g, d), parameters(g_ref, d_ref), atol=1e-6, rtol=0)


def assert_close_updates(update, update_ref, rtol):
    assert (update - update_ref).norm() <= rtol * update_ref.norm()
    assert torch.dot(update, update_ref) > (1 - rtol) * update.norm() * update_ref.norm()


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_step_gives_the_baselines_gradients(device):
    # channels_last sums convolutions in another order: fp32 rounding differs, and Adam would
    # turn a 1e-9 gradient's flipped sign into a full LR step. Plain SGD's update is LR x the
    # gradient, so the updates compare the gradients themselves.
    before = parameters(*make_nets(device)[:2])
    baseline, g_ref, d_ref = run_baseline(device, optimizer=torch.optim.SGD)
    fast, g, d = run_fast(device, optimizer=torch.optim.SGD, channels_last=True)
    assert_same_losses(fast, baseline, rtol=1e-5)
    # 1e-3: an update (~5e-5) read back from weights (~0.1) keeps only ~3 fp32 digits
    assert_close_updates(parameters(g, d) - before, parameters(g_ref, d_ref) - before, 1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_step_stays_within_bf16_tolerance_of_the_fp32_baseline(device):
    # plain SGD again (see above): the updates compare the gradients
    before = parameters(*make_nets(device)[:2])
    baseline, g_ref, d_ref = run_baseline(device, optimizer=torch.optim.SGD)
    fast, g, d = run_fast(device, optimizer=torch.optim.SGD, channels_last=True, bf16=True)
    # bf16 keeps 8 bits of mantissa (relative rounding 2^-8 = 0.4 %) in every layer
    assert_same_losses(fast, baseline, rtol=3e-2)
    assert_close_updates(parameters(g, d) - before, parameters(g_ref, d_ref) - before, 0.05)


def test_a_wrong_step_is_caught():
    # the comparison itself can fail: dropping the perceptual term changes losses and weights
    baseline, g_ref, d_ref = run_baseline("cpu")
    generator, discriminator, perceptual, batches = make_nets("cpu")
    opt_g = torch.optim.Adam(generator.parameters(), lr=LR)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=LR)
    for lq, hq in batches:
        training_step(
            generator,
            opt_g,
            lq,
            hq,
            w_per=0.0,
            w_adv=W_ADV,
            discriminator=discriminator,
            opt_d=opt_d,
        )
    assert not torch.allclose(
        parameters(generator, discriminator), parameters(g_ref, d_ref), atol=1e-6, rtol=0
    )
