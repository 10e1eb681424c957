"""What one ``bench perf`` run is asked to measure and what it measured: its options and its rows.

Kept apart from :mod:`bench.perf.suite` so that the section modules (which the suite imports) can
write rows without importing the suite.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from bench.perf.memory import PeakMemory

log = logging.getLogger(__name__)

CSV_COLUMNS = ["section", "item", "size", "quantity", "value", "unit", "note"]

# The sections in the order they run: metrics uses inference times, data uses training throughput.
SECTION_ORDER = ("inference", "reference", "training", "train_step", "data", "metrics")


@dataclass
class PerfOptions:
    """What ``bench perf`` measures; defaults are the full suite (under 10 minutes on 2 CPU cores)."""

    models: list[str] = field(default_factory=lambda: ["mbnet", "atst", "danet", "rd3d", "pgar"])
    sizes: list[int] = field(default_factory=lambda: [256, 512, 1024])
    runs: int = 3
    warmup: int = 1
    small_runs: int = 5  # runs at sizes <= 256, where a pass is short and noise is larger
    device: str = "auto"
    official_code: Path | None = None
    reference_size: int = 1024
    reference_runs: int = 3
    train_model: str = "pgar"
    train_size: int = 128
    train_batch: int = 3
    train_steps: int = 5
    train_rounds: int = 5
    memory_train_steps: int = 2
    loader_scenes: int = 12
    loader_epochs: int = 3
    metric_batch: int = 4
    matmul_size: int = 2048
    optimizer_model: str = "mbnet"  # whose parameters the Adam-step comparison updates
    step_model: str = "mbnet"  # the model whose training step is broken down (section train_step)
    step_size: int = 64  # its training image side, as in the default benchmark
    step_batch: int = 3
    step_steps: int = 3  # timed steps per block (phased, and the harness's) ...
    step_rounds: int = 3  # ... in this many rounds alternating which goes first
    step_warmup: int = 2  # untimed phased steps before the first round
    bandwidth_mib: int = 256  # each tensor of the memory-bandwidth probe, a += b (well above the caches)
    autocast: str = "off"
    compile: bool = False
    sections: list[str] = field(default_factory=lambda: list(SECTION_ORDER))


@dataclass
class PerfRow:
    """One measured figure (one line of the table and of the CSV)."""

    section: str
    item: str
    size: int | None
    quantity: str
    value: float
    unit: str
    note: str = ""


class PerfReport:
    """The rows measured so far, and the figures later sections need from earlier ones."""

    def __init__(self, options: PerfOptions, device: torch.device) -> None:
        self.options = options
        self.device = device
        self.rows: list[PerfRow] = []
        self.inference_s: dict[tuple[str, int], float] = {}  # median forward seconds of models that compute
        self.train_images_per_s: float | None = None
        self.matmul_gflops: float = math.nan  # the start-of-run matmul rate (GFLOP/s)
        # called once at the end of the run with the matmul rate figures are finally related to (GFLOP/s)
        self.on_matmul_rate: list[Callable[[float], None]] = []

    def add(self, section: str, item: str, size: int | None, quantity: str, value: float, unit: str,
            note: str = "") -> PerfRow:
        """Append one row and return it; ``value`` is stored as a float."""
        row = PerfRow(section, item, size, quantity, float(value), unit, note)
        self.rows.append(row)
        log.debug("%-9s %-24s %5s %-24s %12.4g %s %s", section, item, size or "", quantity, value, unit, note)
        return row

    def add_peak(self, section: str, item: str, size: int | None, peak: PeakMemory) -> None:
        """Rows for a block's peak RSS (noting when the OS could not reset it) and, on CUDA, its max allocated."""
        note = "" if peak.rss_resettable else "peak since process start (could not be reset on this OS)"
        self.add(section, item, size, "peak RSS", peak.rss_mib, "MiB", note)
        if peak.cuda_max_allocated_mib is not None:
            self.add(section, item, size, "CUDA max allocated", peak.cuda_max_allocated_mib, "MiB")

    def frame(self) -> pd.DataFrame:
        """The rows as a table with :data:`CSV_COLUMNS`."""
        return pd.DataFrame([asdict(r) for r in self.rows], columns=CSV_COLUMNS)
