"""One optimizer step of the training loop: its micro-batches, loss, backward pass and update, and the errors it
raises; the moving parts a training run builds once (:class:`TrainingRun`).

``train.accumulate`` splits the step's batch into micro-batches whose gradients add up before one optimizer step,
each micro-batch's loss weighted by its share of the batch, so the step's gradient is the whole batch's; under
DistributedDataParallel the gradients are synchronised on the last micro-batch only.  ``train.ema_decay`` keeps a
moving average of the weights (timm's ``ModelEmaV3``, rank 0), updated after each optimizer step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from relight_base.errors import BenchError
from bench.harness.capabilities import adapter_terms
from bench.harness.config import BenchConfig
from bench.harness.distributed import DistContext
from bench.harness.losses import RelightingLoss
from bench.harness.tensorboard_log import TensorBoardLog
from bench.harness.validation import Validation


class NonFiniteLoss(BenchError):
    """Training produced a NaN or infinite loss."""


class TrainingOutOfMemory(BenchError):
    """The device ran out of memory during a training step."""


def autocast_for(cfg: BenchConfig, device: torch.device):
    """The autocast context of ``train.amp`` (CUDA only; off on CPU with a warning)."""
    if cfg.train.amp == "off":
        return torch.autocast(device.type, enabled=False)
    if device.type != "cuda":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if cfg.train.amp == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


@dataclass
class TrainingRun:
    """The moving parts of one training run, built once before the first step."""

    cfg: BenchConfig
    ctx: DistContext
    model: nn.Module  # whose state is trained and saved
    net: nn.Module  # what a step calls: ``model``, or its DistributedDataParallel wrapper
    criterion: RelightingLoss
    sampler: DistributedSampler
    loader: Iterable[dict]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    batch: int  # images per micro-batch on this process
    steps: int  # optimizer steps to take in all
    accumulate: int = 1  # micro-batches per optimizer step
    ema: ModelEmaV3 | None = None  # train.ema_decay: the moving average of the weights (rank 0)
    board: TensorBoardLog | None = None  # train.tensorboard: the unit's event files (rank 0)
    validation: Validation | None = None  # train.val_every: validate on held-out scenes (rank 0), keep best.pt


def moving_average(model: nn.Module, decay: float | None) -> ModelEmaV3 | None:
    """timm's ``ModelEmaV3`` of ``model`` with a constant ``decay`` (None: no moving average).

    After each optimizer step every floating-point entry of the state dict (parameters and BatchNorm running
    statistics alike, as timm does) becomes ``decay * average + (1 - decay) * current``; integer buffers are
    copied.  It starts as a copy of the initial weights and touches no random number generator.
    """
    if decay is None:
        return None
    return ModelEmaV3(model, decay=decay)


def train_step(run: TrainingRun, group: list[dict], step: int) -> tuple[float, dict[str, float], float]:
    """One optimizer step on the micro-batches of ``group`` (each ``rgb``/``target``: (b,3,H,W), ``depth``:
    (b,1,H,W), floats in [0,1]); then the moving average's update.

    Each micro-batch's loss is weighted by its share of the group's images before its backward pass, so the
    gradients add up to those of the mean loss over the whole group (exactly so for a network without
    BatchNorm, whose statistics see each micro-batch alone).  Under DDP the gradients are synced on the last
    micro-batch only.  ``step`` is the number of optimizer steps taken before this one.  Returns the loss and
    its terms (means over the group's images) and the learning rate the step used.
    """
    sizes = [len(sample["rgb"]) for sample in group]
    total = sum(sizes)
    run.optimizer.zero_grad(set_to_none=True)
    loss_sum, term_sums = 0.0, {}
    for index, (sample, size) in enumerate(zip(group, sizes)):
        share = 1.0 if len(group) == 1 else size / total
        with _gradient_sync(run, last=index == len(group) - 1):
            loss, terms = _micro_step(run, sample, step, share)
        loss_sum += loss * share
        for name, value in terms.items():
            term_sums[name] = term_sums.get(name, 0.0) + value * share
    run.scaler.step(run.optimizer)
    run.scaler.update()
    lr = run.scheduler.get_last_lr()[0]
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update(run.model)
    return loss_sum, term_sums, lr


def _gradient_sync(run: TrainingRun, last: bool):
    """DDP's ``no_sync`` on every micro-batch but the last of a step (a null context otherwise)."""
    if last or not isinstance(run.net, DistributedDataParallel):
        return contextlib.nullcontext()
    return run.net.no_sync()


def _micro_step(run: TrainingRun, sample: dict, step: int, share: float) -> tuple[float, dict[str, float]]:
    """Forward, loss and backward of one micro-batch, its loss scaled by ``share``; returns its (unscaled) loss
    and terms.  Raises :class:`NonFiniteLoss` before the backward pass when the loss is NaN or infinite."""
    rgb = sample["rgb"].to(run.ctx.device, non_blocking=True)
    depth = sample["depth"].to(run.ctx.device, non_blocking=True)
    target = sample["target"].to(run.ctx.device, non_blocking=True)
    try:
        with autocast_for(run.cfg, run.ctx.device):
            pred = run.net(rgb, depth)
        loss, terms = run.criterion(pred.float(), target)
        if run.cfg.loss.adapter_terms:
            loss, terms = _add_adapter_terms(run.model, target, loss, terms)
    except torch.OutOfMemoryError as exc:
        raise _out_of_memory(run, step, exc) from None
    _check_finite(loss, terms, step, run.scheduler)
    try:
        run.scaler.scale(loss if share == 1.0 else loss * share).backward()
    except torch.OutOfMemoryError as exc:
        raise _out_of_memory(run, step, exc) from None
    return float(loss.detach()), terms


def _add_adapter_terms(model: nn.Module, target: torch.Tensor, loss: torch.Tensor,
                       terms: dict[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    """``loss.adapter_terms``: the adapter's auxiliary terms of this forward, weight 1 each, logged by name."""
    extra = adapter_terms(model, target)
    for name, value in extra.items():
        loss = loss + value.float()
        terms = {**terms, name: float(value.detach())}
    return loss, terms


def _check_finite(loss: torch.Tensor, terms: dict[str, float], step: int,
                  scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """Raise :class:`NonFiniteLoss`, naming every loss term and the lr, when ``loss`` is NaN or infinite."""
    if torch.isfinite(loss):
        return
    raise NonFiniteLoss(
        f"non-finite loss at step {step + 1}: total {float(loss.detach())}, terms "
        + ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
        + f"; lr {scheduler.get_last_lr()[0]:.3g}. Lower train.lr, or use train.amp=off"
    )


def _out_of_memory(run: TrainingRun, step: int, exc: BaseException) -> TrainingOutOfMemory:
    """The message of an out-of-memory error at ``step``: the sizes that caused it and what to lower."""
    cfg = run.cfg
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TrainingOutOfMemory(
        f"out of memory on {run.ctx.device} at training step {step + 1} with train.batch_size={cfg.train.batch_size} "
        f"({run.batch} per micro-batch and process) at data.size={cfg.data.size} ({first}). Lower train.batch_size "
        f"or data.size, raise train.accumulate (the same batch in smaller micro-batches), use train.amp=bf16 on a "
        f"GPU, or spread the batch over more GPUs with torchrun"
    )
