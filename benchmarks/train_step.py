"""Image-steps per second of one fine-tune step: the eager BasicSR-style baseline vs advmri's step.

Variants, timed in one run on the same networks, weights, data and optimiser settings:

* ``basicsr``: :func:`advmri.train.baseline.basicsr_style_step`, eager fp32, the batch copied
  from host memory each step (BasicSR's ``feed_data``), every loss read back each step.
* ``advmri``: :func:`advmri.train.loop.training_step` with every switch of ``compute`` that
  applies on the device (CUDA: bf16 autocast, channels_last, fused Adam, the split held on the
  device; CPU: fp32, torch threads), losses summed on the device and read once per "epoch".
* ``advmri-<switch>``: the same with one switch off, to measure what each is worth (CUDA), and
  ``advmri+compile`` with ``--compile``. On CPU, ``advmri+channels_last`` shows whether
  channels_last helps there.

FLOPs of one step are counted with ``torch.utils.flop_counter.FlopCounterMode``; the achieved
TFLOP/s is compared with the GPU's dense bf16 peak (``--peak-tflops``; H100/H200 SXM: 989).
Prints a table and writes a CSV (``--out``).

    python benchmarks/train_step.py --device cpu --warmup 1 --steps 3
    python benchmarks/train_step.py --device cuda --batch 16 --warmup 10 --steps 50 --compile
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
from torch.utils.flop_counter import FlopCounterMode

from advmri.models import PerceptualLoss, UNet, UNetDiscriminatorSN
from advmri.train.baseline import basicsr_style_step
from advmri.train.loop import training_step

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, by device-name substring.
BF16_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.1}
CUDA_SWITCHES = ("bf16", "channels_last", "fused_adam", "data_on_device")


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


class Bench:
    """Networks, a host-memory training split and one step function per variant."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        self.args, self.device = args, device
        layers = args.layers.split(",")
        weights = [0.1 if name in ("conv1_2", "conv2_2") else 1.0 for name in layers]
        torch.manual_seed(0)
        self.net_g = UNet(args.depth, args.base_features)
        self.net_d = UNetDiscriminatorSN(1, args.num_feat)
        self.perceptual = PerceptualLoss(layers, weights, weights="random", seed=0)
        # a split of `pool` images in host memory, as the loaders hand it over
        self.pool_lq = torch.rand(args.pool, 1, args.height, args.width)
        self.pool_hq = torch.rand(args.pool, 1, args.height, args.width)
        self.w_per, self.w_adv, self.lr = 1.0, 0.1, 1e-3

    def batches(self):
        """Index batches of the pool, cycling, like an epoch's shuffled order."""
        start = 0
        while True:
            index = torch.arange(start, start + self.args.batch) % self.args.pool
            start += self.args.batch
            yield index

    def baseline(self):
        g, d = copy.deepcopy(self.net_g).to(self.device), copy.deepcopy(self.net_d).to(self.device)
        perceptual = copy.deepcopy(self.perceptual).to(self.device)
        opt_g = torch.optim.Adam(g.parameters(), self.lr, betas=(0.9, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), self.lr, betas=(0.9, 0.999))
        order = self.batches()

        def step():
            index = next(order)
            lq = self.pool_lq[index].to(self.device)
            hq = self.pool_hq[index].to(self.device)
            basicsr_style_step(g, d, opt_g, opt_d, perceptual, lq, hq, self.w_per, self.w_adv)

        return step

    def project(self, switches: dict[str, bool], compile_: bool = False):
        cuda = self.device.type == "cuda"
        memory_format = (
            torch.channels_last if switches.get("channels_last") else torch.contiguous_format
        )
        g, d = copy.deepcopy(self.net_g), copy.deepcopy(self.net_d)
        perceptual = copy.deepcopy(self.perceptual)
        for module in (g, d, perceptual):
            module.to(device=self.device, memory_format=memory_format)
        fused = True if cuda and switches.get("fused_adam") else None
        opt_g = torch.optim.Adam(g.parameters(), self.lr, betas=(0.9, 0.999), fused=fused)
        opt_d = torch.optim.Adam(d.parameters(), self.lr, betas=(0.9, 0.999), fused=fused)
        g_forward = torch.compile(g) if compile_ else g
        d_forward = torch.compile(d) if compile_ else d
        on_device = switches.get("data_on_device", False)
        pool_lq, pool_hq = self.pool_lq, self.pool_hq
        if on_device:
            pool_lq, pool_hq = pool_lq.to(self.device), pool_hq.to(self.device)
        bf16 = cuda and switches.get("bf16", False)

        def autocast():
            return (
                torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            )

        order = self.batches()
        sums: dict[str, torch.Tensor] = {}

        def step():
            index = next(order)
            if on_device:
                index = index.to(self.device, non_blocking=True)
            lq = pool_lq[index].to(self.device, non_blocking=True)
            hq = pool_hq[index].to(self.device, non_blocking=True)
            terms = training_step(
                g_forward,
                opt_g,
                lq.contiguous(memory_format=memory_format),
                hq.contiguous(memory_format=memory_format),
                w_per=self.w_per,
                w_adv=self.w_adv,
                perceptual=perceptual,
                discriminator=d_forward,
                opt_d=opt_d,
                autocast=autocast,
            )
            for key, value in terms.items():  # on the device; the loop reads them once an epoch
                sums[key] = sums.get(key, 0) + value.double()

        return step


