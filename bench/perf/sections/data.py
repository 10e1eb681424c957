"""Section ``data``: the data loader's images/s against the images/s training consumes.

A small synthetic dataset is generated into a scratch folder; the first epoch decodes PNG/NPY, later
epochs read the decoded cache.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.harness.config import DataConfig
from bench.harness.data import build_split
from bench.perf.report import PerfReport
from datasets.dataset import make_loader
from datasets.synthetic import SyntheticSpec, generate


def measure(report: PerfReport) -> None:
    """Add first-epoch and cached loader throughput, and (after the training section) their ratio to training's."""
    o = report.options
    rates, pairs = _epoch_rates(report)
    what = f"{pairs} pairs, {o.train_size}px, batch {o.train_batch}, 0 workers"
    report.add("data", "loader, first epoch", o.train_size, "throughput", rates[0], "images/s", what + ", decoding PNG/NPY")
    cached = statistics.median(rates[1:]) if len(rates) > 1 else rates[0]
    report.add("data", "loader, cached", o.train_size, "throughput", cached, "images/s", what + ", from the decoded cache")
    if report.train_images_per_s:
        report.add("data", "cached loader / training", o.train_size, "throughput ratio", cached / report.train_images_per_s, "x",
                   f"training consumes {report.train_images_per_s:.3g} images/s ({o.train_model}); > 1: not a bottleneck")


def _epoch_rates(report: PerfReport) -> tuple[list[float], int]:
    """Images/s of each of ``loader_epochs`` passes over a fresh synthetic training split, and its size in pairs."""
    o = report.options
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as scratch:
        spec = SyntheticSpec(train=o.loader_scenes, val=1, test=1, seed=0, size=max(o.train_size, 64))
        root = generate(Path(scratch) / "synthetic", spec, progress=False)
        data = DataConfig(source="synthetic", root=str(root), size=o.train_size, cache=True, workers=0)
        dataset = build_split(data, root, "train")
        loader = make_loader(dataset, batch_size=o.train_batch, shuffle=True, workers=0, seed=0)
        rates = []
        for _ in range(o.loader_epochs):
            start = time.perf_counter()
            count = sum(batch["rgb"].shape[0] for batch in loader)
            rates.append(count / (time.perf_counter() - start))
    return rates, len(dataset)
