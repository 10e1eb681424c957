"""Forward time per image, parameters and FLOPs, measured the same way for every adapter.

The harness times models in one interleaved phase (see :mod:`bench.harness.timing_phase`): every model
is warmed up, then each of ``rounds`` rounds runs every model once on the same input, in an order that
rotates by one place per round, so a machine whose speed drifts during the phase slows every model
alike instead of whichever happened to be timed last.  This module holds the pure parts of that phase
(the order, the loop over callables, the summary) with an injectable clock, so they can be tested
without a real model; and FLOP counting, device names and percentiles, which the perf suite uses too.
"""

from __future__ import annotations

import contextlib
import platform
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

Clock = Callable[[], float]


@dataclass(frozen=True)
class TimedCall:
    """One timed forward pass of the phase: round ``round`` (0-based), place ``position`` (0-based) in its order."""

    round: int
    position: int
    name: str
    seconds: float


@dataclass(frozen=True)
class TimeSummary:
    """Median, 90th percentile and quartiles of one model's times, in seconds (linear interpolation)."""

    median: float
    p90: float
    q1: float
    q3: float


def device_name(device: torch.device) -> str:
    """A human-readable device name (GPU model, or the CPU's)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model() or platform.processor() or platform.machine() or "cpu"


def _cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), else None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        return None
    return None


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously); nothing to wait for on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0,100] of ``values`` (numpy's default "linear" method)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty list")
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(seconds: Sequence[float]) -> TimeSummary:
    """The median, p90, q1 (25th) and q3 (75th percentile) of one model's per-round times."""
    return TimeSummary(median=percentile(seconds, 50), p90=percentile(seconds, 90),
                       q1=percentile(seconds, 25), q3=percentile(seconds, 75))


def round_order(names: Sequence[str], round_index: int) -> list[str]:
    """The order of round ``round_index``: ``names`` rotated left by ``round_index`` places.

    Over ``len(names)`` consecutive rounds every name takes every position exactly once.
    """
    if not names:
        return []
    shift = round_index % len(names)
    return list(names[shift:]) + list(names[:shift])


@contextlib.contextmanager
def pinned_threads(threads: int | None) -> Iterator[int]:
    """Set torch's CPU thread count for the block (None: keep the current one); yield it; restore it after."""
    before = torch.get_num_threads()
    pinned = before if threads is None else int(threads)
    torch.set_num_threads(pinned)
    try:
        yield pinned
    finally:
        torch.set_num_threads(before)


def timed_call(forward: Callable[[], object], clock: Clock, sync: Callable[[], None]) -> float:
    """Seconds one call of ``forward`` takes by ``clock``, with ``sync`` (device synchronisation) on both sides."""
    sync()
    start = clock()
    forward()
    sync()
    return clock() - start


def run_rounds(models: Mapping[str, Callable[[], object]], *, rounds: int, warmup: int,
               clock: Clock = time.perf_counter, sync: Callable[[], None] = lambda: None,
               after_round: Callable[[], None] = lambda: None) -> list[TimedCall]:
    """Warm up every model ``warmup`` times (untimed), then ``rounds`` rounds of one timed call each.

    ``models`` maps a name to a no-argument callable (one forward pass on the phase's input).  Round ``r``
    runs them in ``round_order(names, r)``; ``after_round`` is called after each (a progress bar's update).
    Returns ``rounds * len(models)`` calls in the order they ran.
    """
    names = list(models)
    for name in names:
        for _ in range(warmup):
            models[name]()
    sync()
    calls: list[TimedCall] = []
    for r in range(rounds):
        for position, name in enumerate(round_order(names, r)):
            calls.append(TimedCall(r, position, name, timed_call(models[name], clock, sync)))
        after_round()
    return calls


def summarize_calls(calls: Sequence[TimedCall]) -> dict[str, TimeSummary]:
    """Each model's :class:`TimeSummary` over its timed calls, in first-appearance order."""
    seconds: dict[str, list[float]] = {}
    for call in calls:
        seconds.setdefault(call.name, []).append(call.seconds)
    return {name: summarize(values) for name, values in seconds.items()}


def count_flops(model: nn.Module, size: tuple[int, int], device: torch.device | str = "meta") -> int:
    """FLOPs of one inference forward pass on a batch-1 input of ``size`` (torch.utils.flop_counter; 1 MAC = 2 FLOPs).

    Counted in eval mode (a model still in training mode is not changed: its modes are restored), on the
    ``meta`` device by default (no compute): the model is copied there.
    """
    h, w = size
    if str(device) == "meta":
        import copy

        model = copy.deepcopy(model).to("meta")
    rgb = torch.zeros(1, 3, h, w, device=device)
    depth = torch.zeros(1, 1, h, w, device=device)
    counter = FlopCounterMode(display=False)
    modes = {module: module.training for module in model.modules()}
    model.eval()  # batch statistics of one image would fail in BatchNorm on a 1x1 map
    try:
        with counter, torch.no_grad():
            model(rgb, depth)
    finally:
        for module, training in modes.items():
            module.training = training
    return int(counter.get_total_flops())


def count_gflops(model: nn.Module, size: int) -> float:
    """GFLOPs (10^9 FLOPs) of one inference forward pass on a batch-1 ``size`` x ``size`` input (:func:`count_flops`)."""
    return count_flops(model, (size, size)) / 1e9
