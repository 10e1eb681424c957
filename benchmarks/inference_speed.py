"""Inference time per image: the plain module against ``bench.prepare_for_inference``, in one run.

    python -m benchmarks.inference_speed --models mbnet --size 256 --runs 10

Prints, per model, the median and p90 forward time of the plain module (``torch.no_grad``, NCHW) and of
the prepared one (``torch.inference_mode``, channels_last, BatchNorm folded), and their ratio.  Same
inputs, same thread count, batch 1, after warm-up, the two runs alternating (bench.perf.measure.interleaved).
"""

from __future__ import annotations

import argparse
import statistics

import torch

import bench
from bench.harness.timing import percentile
from bench.perf.measure import interleaved
from bench.perf.report import PerfOptions
from bench.speedups.fast_inference import prepare_for_inference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(PerfOptions().models),
                        help="comma-separated model names (default: the perf suite's, MBNet and its four peers)")
    parser.add_argument("--size", type=int, default=256, help="square input side (default 256)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    rgb, depth = torch.rand(1, 3, args.size, args.size), torch.rand(1, 1, args.size, args.size)
    rgb_cl, depth_cl = (t.contiguous(memory_format=torch.channels_last) for t in (rgb, depth))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size}x{args.size}, batch 1, "
          f"{args.runs} runs after {args.warmup} warm-up")
    print(f"{'model':<8} {'plain median':>13} {'plain p90':>10} {'prepared median':>16} {'prepared p90':>13} {'ratio':>6}")
    for name in args.models.split(","):
        plain = bench.create_model(name).eval()
        fast = prepare_for_inference(plain)

        def run_plain():
            with torch.no_grad():
                plain(rgb, depth)

        def run_fast():
            with torch.inference_mode():
                fast(rgb_cl, depth_cl)

        times = interleaved({"plain": run_plain, "fast": run_fast}, args.runs, args.warmup, torch.device("cpu"))
        base, opt = times["plain"], times["fast"]
        mb, mo = statistics.median(base), statistics.median(opt)
        print(f"{name:<8} {mb:>12.4f}s {percentile(base, 90):>9.4f}s {mo:>15.4f}s {percentile(opt, 90):>12.4f}s {mo / mb:>6.3f}")


if __name__ == "__main__":
    main()
