"""How many fine-tune cells one device should run at once: aggregate image-steps/s of 1, 2, 4 jobs.

Each process builds the full-size networks and runs advmri's fine-tune step (benchmarks/
train_step.py's ``advmri`` variant: every switch that applies on the device) on its own batches;
all processes start together after their warm-up and count the steps they finish in the same
``--seconds`` window. One row per process count: aggregate and per-process image-steps/s, peak
GPU memory per process, and the speed-up over one process. On a CPU, each process gets
``cores / processes`` torch threads.

    python benchmarks/concurrent_finetune.py --device cuda --processes 1 2 4 --seconds 60
    python benchmarks/concurrent_finetune.py --device cpu --processes 1 2 --seconds 30 --depth 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import CUDA_SWITCHES, Bench, write_rows  # noqa: E402


def worker(args, threads, barrier, results) -> None:
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    bench = Bench(args, device)
    step = bench.project(dict.fromkeys(CUDA_SWITCHES, True) if cuda else {})
    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    barrier.wait()
    started = time.perf_counter()
    steps = 0
    while time.perf_counter() - started < args.seconds:
        step()
        if cuda:
            torch.cuda.synchronize()  # count finished steps only
        steps += 1
    elapsed = time.perf_counter() - started
    memory = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
    results.put((steps * args.batch / elapsed, memory))


def measure(args, processes: int) -> dict:
    context = mp.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    threads = max(1, (os.cpu_count() or 1) // processes) if args.device == "cpu" else 1
    if args.threads:
        threads = args.threads
    jobs = [
        context.Process(target=worker, args=(args, threads, barrier, results))
        for _ in range(processes)
    ]
    for job in jobs:
        job.start()
    rates = [results.get() for _ in jobs]
    for job in jobs:
        job.join()
        if job.exitcode != 0:
            raise SystemExit(f"a benchmark process failed (exit code {job.exitcode})")
    aggregate = sum(rate for rate, _ in rates)
    return {
        "processes": processes,
        "threads_per_process": threads,
        "aggregate_image_steps_per_s": round(aggregate, 4),
        "per_process_image_steps_per_s": round(aggregate / processes, 4),
        "peak_memory_mib_per_process": round(max(memory for _, memory in rates), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--height", type=int, default=208)
    parser.add_argument("--width", type=int, default=176)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--base-features", type=int, default=64)
    parser.add_argument("--num-feat", type=int, default=64)
    parser.add_argument("--layers", default="conv1_2,conv2_2,conv3_4,conv4_4,conv5_4")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    parser.add_argument("--out", default="benchmarks/results/concurrent_finetune.csv")
    args = parser.parse_args(argv)

    device = torch.cuda.get_device_name(0) if args.device == "cuda" else f"cpu x{os.cpu_count()}"
    rows = [measure(args, n) for n in args.processes]
    single = rows[0]["aggregate_image_steps_per_s"] / rows[0]["processes"]
    print(f"{device}, batch {args.batch}, {args.height}x{args.width}, {args.seconds:g} s window")
    print(f"{'processes':>9s} {'aggregate':>10s} {'per proc':>9s} {'x one':>6s} {'MiB/proc':>9s}")
    for row in rows:
        row["device"] = device
        row["speedup_over_one"] = round(row["aggregate_image_steps_per_s"] / single, 3)
        print(
            f"{row['processes']:9d} {row['aggregate_image_steps_per_s']:10.3f} "
            f"{row['per_process_image_steps_per_s']:9.3f} {row['speedup_over_one']:6.2f} "
            f"{row['peak_memory_mib_per_process']:9.1f}"
        )
    write_rows(rows, Path(args.out))


if __name__ == "__main__":
    main()
