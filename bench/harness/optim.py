"""The optimiser and the learning-rate schedule every experiment trains with (paper, section 4.1).

Adam (betas 0.5, 0.999) in its fused single-kernel form where available; the schedule ``train.schedule``
names: ``step`` (the paper's: lr divided by 10 after a quarter of training), ``constant`` or ``cosine``, the
latter two with an optional linear warm-up.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from bench.harness.config import BenchConfig

log = logging.getLogger(__name__)


def make_optimizer(model: nn.Module, cfg: BenchConfig) -> torch.optim.Optimizer:
    """Adam over the trainable parameters (section 4.1), in its fused single-kernel form.

    The fused implementation (CPU and CUDA) computes the same update as the per-parameter loop in
    one pass over the parameters; ``python -m bench perf`` times both (docs/performance.md).  It
    falls back to the default implementation where the fused kernel is unavailable.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = {"lr": cfg.train.lr, "betas": tuple(cfg.train.betas)}
    if params and all(p.device.type in ("cpu", "cuda") and p.dtype in _FUSED_DTYPES for p in params):
        try:
            return torch.optim.Adam(params, fused=True, **kwargs)
        except (RuntimeError, TypeError) as exc:  # an older torch, or a device without the fused kernel
            log.debug("fused Adam unavailable (%s); using the default implementation", exc)
    return torch.optim.Adam(params, **kwargs)


_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: BenchConfig, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The lr schedule ``train.schedule`` names, over ``steps`` optimisation steps.

    ``step`` (the paper's): lr times ``train.lr_decay_factor`` after ``train.lr_decay_step`` (default: a quarter
    of ``steps``).  ``constant`` and ``cosine``: :class:`ScheduleFactor` (a linear warm-up of
    ``train.warmup_steps``, then a constant lr or a cosine decay to 0 at step ``steps``).
    """
    train = cfg.train
    if train.schedule == "step":
        decay_at = train.lr_decay_step if train.lr_decay_step is not None else max(1, steps // 4)
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[decay_at], gamma=train.lr_decay_factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, ScheduleFactor(train.schedule, train.warmup_steps, steps))


@dataclass
class ScheduleFactor:
    """The lr multiplier at a step (0-based) of the ``constant`` and ``cosine`` schedules.

    During warm-up (steps ``0 .. warmup-1``) it rises linearly: ``(step + 1) / warmup``.  After it, ``constant``
    stays at 1 and ``cosine`` falls as ``0.5 * (1 + cos(pi * t))``, ``t`` going from 0 at the end of warm-up to 1
    at step ``total``.  A callable object, so the scheduler's ``state_dict`` (and a resumed run) keeps it.
    """

    kind: str
    warmup: int
    total: int

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