def write_rows(rows: list[dict], out: Path) -> None:
    """The benchmark's table as a CSV (one row per dict, columns of the first)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out}")


def count_flops(step) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pool", type=int, default=64, help="images in the host-memory split")
    parser.add_argument("--height", type=int, default=208)
    parser.add_argument("--width", type=int, default=176)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--base-features", type=int, default=64)
    parser.add_argument("--num-feat", type=int, default=64)
    parser.add_argument(
        "--layers", default="conv1_2,conv2_2,conv3_4,conv4_4,conv5_4", help="VGG19 layers"
    )
    parser.add_argument("--ablations", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 dense peak")
    parser.add_argument("--out", default="benchmarks/results/train_step.csv")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    bench = Bench(args, device)

    if cuda:
        full = dict.fromkeys(CUDA_SWITCHES, True)
        variants = {"basicsr": bench.baseline(), "advmri": bench.project(full)}
        if args.ablations:
            for switch in CUDA_SWITCHES:
                variants[f"advmri-{switch}"] = bench.project({**full, switch: False})
        if args.compile:
            variants["advmri+compile"] = bench.project(full, compile_=True)
    else:
        variants = {"basicsr": bench.baseline(), "advmri": bench.project({})}
        if args.ablations:
            variants["advmri+channels_last"] = bench.project({"channels_last": True})

    def sync():
        if cuda:
            torch.cuda.synchronize()

    flops = count_flops(bench.project({}))  # the step's arithmetic, whatever the precision
    # interleave the variants step by step so that a drifting machine load hits all alike
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.warmup + args.steps):
        for name, step in variants.items():
            sync()
            started = time.perf_counter()
            step()
            sync()
            if round_ >= args.warmup:
                seconds[name].append(time.perf_counter() - started)

    peak = peak_tflops(device, args.peak_tflops)
    device_name = torch.cuda.get_device_name(device) if cuda else f"cpu x{torch.get_num_threads()}"
    rows = []
    for name, times in seconds.items():
        step_s = statistics.median(times)
        tflops = flops / step_s / 1e12
        rows.append(
            {
                "variant": name,
                "device": device_name,
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
                "median_step_seconds": round(step_s, 5),
                "image_steps_per_s": round(args.batch / step_s, 4),
                "gflop_per_image_step": round(flops / args.batch / 1e9, 3),
                "achieved_tflops": round(tflops, 4),
                "bf16_peak_tflops": peak if peak else "",
                "fraction_of_peak": round(tflops / peak, 4) if peak else "",
                "torch": str(torch.__version__),
            }
        )
    base_rate = rows[0]["image_steps_per_s"]
    print(
        f"{device_name}, batch {args.batch}, {args.height}x{args.width}, {flops / 1e9:.1f} GFLOP/step"
    )
    print(f"{'variant':24s} {'img-steps/s':>12s} {'s/step':>9s} {'TFLOP/s':>9s} {'x basicsr':>9s}")
    for row in rows:
        row["ratio_to_basicsr"] = round(row["image_steps_per_s"] / base_rate, 4)
        print(
            f"{row['variant']:24s} {row['image_steps_per_s']:12.3f} "
            f"{row['median_step_seconds']:9.4f} {row['achieved_tflops']:9.3f} "
            f"{row['ratio_to_basicsr']:9.3f}"
        )
    write_rows(rows, Path(args.out))


if __name__ == "__main__":
    main()
