"""Section ``machine``: this machine's fp32 matrix-multiply rate, the yardstick for achieved GFLOP/s."""

from __future__ import annotations

import statistics

import torch

from bench.harness.timing import device_name
from bench.perf.measure import interleaved
from bench.perf.report import PerfReport


def matmul_rate(device: torch.device, n: int = 2048, runs: int = 5) -> float:
    """Median fp32 GFLOP/s of an ``n x n`` matrix product on ``device`` (2 n^3 FLOPs per product)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    times = interleaved({"mm": lambda: a @ b}, runs, 2, device)["mm"]
    return 2 * n**3 / statistics.median(times) / 1e9


def measure(report: PerfReport, when: str) -> float:
    """Add the matmul rate measured now (``when``: "start" or "end" of the run) and return it in GFLOP/s."""
    size = report.options.matmul_size
    rate = matmul_rate(report.device, size)
    report.add("machine", f"matmul fp32 {size}", None, f"GFLOP/s ({when})", rate, "GFLOP/s",
               f"{device_name(report.device)}, {torch.get_num_threads()} threads")
    return rate
