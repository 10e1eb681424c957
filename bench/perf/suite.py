"""``python -m bench perf``: how fast the models run and how little the harness adds, measured in one run.

Sections (each row of the printed table and of the CSV names its section):

* ``machine``   fp32 matrix-multiply rate (2048x2048, median), at the start and at the end of the run:
                the yardstick for achieved GFLOP/s, and a check that the machine's speed did not drift.
* ``inference`` per model and size: forward time per image (median, p90; batch 1, the model as
                :func:`bench.prepare_for_inference` returns it, ``inference_mode``, channels_last,
                synchronised), GFLOPs, achieved GFLOP/s and its ratio to the matmul rate, peak RSS
                (and CUDA max allocated) during that size's runs.
* ``reference`` MBNet against the official code's forward pass (built-in formulation, or the authors'
                code from ``--official-code DIR``): same weights, same inputs, runs interleaved; the
                time ratio and the largest output difference.
* ``training``  images/s of the harness's :func:`bench.harness.train.train_model` against a bare loop (same
                model, loss, optimizer, batch, steps, data in memory), rounds interleaved; peak RSS of
                a few training steps per model; the optimizer step (Adam per-parameter loop vs fused).
* ``train_step`` one model's training step (``--step-model``, 64 px, batch 3 by default): data, forward,
                backward, optimizer and bookkeeping seconds; its floor (batch x 3 x forward GFLOPs per image /
                matmul rate + a fused Adam step) and the ratio to it; the bytes of parameters, gradients
                and Adam state it moves against a measured memory bandwidth (an in-place add).
* ``data``      the data loader's images/s (first epoch decoding PNG/NPY, later epochs from the
                decoded cache) against the images/s training consumes.
* ``metrics``   PSNR, SSIM and LPIPS time per image (batched as in evaluation) and their share of each
                model's inference time at the same size.

Each section is a module of :mod:`bench.perf.sections`; this module runs them in order, relates
achieved rates to the machine's matmul rate, notes the performance targets (:data:`TARGETS`) on their
rows, and prints or writes the rows.

Timings on a shared machine drift: ratios are taken between runs interleaved in time, and every
figure is a median.  Nothing here is a unit test; tests only check the suite runs and its output is
well formed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from bench.harness.distributed import pick_device
from bench.perf.report import SECTION_ORDER, PerfOptions, PerfReport
from bench.perf.sections import data, inference, machine, metrics, reference, training, training_step
from models.registry import get_entry, list_models
from relight_base.atomic import atomic_write_text
from relight_base.errors import ConfigError

log = logging.getLogger(__name__)

SECTIONS: dict[str, Callable[[PerfReport], None]] = dict(zip(
    SECTION_ORDER,
    (inference.measure, reference.measure, training.measure, training_step.measure, data.measure, metrics.measure),
    strict=True,
))


@dataclass(frozen=True)
class Target:
    """A goal of the performance issue for one measured quantity: ``value <= bound`` (``at_most``) or ``>= bound``.

    ``summary`` starts the line :func:`summarise_targets` prints per matching row; ``{value}`` and
    ``{item}`` are filled in from the row.
    """

    section: str
    quantity: str
    bound: float
    at_most: bool
    summary: str

    @property
    def text(self) -> str:
        """The target as written in a row's note and in the summary, e.g. ``target <= 0.55``."""
        return f"target {'<=' if self.at_most else '>='} {self.bound:.2f}"

    def met(self, value: float) -> bool:
        """Whether ``value`` is on the right side of the bound (the bound itself counts as met)."""
        return value <= self.bound if self.at_most else value >= self.bound


TARGETS = (
    Target("reference", "time ratio", 0.55, True, "MBNet vs official formulation: {value:.3f}x the time"),
    Target("training", "throughput ratio", 0.97, False, "harness training throughput: {value:.3f}x the bare loop"),
    Target("metrics", "metrics / inference time", 0.10, True, "metrics {item}: {value:.3f}"),
    Target(training_step.SECTION, "step / floor", 3.5, True, "training step / floor ({item}): {value:.2f}x"),
)


