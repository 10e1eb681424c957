"""Section ``reference``: our MBNet against the official code's forward pass, and where our time goes.

Same weights, same inputs, runs interleaved: the time ratio and the largest output difference.  The
reference is the built-in official formulation, or the authors' code from ``--official-code DIR``.
"""

from __future__ import annotations

import statistics

import torch

from bench.harness.timing import count_gflops
from bench.perf.breakdown import part_times
from bench.speedups.fast_inference import prepare_for_inference
from bench.perf.mbnet_reference import reference_pair
from bench.perf.measure import interleaved, random_inputs
from bench.perf.report import PerfReport


def measure(report: PerfReport) -> None:
    """Add both medians, their ratio, the max |difference|, both FLOP counts and our time per part."""
    o, device = report.options, report.device
    pair = reference_pair(o.official_code)
    reference = pair.reference.to(device).eval()
    fast = prepare_for_inference(pair.ours.to(device), autocast=o.autocast, compile=o.compile)
    size = o.reference_size
    rgb, depth = random_inputs(size, device, channels_last=False)
    rgb_cl, depth_cl = (t.contiguous(memory_format=torch.channels_last) for t in (rgb, depth))

    def run_reference() -> torch.Tensor:
        with torch.no_grad():
            return reference(rgb, depth)

    def run_ours() -> torch.Tensor:
        with torch.inference_mode():
            return fast(rgb_cl, depth_cl)

    diff = (run_reference() - run_ours()).abs().max().item()
    times = interleaved({"reference": run_reference, "ours": run_ours}, o.reference_runs, 0, device)
    ref_s, ours_s = statistics.median(times["reference"]), statistics.median(times["ours"])
    note = f"{o.reference_runs} interleaved runs (first calls were the output check)"
    report.add("reference", "reference MBNet", size, "median", ref_s, "s", pair.description)
    report.add("reference", "ours (prepared)", size, "median", ours_s, "s", note)
    report.add("reference", "ours / reference", size, "time ratio", ours_s / ref_s, "x")
    report.add("reference", "ours vs reference", size, "max |difference|", diff, "", "same weights and inputs")
    report.add("reference", "reference MBNet", size, "GFLOPs", count_gflops(reference, size), "GFLOP")
    report.add("reference", "ours (prepared)", size, "GFLOPs", count_gflops(pair.ours, size), "GFLOP")
    for part, seconds in part_times(fast.adapter, run_ours, pair.ours.capabilities.time_breakdown).items():
        report.add("reference", f"ours: {part}", size, "time in one pass", seconds, "s", "where the time goes")
