"""Section ``metrics``: PSNR, SSIM and LPIPS time per image, and their share of each model's inference time.

Metrics are timed batched as in evaluation, at the largest inference size, so the share compares like
with like; it needs the inference section's times (models without FLOPs, e.g. identity, get no share).
"""

from __future__ import annotations

import statistics

import torch

from bench.harness.metrics import LPIPSMetric, psnr, ssim
from bench.perf.measure import interleaved
from bench.perf.report import PerfReport


def measure(report: PerfReport) -> None:
    """Add each metric's time per image, their sum, and the sum over each model's median inference time."""
    o = report.options
    size = max(o.sizes)
    per_image, lpips_note = _per_image_times(report, size)
    total = sum(per_image.values())
    batch_note = f"batch {o.metric_batch}, per image"
    for key, seconds in per_image.items():
        report.add("metrics", key.upper(), size, "time", seconds, "s", batch_note + ("; " + lpips_note if key == "lpips" else ""))
    report.add("metrics", "PSNR+SSIM+LPIPS", size, "time", total, "s", batch_note)
    for name in o.models:
        inference = report.inference_s.get((name, size))
        if inference:
            report.add("metrics", f"share of {name} inference", size, "metrics / inference time", total / inference, "x")


def _per_image_times(report: PerfReport, size: int) -> tuple[dict[str, float], str]:
    """Median seconds per image of psnr, ssim and lpips on random (metric_batch,3,size,size) pairs in [0,1).

    Returns the times and a note on the LPIPS weights (without AlexNet weights an untrained trunk of
    the same shape is timed).
    """
    o, device = report.options, report.device
    lpips_metric = LPIPSMetric("auto", device)
    note = "AlexNet weights loaded"
    if not lpips_metric.available:
        note = "AlexNet weights absent: timed with an untrained trunk of the same shape (no values reported)"
        lpips_metric = LPIPSMetric.timing_only(device)
    gen = torch.Generator().manual_seed(1)
    pred = torch.rand(o.metric_batch, 3, size, size, generator=gen).to(device)
    target = torch.rand(o.metric_batch, 3, size, size, generator=gen).to(device)
    fns = {"psnr": lambda: psnr(pred, target), "ssim": lambda: ssim(pred, target), "lpips": lambda: lpips_metric(pred, target)}
    with torch.inference_mode():
        times = interleaved(fns, 3, 1, device)
    return {k: statistics.median(v) / o.metric_batch for k, v in times.items()}, note
