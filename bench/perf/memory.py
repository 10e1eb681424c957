"""Peak memory of a block of work: the process's resident set (RSS) and, on CUDA, allocated memory.

Linux keeps the process's RSS high-water mark (``VmHWM`` in ``/proc/self/status``) and lets a
process reset it (writing ``5`` to ``/proc/self/clear_refs``), so the peak of one block of work can
be measured in a long-lived process.  Elsewhere the peak since process start is all there is
(``resource.getrusage``); :class:`PeakMemory` then says ``rss_resettable=False`` so a report can
mark the figure as an upper bound.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class PeakMemory:
    """Peak memory during one block, in MiB; ``cuda_max_allocated_mib`` is None off CUDA."""

    rss_mib: float
    rss_resettable: bool
    cuda_max_allocated_mib: float | None


def _read_hwm_kib() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _maxrss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def reset_peak(device: torch.device | str = "cpu") -> bool:
    """Start a new peak-memory window; returns whether the RSS peak could be reset."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _read_hwm_kib() is not None


def read_peak(device: torch.device | str = "cpu", *, resettable: bool = True) -> PeakMemory:
    """Peak memory since the last :func:`reset_peak` (``resettable`` is what it returned)."""
    device = torch.device(device)
    cuda = None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        cuda = torch.cuda.max_memory_allocated(device) / 2**20
    hwm = _read_hwm_kib() if resettable else None
    if hwm is None:
        return PeakMemory(rss_mib=_maxrss_mib(), rss_resettable=False, cuda_max_allocated_mib=cuda)
    return PeakMemory(rss_mib=hwm / 1024, rss_resettable=True, cuda_max_allocated_mib=cuda)


class track_peak:
    """``with track_peak(device) as box: ...`` then ``box.peak`` is the block's :class:`PeakMemory`."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.peak: PeakMemory | None = None
        self._resettable = False

    def __enter__(self) -> "track_peak":
        self._resettable = reset_peak(self.device)
        return self

    def __exit__(self, *exc) -> None:
        self.peak = read_peak(self.device, resettable=self._resettable)
