"""What page faults cost a timed forward pass on CPU: the same model with and without ``steady_allocator``.

    python -m benchmarks.allocator_effect --model mbnet --size 128 --runs 20
    python -m benchmarks.allocator_effect --mode train --size 64 --batch 3 --runs 5

Inference (the default): times the prepared model (``bench.prepare_for_inference``, batch 1, channels_last, ``inference_mode``) in
alternating blocks of ``--runs`` passes, first with glibc's default allocator, then inside
:func:`bench.speedups.allocator.steady_allocator`, ``--blocks`` times each, and prints per block the median,
the max/min ratio of its passes, the kernel (system) CPU seconds and the minor page faults per pass.
``--mode train`` times training steps instead (the plain module in train mode, batch ``--batch``: forward,
an L1 loss, backward, a fused Adam step).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import time

import torch

import bench
from bench.speedups.allocator import steady_allocator
from bench.speedups.fast_inference import prepare_for_inference


def block(forward, runs: int) -> tuple[list[float], float, float]:
    """``runs`` timed passes: their seconds, the system CPU seconds and the minor page faults of the block."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        forward()
        seconds.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return seconds, after.ru_stime - before.ru_stime, float(after.ru_minflt - before.ru_minflt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mbnet")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--mode", choices=("inference", "train"), default="inference")
    parser.add_argument("--batch", type=int, default=3, help="batch size of --mode train (default 3)")
    args = parser.parse_args()
    torch.manual_seed(0)
    forward = inference_pass(args) if args.mode == "inference" else training_step(args)
    print(f"{args.model} {args.mode} at {args.size}x{args.size}, {torch.get_num_threads()} threads, {args.runs} passes "
          "per block after 2 warm-up passes")
    print(f"{'allocator':<10} {'median s':>9} {'max/min':>8} {'sys s':>7} {'faults/pass':>12}")
    for _ in range(args.blocks):
        for label, context in (("default", contextlib.nullcontext()), ("steady", steady_allocator())):
            with context:
                for _ in range(2):
                    forward()
                seconds, system, faults = block(forward, args.runs)
            print(f"{label:<10} {statistics.median(seconds):>9.4f} {max(seconds) / min(seconds):>8.2f} "
                  f"{system:>7.2f} {faults / args.runs:>12.0f}")


def inference_pass(args: argparse.Namespace):
    """One batch-1 forward pass of the prepared model, in ``inference_mode``."""
    model = prepare_for_inference(bench.create_model(args.model).eval())
    rgb, depth = (torch.rand(1, c, args.size, args.size).contiguous(memory_format=torch.channels_last) for c in (3, 1))

    def run() -> None:
        with torch.inference_mode():
            model(rgb, depth)
    return run


def training_step(args: argparse.Namespace):
    """One training step of the plain module: forward, L1 loss, backward, fused Adam."""
    model = bench.create_model(args.model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    rgb, depth, target = (torch.rand(args.batch, c, args.size, args.size) for c in (3, 1, 3))

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(model(rgb, depth), target).backward()
        optimizer.step()
    return run


if __name__ == "__main__":
    main()
