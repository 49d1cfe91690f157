"""Image-steps per second of one fine-tune step (G step + D step), BasicSR-style vs advmri's.

(a) ``basicsr``: a plain eager fp32 step written the way BasicSR's SRGANModel /
    Real-ESRGAN's RealESRGANModel.optimize_parameters write it: D frozen by a loop over its
    parameters, G loss summed from pixel + perceptual + GAN terms, one backward; then D's real and
    fake losses backpropagated separately on ``output.detach().clone()``; every loss turned into a
    Python float each step for logging (``reduce_loss_dict``).
(b) ``advmri``: :func:`advmri.train.loop.training_step` as the training loop calls it, with its
    compute switches (bf16 autocast and channels_last on CUDA; none apply on CPU) and loss terms
    kept on the device (no host sync per step).

Both use the same networks, weights, data and optimiser settings. Prints one line per variant and
the ratio (b)/(a), and writes a CSV (``--out``).

    python benchmarks/train_step.py --device cpu --warmup 1 --steps 3
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from advmri.models import PerceptualLoss, UNet, UNetDiscriminatorSN
from advmri.train.loop import training_step


def basicsr_style_step(net_g, net_d, opt_g, opt_d, perceptual, lq, gt, w_per, w_adv):
    """One iteration the way BasicSR/Real-ESRGAN's optimize_parameters writes it (fp32, eager)."""
    for p in net_d.parameters():
        p.requires_grad = False
    opt_g.zero_grad()
    output = net_g(lq)
    loss_dict = {}
    l_g_total = 0
    l_g_pix = F.l1_loss(output, gt)
    l_g_total += l_g_pix
    loss_dict["l_g_pix"] = l_g_pix
    l_g_percep = perceptual(output, gt) * w_per
    l_g_total += l_g_percep
    loss_dict["l_g_percep"] = l_g_percep
    fake_g_pred = net_d(output)
    l_g_gan = F.binary_cross_entropy_with_logits(fake_g_pred, torch.ones_like(fake_g_pred)) * w_adv
    l_g_total += l_g_gan
    loss_dict["l_g_gan"] = l_g_gan
    l_g_total.backward()
    opt_g.step()

    for p in net_d.parameters():
        p.requires_grad = True
    opt_d.zero_grad()
    real_d_pred = net_d(gt)
    l_d_real = F.binary_cross_entropy_with_logits(real_d_pred, torch.ones_like(real_d_pred))
    loss_dict["l_d_real"] = l_d_real
    loss_dict["out_d_real"] = torch.mean(real_d_pred.detach())
    l_d_real.backward()
    fake_d_pred = net_d(output.detach().clone())
    l_d_fake = F.binary_cross_entropy_with_logits(fake_d_pred, torch.zeros_like(fake_d_pred))
    loss_dict["l_d_fake"] = l_d_fake
    loss_dict["out_d_fake"] = torch.mean(fake_d_pred.detach())
    l_d_fake.backward()
    opt_d.step()
    return {name: value.mean().item() for name, value in loss_dict.items()}  # reduce_loss_dict


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--height", type=int, default=208)
    parser.add_argument("--width", type=int, default=176)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--base-features", type=int, default=64)
    parser.add_argument("--num-feat", type=int, default=64)
    parser.add_argument(
        "--layers", default="conv1_2,conv2_2,conv3_4,conv4_4,conv5_4", help="VGG19 layers"
    )
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/train_step.csv")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    layers = args.layers.split(",")
    weights = [0.1 if name in ("conv1_2", "conv2_2") else 1.0 for name in layers]
    w_per, w_adv, lr = 1.0, 0.1, 0.001

    torch.manual_seed(0)
    net_g = UNet(args.depth, args.base_features)
    net_d = UNetDiscriminatorSN(1, args.num_feat)
    perceptual = PerceptualLoss(layers, weights, weights="random", seed=0).to(device)
    lq = torch.rand(args.batch, 1, args.height, args.width, device=device)
    gt = torch.rand(args.batch, 1, args.height, args.width, device=device)

    def fresh():
        g, d = copy.deepcopy(net_g).to(device), copy.deepcopy(net_d).to(device)
        return (
            g,
            d,
            torch.optim.Adam(g.parameters(), lr, betas=(0.9, 0.999)),
            torch.optim.Adam(d.parameters(), lr, betas=(0.9, 0.999)),
        )

    def sync():
        if cuda:
            torch.cuda.synchronize()

    ga, da, opt_ga, opt_da = fresh()
    perceptual_a = copy.deepcopy(perceptual)

    def basicsr_step():
        basicsr_style_step(ga, da, opt_ga, opt_da, perceptual_a, lq, gt, w_per, w_adv)

    bf16 = cuda and args.bf16
    memory_format = torch.channels_last if cuda and args.channels_last else torch.contiguous_format
    g, d, opt_g, opt_d = fresh()
    for module in (g, d, perceptual):
        module.to(memory_format=memory_format)
    lq_b, gt_b = (t.contiguous(memory_format=memory_format) for t in (lq, gt))

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    sums: dict[str, torch.Tensor] = {}

    def project_step():
        terms = training_step(
            g,
            opt_g,
            lq_b,
            gt_b,
            w_per=w_per,
            w_adv=w_adv,
            perceptual=perceptual,
            discriminator=d,
            opt_d=opt_d,
            autocast=autocast,
        )
        for key, value in terms.items():
            sums[key] = sums.get(key, 0) + value

    # interleave the variants step by step so that a drifting machine load hits both alike
    step_seconds: dict[str, list[float]] = {"basicsr": [], "advmri": []}
    for round_ in range(args.warmup + args.steps):
        for variant, step in (("basicsr", basicsr_step), ("advmri", project_step)):
            sync()
            started = time.perf_counter()
            step()
            sync()
            if round_ >= args.warmup:
                step_seconds[variant].append(time.perf_counter() - started)
    seconds_a = statistics.median(step_seconds["basicsr"]) * args.steps
    seconds_b = statistics.median(step_seconds["advmri"]) * args.steps

    rows = []
    for variant, seconds, precision in (
        ("basicsr", seconds_a, "fp32"),
        ("advmri", seconds_b, "bf16" if bf16 else "fp32"),
    ):
        rate = args.batch * args.steps / seconds
        rows.append(
            {
                "variant": variant,
                "device": str(device),
                "precision": precision,
                "channels_last": variant == "advmri" and memory_format == torch.channels_last,
                "batch": args.batch,
                "height": args.height,
                "width": args.width,
                "depth": args.depth,
                "base_features": args.base_features,
                "num_feat": args.num_feat,
                "layers": args.layers,
                "threads": torch.get_num_threads(),
                "warmup": args.warmup,
                "steps": args.steps,
                "median_step_seconds": round(seconds / args.steps, 4),
                "image_steps_per_s": round(rate, 4),
                "torch": str(torch.__version__),
            }
        )
        print(
            f"{variant:8s} {device} {precision}: {rate:.3f} image-steps/s "
            f"({seconds / args.steps:.3f} s/step)"
        )
    ratio = rows[1]["image_steps_per_s"] / rows[0]["image_steps_per_s"]
    print(f"ratio advmri / basicsr: {ratio:.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "ratio_to_basicsr"])
        writer.writeheader()
        for row in rows:
            row["ratio_to_basicsr"] = round(
                row["image_steps_per_s"] / rows[0]["image_steps_per_s"], 4
            )
            writer.writerow(row)


if __name__ == "__main__":
    main()