def resolve_device(name: str) -> torch.device:
    """``--device``: the harness's rule (:func:`bench.harness.distributed.pick_device`), errors naming the flag."""
    try:
        return pick_device(name)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("train.device", "--device", 1)) from None
    except RuntimeError as exc:  # a cuda:N that torch.device cannot parse
        raise ConfigError(f"--device: {exc}") from None


def run_perf(options: PerfOptions) -> PerfReport:
    """Run the selected sections in a fixed order, between two matmul measurements; returns every measured row."""
    _check_names(options)
    report = PerfReport(options, resolve_device(options.device))
    started = time.perf_counter()
    report.matmul_gflops = machine.measure(report, "start")
    for name, section in SECTIONS.items():
        if name in options.sections:
            log.info("perf: %s", name)
            section(report)
    _relate_to_matmul(report, max(report.matmul_gflops, machine.measure(report, "end")))
    _note_targets(report)
    report.add("machine", "suite", None, "wall time", time.perf_counter() - started, "s", f"torch {torch.__version__}")
    return report


def _check_names(options: PerfOptions) -> None:
    """Unknown sections and models are input errors (the registry's error suggests the closest model names)."""
    unknown = [s for s in options.sections if s not in SECTIONS]
    if unknown:
        raise ConfigError(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    known = set(list_models())
    for name in [*options.models, options.train_model, options.step_model]:
        if name not in known:
            get_entry(name)  # raises the registry's "unknown model" error with suggestions


def _relate_to_matmul(report: PerfReport, rate: float) -> None:
    """Recompute every "achieved / matmul" row against ``rate`` GFLOP/s (the faster of start and end), and let
    the sections that registered in ``report.on_matmul_rate`` do the same with their rows."""
    for row in report.rows:
        if row.quantity == "achieved / matmul":
            achieved = next(r.value for r in report.rows
                            if (r.section, r.item, r.size, r.quantity) == (row.section, row.item, row.size, "achieved"))
            row.value, row.note = achieved / rate, f"matmul rate {rate:.0f} GFLOP/s (the faster of start and end)"
    for relate in report.on_matmul_rate:
        relate(rate)


def _note_targets(report: PerfReport) -> None:
    """Append its target (``target <= 0.55``) to the note of every row a :data:`TARGETS` entry judges."""
    for row in report.rows:
        for target in TARGETS:
            if (row.section, row.quantity) == (target.section, target.quantity):
                row.note = "; ".join(n for n in (row.note, target.text) if n)


def format_table(frame: pd.DataFrame) -> str:
    """The rows as one aligned text table, sections separated by a blank line."""
    lines = []
    header = f"{'section':<10} {'item':<26} {'size':>5}  {'quantity':<32} {'value':>11} {'unit':<9} note"
    lines.append(header)
    lines.append("-" * len(header))
    previous = None
    for row in frame.itertuples(index=False):
        if previous is not None and row.section != previous:
            lines.append("")
        previous = row.section
        size = "" if row.size is None or (isinstance(row.size, float) and math.isnan(row.size)) else str(int(row.size))
        lines.append(f"{row.section:<10} {row.item:<26} {size:>5}  {row.quantity:<32} {_fmt(row.value):>11} {row.unit:<9} {row.note}")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    if value == 0 or math.isnan(value):
        return f"{value:g}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write the rows atomically as CSV."""
    atomic_write_text(Path(path), frame.to_csv(index=False))
    return Path(path)


def summarise_targets(frame: pd.DataFrame) -> list[str]:
    """One line per :data:`TARGETS` row this run measured: the value, the target, met or missed."""
    lines = []
    for target in TARGETS:
        rows = frame[(frame.section == target.section) & (frame.quantity == target.quantity)]
        for row in rows.itertuples(index=False):
            verdict = "met" if target.met(row.value) else "missed"
            lines.append(f"{target.summary.format(value=row.value, item=row.item)} ({target.text}): {verdict}")
    return lines
