"""Section ``train_step``: where one training step's time goes, and how far the step is from its floor.

For one model (``--step-model``) at one size and batch (``--step-size``, ``--step-batch``), in rounds that
alternate which goes first, inside :func:`bench.speedups.allocator.steady_allocator` as training runs:

* **phases** of a harness-style step, the device synchronised between them (:func:`time_phases`):
  ``data`` (the next batch of the harness's loader over an in-memory dataset, 0 workers, moved to the
  device), ``forward`` (model + the harness's loss), ``backward``, ``optimizer``
  (``zero_grad(set_to_none=True)`` + the fused Adam step of :func:`bench.harness.optim.make_optimizer`);
* the **harness step** itself: per-step seconds of :func:`bench.harness.train.train_model` (the differences
  of its log's ``seconds`` column, the first step of each call dropped).  ``bookkeeping`` is the harness
  step minus the four phases (scheduler, ``loss.item()``, the finiteness check, the log row, ...).

The **floor** (:func:`step_floor`) is ``batch x 3 x forward GFLOPs per image / matmul rate + fused Adam
step``: forward and backward (about twice the forward's FLOPs) at the machine's matmul rate, plus the
optimizer's pass over the parameters.  The GFLOPs are :func:`bench.harness.timing.count_gflops`'s, the matmul
rate the faster of the suite's start and end measurements, and the Adam step is timed alone in this section.
The step also moves its parameters, gradients and optimizer state through memory: :func:`step_bytes` counts
those bytes, and :func:`stream_probe` measures the rate they could move at (an in-place add, as Adam works).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from bench.speedups.allocator import steady_allocator
from bench.speedups.small_map_conv import small_map_convs
from bench.harness.distributed import DistContext
from bench.harness.losses import RelightingLoss
from bench.harness.modeling import RelightingModel
from bench.harness.timing import count_gflops, synchronize
from bench.harness.optim import make_optimizer
from bench.harness.train import train_model
from bench.perf.measure import interleaved
from bench.perf.report import PerfReport
from bench.perf.sections.machine import matmul_rate
from bench.perf.sections.training import memory_dataset, train_config
from models.registry import create_model
from relight_base.errors import ConfigError

log = logging.getLogger(__name__)

SECTION = "train_step"
PHASES = ("data", "forward", "backward", "optimizer")
ADAM_TENSORS_READ = 4  # fused Adam reads param, grad, exp_avg, exp_avg_sq ...
ADAM_TENSORS_WRITTEN = 3  # ... and writes param, exp_avg, exp_avg_sq


def step_floor(gflops_per_image: float, batch: int, matmul_gflops: float, adam_seconds: float) -> float:
    """Seconds a training step cannot go below: ``batch * 3 * gflops_per_image / matmul_gflops + adam_seconds``.

    Forward (``gflops_per_image`` per image) plus backward (counted as twice the forward) at the matmul rate
    (GFLOP/s), plus one fused Adam step over the parameters (seconds).
    """
    if matmul_gflops <= 0:
        raise ValueError(f"matmul rate must be positive, got {matmul_gflops}")
    return batch * 3 * gflops_per_image / matmul_gflops + adam_seconds


@dataclass(frozen=True)
class StepBytes:
    """Bytes of parameters, gradients and optimizer state one training step moves (the counting rule).

    * ``forward``: every parameter read once (trainable and frozen);
    * ``backward``: every trainable parameter read once (for the gradient of its input) and its
      gradient written once (``zero_grad(set_to_none=True)``: written, not accumulated);
    * ``optimizer``: Adam reads param, grad, exp_avg, exp_avg_sq and writes param, exp_avg, exp_avg_sq.

    Activations, weight re-layouts inside convolution kernels and caches are not counted: it is a lower bound.
    """

    forward: int
    backward: int
    optimizer: int

    @property
    def total(self) -> int:
        return self.forward + self.backward + self.optimizer


def step_bytes(model: nn.Module) -> StepBytes:
    """:class:`StepBytes` of ``model``'s parameters (``element_size`` bytes each): trainable ``T``, all ``A``.

    ``forward = A``, ``backward = 2T``, ``optimizer = 7T``: for an all-trainable model, ``10 T`` in all.
    """
    every = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return StepBytes(every, 2 * trainable, (ADAM_TENSORS_READ + ADAM_TENSORS_WRITTEN) * trainable)


def stream_probe(device: torch.device, mib: int = 256) -> tuple[Callable[[], object], int]:
    """An in-place add of one ``mib`` MiB float tensor to another on ``device`` (``a += b``), and the bytes it
    moves: ``a`` and ``b`` read, ``a`` written.

    In place, as Adam updates its tensors: a copy into a separate tensor would also read the destination before
    writing it (write-allocate caches), traffic that "bytes read + written" does not count.
    """
    a = torch.rand(mib * 2**20 // 4, device=device)
    b = torch.rand_like(a)
    return (lambda: a.add_(b)), 3 * a.numel() * a.element_size()


@dataclass(frozen=True)
class StepBreakdown:
    """Median seconds of each phase of a training step and of the harness's whole step.

    ``bookkeeping = max(0, harness - sum of the phases)``; ``total`` is the phases plus the bookkeeping, so the
    harness step, or the phases' sum when noise (or the synchronisations between phases) makes that larger.
    """

    data: float
    forward: float
    backward: float
    optimizer: float
    harness: float

    @property
    def phases(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in PHASES}

    @property
    def bookkeeping(self) -> float:
        return max(0.0, self.harness - sum(self.phases.values()))

    @property
    def total(self) -> float:
        return sum(self.phases.values()) + self.bookkeeping


def combine(phase_times: list[dict[str, float]], harness_times: list[float]) -> StepBreakdown:
    """The medians of per-step phase seconds (one dict per step) and of per-step harness seconds."""
    if not phase_times or not harness_times:
        raise ValueError("need at least one phased step and one harness step")
    medians = {name: statistics.median(step[name] for step in phase_times) for name in PHASES}
    return StepBreakdown(**medians, harness=statistics.median(harness_times))


@dataclass
class TrainingStep:
    """What a harness-style step runs: model, loss, optimizer, a never-ending source of loader batches.

    Batches are dicts with ``rgb`` (B,3,H,W), ``depth`` (B,1,H,W), ``target`` (B,3,H,W), floats in [0,1].
    ``memory_format`` is applied to the inputs on the device (``torch.channels_last`` for a channels_last model).
    """

    model: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    batches: Iterator[dict]
    device: torch.device
    memory_format: torch.memory_format = torch.contiguous_format


def forever(loader) -> Iterator[dict]:
    """The loader's batches, epoch after epoch (a new pass when one ends, as the training loop does)."""
    while True:
        yield from loader


