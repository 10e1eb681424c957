"""Section ``inference``: forward time per image of each model at each size, its FLOP rate and peak memory.

The model is timed as :func:`bench.prepare_for_inference` returns it (``inference_mode``, channels_last,
batch 1, synchronised); FLOPs are counted on the unprepared model.
"""

from __future__ import annotations

import logging
import statistics

import torch
from torch import nn

from bench.harness.timing import count_flops, percentile
from bench.speedups.fast_inference import prepare_for_inference
from bench.perf.measure import interleaved, random_inputs
from bench.perf.memory import track_peak
from bench.perf.report import PerfReport
from models.registry import create_model

log = logging.getLogger(__name__)


def measure(report: PerfReport) -> None:
    """Add median, p90, GFLOPs, achieved GFLOP/s (and its ratio to the matmul rate) and peak memory rows."""
    o, device = report.options, report.device
    for name in o.models:
        plain = create_model(name).eval()
        fast = prepare_for_inference(plain.to(device), autocast=o.autocast, compile=o.compile)
        for size in o.sizes:
            log.info("perf: inference, %s at %dx%d", name, size, size)
            _measure_size(report, name, plain, fast, size)


def _measure_size(report: PerfReport, name: str, plain: nn.Module, fast: nn.Module, size: int) -> None:
    """The rows of one model at one square ``size``; models without FLOPs (identity) get time and memory only."""
    o, device = report.options, report.device
    runs = o.small_runs if size <= 256 else o.runs
    rgb, depth = random_inputs(size, device, channels_last=True)
    with track_peak(device) as peak, torch.inference_mode():
        times = interleaved({"fwd": lambda: fast(rgb, depth)}, runs, o.warmup, device)["fwd"]
    median = statistics.median(times)
    flops = count_flops(plain, (size, size))
    report.add("inference", name, size, "median", median, "s", f"{runs} runs after {o.warmup} warm-up")
    report.add("inference", name, size, "p90", percentile(times, 90), "s")
    if flops:
        report.inference_s[(name, size)] = median
        report.add("inference", name, size, "GFLOPs", flops / 1e9, "GFLOP")
        report.add("inference", name, size, "achieved", flops / median / 1e9, "GFLOP/s")
        report.add("inference", name, size, "achieved / matmul", flops / median / 1e9 / report.matmul_gflops, "x")
    report.add_peak("inference", name, size, peak.peak)
