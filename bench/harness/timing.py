"""Time per image, parameters and FLOPs of a model, measured the same way for every adapter.

Time is the model's forward pass only: batch 1, at the evaluation size, in
``torch.inference_mode``, after warm-up runs, with ``torch.cuda.synchronize``
around each run on CUDA so asynchronous kernels are counted.  Median and p90
over ``runs`` repetitions are reported with the device name, torch version and
CPU thread count.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Timing:
    """Forward time per image and the conditions it was measured under."""

    median_s: float
    p90_s: float
    runs: int
    warmup: int
    size: tuple[int, int]
    device: str
    torch_version: str
    threads: int


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


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0,100] of ``values``."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def time_forward(
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    size: tuple[int, int],
    device: torch.device,
    *,
    runs: int = 10,
    warmup: int = 2,
    channels_last: bool = False,
) -> Timing:
    """Time ``forward(rgb, depth)`` on a random batch-1 input of ``size`` (H, W)."""
    h, w = size
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, h, w, generator=gen).to(device)
    depth = torch.rand(1, 1, h, w, generator=gen).to(device)
    if channels_last:
        rgb, depth = rgb.contiguous(memory_format=torch.channels_last), depth.contiguous(memory_format=torch.channels_last)
    times: list[float] = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            synchronize(device)
            start = time.perf_counter()
            forward(rgb, depth)
            synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return Timing(
        median_s=statistics.median(times), p90_s=percentile(times, 90), runs=runs, warmup=warmup, size=(h, w),
        device=device_name(device), torch_version=torch.__version__, threads=torch.get_num_threads(),
    )


def count_flops(model: nn.Module, size: tuple[int, int], device: torch.device | str = "meta") -> int:
    """FLOPs of one forward pass on a batch-1 input of ``size`` (torch.utils.flop_counter; 1 MAC = 2 FLOPs).

    Counted on the ``meta`` device by default (no compute): the model is copied there.
    """
    h, w = size
    if str(device) == "meta":
        import copy

        model = copy.deepcopy(model).to("meta")
    rgb = torch.zeros(1, 3, h, w, device=device)
    depth = torch.zeros(1, 1, h, w, device=device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(rgb, depth)
    return int(counter.get_total_flops())