def time_phases(step: TrainingStep, clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """One training step, timed phase by phase (seconds), the device synchronised at every boundary."""
    device, marks = step.device, []

    def mark() -> None:
        synchronize(device)
        marks.append(clock())

    mark()
    sample = next(step.batches)
    rgb, depth, target = (sample[k].to(device, non_blocking=True).contiguous(memory_format=step.memory_format)
                          for k in ("rgb", "depth", "target"))
    mark()
    loss, _ = step.criterion(step.model(rgb, depth).float(), target)
    mark()
    step.optimizer.zero_grad(set_to_none=True)
    mark()
    loss.backward()
    mark()
    step.optimizer.step()
    mark()
    gaps = [b - a for a, b in zip(marks, marks[1:])]
    return {"data": gaps[0], "forward": gaps[1], "backward": gaps[3], "optimizer": gaps[2] + gaps[4]}


def harness_step_times(model: nn.Module, dataset: list[dict], cfg, device: torch.device) -> list[float]:
    """Seconds of each step of :func:`bench.harness.train.train_model` but its first (from its log; needs
    ``train.log_every=1``).  The first step also builds the loader and the optimizer's state."""
    result = train_model(model, dataset, cfg, seed=0, ctx=DistContext(device=device), progress=False, desc="perf step")
    seconds = result.log["seconds"].tolist()
    return [b - a for a, b in zip(seconds, seconds[1:])]


def measure_breakdown(model: nn.Module, size: int, batch: int, steps: int, rounds: int, warmup: int,
                      device: torch.device, probe: Callable[[], object] = lambda: None,
                      ) -> tuple[StepBreakdown, torch.optim.Optimizer]:
    """Time ``rounds`` blocks of ``steps`` phased steps and as many of the harness's, alternating which goes first.

    ``model`` is trained in place (on random in-memory samples of ``size`` px, ``batch`` per step) after
    ``warmup`` untimed phased steps; ``probe`` runs at the start of every round (a matmul-rate measurement).
    Returns the breakdown and the phased steps' optimizer (its state built).
    """
    from datasets.dataset import make_loader

    dataset = memory_dataset(batch * max(warmup + steps * rounds, steps + 1), size)
    cfg = train_config(steps + 1, batch, size)
    loader = make_loader(dataset, batch_size=batch, shuffle=False, workers=0)
    criterion = RelightingLoss(cfg.loss, vgg_pretrained=False).to(device)
    step = TrainingStep(model, criterion, make_optimizer(model, cfg), forever(loader), device)
    phases: list[dict[str, float]] = []
    harness: list[float] = []

    def phased_block() -> None:
        model.train()
        with small_map_convs(model):  # as train_model steps
            phases.extend(time_phases(step) for _ in range(steps))

    def harness_block() -> None:
        harness.extend(harness_step_times(model, dataset[:batch * (steps + 1)], cfg, device))

    model.train()
    with small_map_convs(model):
        for _ in range(warmup):
            time_phases(step)
    for r in range(rounds):  # alternate which goes first, so a drifting machine favours neither
        probe()
        for block in (phased_block, harness_block) if r % 2 == 0 else (harness_block, phased_block):
            block()
    return combine(phases, harness), step.optimizer


def adam_and_bandwidth(optimizer: torch.optim.Optimizer, device: torch.device, runs: int = 5,
                       mib: int = 256) -> tuple[float, float]:
    """Median seconds of ``optimizer.step()`` alone (its parameters' gradients as they are) and the memory
    bandwidth in bytes/s (:func:`stream_probe`), timed in alternation after one warm-up each."""
    stream, nbytes = stream_probe(device, mib)
    times = interleaved({"adam": optimizer.step, "stream": stream}, runs, 1, device)
    return statistics.median(times["adam"]), nbytes / statistics.median(times["stream"])


def measure(report: PerfReport) -> None:
    """Add the step's phases, its floor and ratio, and the bytes it moves against the bandwidth, for one model."""
    o, device = report.options, report.device
    torch.manual_seed(0)
    model = RelightingModel(create_model(o.step_model), residual=False).to(device)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"--step-model: {o.step_model} has no trainable parameters; choose a model that trains")
    gflops = count_gflops(model, o.step_size)
    log.info("perf: training step, %s at %d px, batch %d", o.step_model, o.step_size, o.step_batch)
    rates: list[float] = []  # GFLOP/s, one per round: this shared machine's matmul rate varies by 10-30 %
    with steady_allocator():  # as train_model runs
        breakdown, optimizer = measure_breakdown(model, o.step_size, o.step_batch, o.step_steps, o.step_rounds,
                                                 o.step_warmup, device,
                                                 probe=lambda: rates.append(matmul_rate(device, o.matmul_size)))
        adam_s, bandwidth = adam_and_bandwidth(optimizer, device, mib=o.bandwidth_mib)
    del optimizer
    _breakdown_rows(report, breakdown)
    _floor_rows(report, breakdown.total, gflops, adam_s, max(rates))
    _bytes_rows(report, step_bytes(model), bandwidth, breakdown.total)


