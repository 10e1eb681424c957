"""How the perf suite times things: one synchronised call, repetitions interleaved in time, seeded inputs.

Timings on a shared machine drift, so functions that are compared are timed in alternation
(:func:`interleaved`) rather than one after the other.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from bench.harness.timing import synchronize


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of one call of ``fn``, with the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], runs: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Time each function ``runs`` times, alternating between them (after ``warmup`` untimed rounds).

    Returns, per key of ``fns``, its ``runs`` wall times in seconds, in the order they were taken.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + runs):
        for key, fn in fns.items():
            seconds = timed(fn, device)
            if i >= warmup:
                times[key].append(seconds)
    return times


def random_inputs(size: int, device: torch.device, channels_last: bool, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random input pair: rgb (batch,3,size,size) and depth (batch,1,size,size), float in [0,1).

    The seed is ``size``, so every model sees the same images at a given size.
    """
    gen = torch.Generator().manual_seed(size)
    rgb = torch.rand(batch, 3, size, size, generator=gen).to(device)
    depth = torch.rand(batch, 1, size, size, generator=gen).to(device)
    if channels_last:
        rgb, depth = (t.contiguous(memory_format=torch.channels_last) for t in (rgb, depth))
    return rgb, depth
