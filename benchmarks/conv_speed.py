"""3x3 convolution: direct (oneDNN, channels_last) against bench.speedups.winograd.WinogradConv2d, in one run.

    python -m benchmarks.conv_speed                 # MBNet's and ResNet-50's 3x3 shapes at a 1024 px input
    python -m benchmarks.conv_speed --shapes 512x512@128,64x64@256 --runs 7

Per shape ``CINxCOUT@SIDE``: median time of each form (runs alternating, batch 1, inference_mode),
direct-convolution GFLOP/s (Winograd's "equivalent" rate counts the direct form's FLOPs), the speed-up
and the largest difference relative to the output's magnitude.  bench.speedups.winograd.MIN_CHANNEL_PRODUCT
(which convolutions prepare_for_inference converts) was chosen from this table.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from bench.perf.measure import interleaved
from bench.speedups.winograd import WinogradConv2d

DEFAULT_SHAPES = ("2048x2048@32,2112x2048@32,1024x1024@64,1088x1024@64,512x512@128,576x512@128,"
                  "512x512@32,256x256@64,128x128@128,64x64@256")


def parse_shape(text: str) -> tuple[int, int, int]:
    channels, side = text.split("@")
    cin, cout = channels.split("x")
    return int(cin), int(cout), int(side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated CINxCOUT@SIDE")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1, {args.runs} runs after {args.warmup} warm-up")
    print(f"{'shape':<16} {'direct s':>9} {'GFLOP/s':>8} {'winograd s':>11} {'equiv GFLOP/s':>14} {'speed-up':>9} {'rel diff':>9}")
    cpu = torch.device("cpu")
    for text in args.shapes.split(","):
        cin, cout, side = parse_shape(text)
        torch.manual_seed(0)
        conv = nn.Conv2d(cin, cout, 3, padding=1)
        weight = conv.weight.detach().contiguous(memory_format=torch.channels_last)
        x = torch.randn(1, cin, side, side).contiguous(memory_format=torch.channels_last)
        fast = WinogradConv2d.from_conv(conv)
        with torch.inference_mode():
            times = interleaved({"direct": lambda: F.conv2d(x, weight, conv.bias, padding=1), "winograd": lambda: fast(x)},
                                args.runs, args.warmup, cpu)
            ref = F.conv2d(x, weight, conv.bias, padding=1)
            diff = float((fast(x) - ref).abs().max() / ref.abs().max())
        direct, wino = statistics.median(times["direct"]), statistics.median(times["winograd"])
        flops = 2 * cin * cout * 9 * side * side
        print(f"{text:<16} {direct:>9.4f} {flops / direct / 1e9:>8.0f} {wino:>11.4f} {flops / wino / 1e9:>14.0f} "
              f"{direct / wino:>9.2f} {diff:>9.1e}")


if __name__ == "__main__":
    main()