def _breakdown_rows(report: PerfReport, b: StepBreakdown) -> None:
    """The phases, the bookkeeping and the total as rows."""
    o = report.options
    item, size = o.step_model, o.step_size
    what = f"batch {o.step_batch}, {o.step_steps} steps x {o.step_rounds} rounds after {o.step_warmup} warm-up, medians"
    notes = {"data": f"the harness's loader over in-memory samples, 0 workers, to {report.device.type}; {what}",
             "forward": "model + the harness's loss", "backward": "loss.backward()",
             "optimizer": "zero_grad(set_to_none=True) + fused Adam step (make_optimizer)"}
    for name, seconds in b.phases.items():
        report.add(SECTION, item, size, name, seconds, "s", notes[name])
    report.add(SECTION, item, size, "bookkeeping", b.bookkeeping, "s",
               "harness step - the phases (scheduler, loss.item(), log row, ...), at least 0")
    report.add(SECTION, item, size, "step total", b.total, "s",
               f"harness train_model step {b.harness:.4g} s; the phases sum to {sum(b.phases.values()):.4g} s")


def _floor_rows(report: PerfReport, total: float, gflops: float, adam_s: float, section_rate: float) -> None:
    """GFLOPs, the lone Adam step, the floor and the ratio; both recomputed at the run's end from the fastest
    matmul rate of the run (its start and end, and ``section_rate``, the fastest measured between rounds)."""
    o = report.options
    item, size, batch = o.step_model, o.step_size, o.step_batch
    report.add(SECTION, item, size, "forward GFLOPs per image", gflops, "GFLOP", "count_gflops, batch 1")
    report.add(SECTION, item, size, "Adam step alone", adam_s, "s", "fused, the step's gradients, 5 runs")
    used = report.add(SECTION, item, size, "matmul rate of the floor", math.nan, "GFLOP/s",
                      f"the fastest of the run's start, end and {o.step_rounds} between rounds")
    floor = report.add(SECTION, item, size, "floor", math.nan, "s")
    ratio = report.add(SECTION, item, size, "step / floor", math.nan, "x")

    def relate(run_rate: float) -> None:
        used.value = section_rate if math.isnan(run_rate) else max(run_rate, section_rate)
        floor.value = step_floor(gflops, batch, used.value, adam_s)
        floor.note = f"{batch} x 3 x {gflops:.4g} GFLOP / {used.value:.0f} GFLOP/s + {adam_s:.4g} s Adam"
        ratio.value = total / floor.value

    relate(report.matmul_gflops)
    report.on_matmul_rate.append(relate)


def _bytes_rows(report: PerfReport, moved: StepBytes, bandwidth: float, total: float) -> None:
    """Bytes of parameters, gradients and optimizer state per step, the memory bandwidth, and their time."""
    o = report.options
    item, size = o.step_model, o.step_size
    report.add(SECTION, item, size, "bytes moved", moved.total / 1e9, "GB",
               f"params/grads/Adam state: forward {moved.forward / 1e9:.3g} + backward {moved.backward / 1e9:.3g}"
               f" + Adam {moved.optimizer / 1e9:.3g} GB")
    report.add(SECTION, item, size, "memory bandwidth", bandwidth / 1e9, "GB/s",
               f"in-place add of two {o.bandwidth_mib} MiB tensors, bytes read + written, median of 5")
    report.add(SECTION, item, size, "bytes / bandwidth", moved.total / bandwidth, "s")
    report.add(SECTION, item, size, "bytes time / step", moved.total / bandwidth / total, "x")
