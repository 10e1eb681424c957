"""Where a forward pass spends its time: seconds per group of an adapter's direct children.

The grouping is the adapter's own knowledge: its declared capabilities may hold a ``time_breakdown``
mapping a child-name prefix to a label (MBNet maps ``"rgb_encoder"`` to ``"RGB ResNet-50"``, every
``"ddpm..."`` child to ``"DDPMs"``, ...; :class:`models.capabilities.Capabilities`).  Children no prefix
matches, and every child of an adapter that declares nothing, are their own group.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

import torch
from torch import nn

from bench.perf.measure import timed

OTHER = "other (padding, upsampling, adds)"  # the pass's time outside every child


def child_labels(adapter: nn.Module, groups: Mapping[str, str]) -> dict[str, str]:
    """Each direct child's name -> its group label (the first prefix of ``groups`` it starts with, else its name)."""
    return {name: next((label for prefix, label in groups.items() if name.startswith(prefix)), name)
            for name, _ in adapter.named_children()}


def part_times(adapter: nn.Module, run: Callable[[], object], groups: Mapping[str, str] | None = None) -> dict[str, float]:
    """Seconds spent in each group of ``adapter``'s direct children during one ``run()``, largest first.

    ``groups`` maps child-name prefixes to labels (the adapter's declared ``time_breakdown``).  Children are timed with forward hooks (CPU wall time; on CUDA the figures are launch
    times only); the members of an ``nn.ModuleList`` child are hooked one by one.  The remainder of the
    pass is reported under :data:`OTHER`.
    """
    totals: dict[str, float] = {}
    handles = []
    labels = child_labels(adapter, groups or {})
    for name, child in adapter.named_children():
        for target in (list(child) if isinstance(child, nn.ModuleList) else [child]):
            handles += _accumulate_into(totals, labels[name], target)
    try:
        total = timed(run, torch.device("cpu"))
    finally:
        for handle in handles:
            handle.remove()
    totals[OTHER] = max(0.0, total - sum(totals.values()))
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def _accumulate_into(totals: dict[str, float], label: str, module: nn.Module) -> list:
    """Hook ``module`` so each of its forward calls adds its wall seconds to ``totals[label]``; returns the handles."""
    start: list[float] = []

    def before(module, args) -> None:
        start.append(time.perf_counter())

    def after(module, args, output) -> None:
        totals[label] = totals.get(label, 0.0) + time.perf_counter() - start.pop()

    return [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
