"""The one training loop every adapter shares (paper, section 4.1).

Adam (betas 0.5, 0.999), lr 1e-4 divided by 10 after a quarter of training by
default (the paper: after 50 of 200 epochs; :mod:`bench.harness.optim`), batch size 3, the paper's loss.
CPU or CUDA, optional AMP on CUDA, deterministic seeding, a tqdm bar with loss
and ETA, and DistributedDataParallel when launched by torchrun: the configured
batch size is the global batch, split evenly over the processes, and DDP
averages the gradients, so N processes take the same steps as one process
over the same global batch.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from relight_base.errors import BenchError, ConfigError
from bench.harness import checkpoint as ckpt
from bench.harness.capabilities import adapter_terms
from bench.speedups.allocator import steady_allocator
from bench.harness.config import BenchConfig
from bench.harness.distributed import DistContext
from bench.harness.losses import RelightingLoss
from bench.harness.optim import make_optimizer, make_scheduler
from bench.speedups.small_map_conv import small_map_convs
from bench.harness.validation import BestSoFar, Validation, held_out_scores

log = logging.getLogger(__name__)


class NonFiniteLoss(BenchError):
    """Training produced a NaN or infinite loss."""


class TrainingOutOfMemory(BenchError):
    """The device ran out of memory during a training step."""


@dataclass
class TrainResult:
    """What one training run did."""

    steps: int
    seconds: float
    perceptual: str
    log: pd.DataFrame = field(repr=False)
    best_step: int = 0  # the step of best.pt (0: no validation ran)
    best_value: float = math.nan  # its held-out score (train.best_metric)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def total_steps(cfg: BenchConfig, n_samples: int, world_size: int = 1) -> int:
    """``train.steps``, or ``train.epochs`` passes over the training pairs."""
    if cfg.train.epochs is None:
        return cfg.train.steps
    per_rank = math.ceil(n_samples / world_size)
    return cfg.train.epochs * math.ceil(per_rank / per_rank_batch(cfg, world_size))


def per_rank_batch(cfg: BenchConfig, world_size: int) -> int:
    """The global batch split over processes; it must divide evenly."""
    if cfg.train.batch_size % world_size:
        raise ConfigError(
            f"train.batch_size: {cfg.train.batch_size} does not split evenly over {world_size} processes; "
            f"use a multiple of {world_size}"
        )
    return cfg.train.batch_size // world_size


def autocast_for(cfg: BenchConfig, device: torch.device):
    """The autocast context of ``train.amp`` (CUDA only; off on CPU with a warning)."""
    if cfg.train.amp == "off":
        return torch.autocast(device.type, enabled=False)
    if device.type != "cuda":
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if cfg.train.amp == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


@dataclass
class _TrainingRun:
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
    batch: int  # images per step on this process
    steps: int  # steps to take in all
    validation: Validation | None = None  # train.val_every: validate on held-out scenes (rank 0), keep best.pt


@dataclass
class _Progress:
    """How far training has got: what a checkpoint stores besides the states of the modules."""

    step: int = 0  # optimisation steps taken
    epoch: int = 0  # the pass over the data under way
    position: int = 0  # batches of ``epoch`` already trained on
    rows: list[dict] = field(default_factory=list)  # the training log so far
    elapsed: float = 0.0  # seconds trained before this process started (a resumed run)
    best: BestSoFar = field(default_factory=BestSoFar)  # the best held-out score so far (validation only)


@dataclass(frozen=True)
class _Checkpoints:
    """Where and how often rank 0 writes resumable checkpoints, and which of them may be resumed."""

    folder: Path
    fingerprint: str
    every: int  # 0: never write one
    keep: int


def train_model(
    model: nn.Module,
    dataset,
    cfg: BenchConfig,
    seed: int,
    ctx: DistContext,
    *,
    progress: bool = True,
    desc: str = "train",
    checkpoint_dir: Path | None = None,
    fingerprint: str = "",
    validation: Validation | None = None,
) -> TrainResult:
    """Train ``model`` (already on ``ctx.device``) on ``dataset`` for the configured steps.

    With ``checkpoint_dir``, continues from the newest checkpoint there whose ``fingerprint`` matches,
    and writes one every ``train.checkpoint_every`` steps (rank 0).  With ``validation``, rank 0 scores the
    held-out pairs when :meth:`Validation.due`, logs the scores and writes the best weights so far to
    ``validation.best_path``.  Returns the per-step log (rank 0's losses and held-out scores).
    Raises :class:`NonFiniteLoss` on a NaN/inf loss.
    """
    if cfg.train.amp != "off" and ctx.device.type != "cuda":
        log.warning("train.amp=%s is for CUDA; training in float32 on %s", cfg.train.amp, ctx.device)
    run = _build_run(model, dataset, cfg, seed, ctx)
    run.validation = validation
    saver = None
    if checkpoint_dir is not None:
        saver = _Checkpoints(checkpoint_dir, fingerprint, cfg.train.checkpoint_every, cfg.train.keep_checkpoints)
    at = _resume(run, saver, desc)
    _forget_stale_best(run, at)
    model.train()
    start = time.perf_counter() - at.elapsed
    bar = tqdm(total=run.steps, initial=at.step, desc=desc, disable=not (progress and ctx.is_main),
               dynamic_ncols=True, leave=False)
    # steady_allocator: no page faults per step (MBNet's step at 64 px: 0.6x the time, allocator_effect.py);
    # small_map_convs: wide 3x3 convolutions on <= 4x4 maps as one matrix product (0.78-0.89x, training_step.py)
    with steady_allocator(), small_map_convs(model):
        while at.step < run.steps:
            _train_epoch(run, at, start, bar, saver)
            at.epoch += 1
            at.position = 0
    bar.close()
    best_value = at.best.value if at.best.step else math.nan
    return TrainResult(at.step, time.perf_counter() - start, run.criterion.perceptual_status, pd.DataFrame(at.rows),
                       at.best.step, best_value)


def _forget_stale_best(run: _TrainingRun, at: _Progress) -> None:
    """A fresh start (nothing resumed) removes a ``best.pt`` an earlier, abandoned run left behind (rank 0)."""
    path = run.validation.best_path if run.validation else None
    if path is not None and at.step == 0 and run.ctx.is_main:
        Path(path).unlink(missing_ok=True)


def _build_run(model: nn.Module, dataset, cfg: BenchConfig, seed: int, ctx: DistContext) -> _TrainingRun:
    """Loss, sampler and loader, the DDP wrapper, optimizer, LR schedule and AMP scaler, in that order."""
    from datasets.dataset import make_loader

    batch = per_rank_batch(cfg, ctx.world_size)
    steps = total_steps(cfg, len(dataset), ctx.world_size)
    criterion = RelightingLoss(cfg.loss, vgg_pretrained=cfg.weights.perceptual).to(ctx.device)
    sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
    loader = make_loader(dataset, batch_size=batch, shuffle=False, workers=cfg.data.workers, seed=seed, sampler=sampler)
    net: nn.Module = model
    if ctx.distributed:
        net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.amp == "fp16" and ctx.device.type == "cuda")
    return _TrainingRun(cfg, ctx, model, net, criterion, sampler, loader, optimizer, scheduler, scaler, batch, steps)


def _resume(run: _TrainingRun, saver: _Checkpoints | None, desc: str) -> _Progress:
    """Restore the newest matching checkpoint into ``run`` (states and RNGs); a fresh start without one.

    Raises :class:`bench.harness.checkpoint.CheckpointError` when the newest checkpoint cannot be loaded safely
    or does not fit ``run`` (never a silent fresh start then).
    """
    resumed = ckpt.load_latest(saver.folder, saver.fingerprint) if saver is not None else None
    if resumed is None:
        return _Progress()
    try:
        run.model.load_state_dict(resumed["model"])
        run.optimizer.load_state_dict(resumed["optimizer"])
        run.scheduler.load_state_dict(resumed["scheduler"])
        run.scaler.load_state_dict(resumed["scaler"])
        ckpt.set_rng_state(resumed["rng"])
        at = _Progress(resumed["step"], resumed["epoch"], resumed["position"], list(resumed["rows"]),
                       resumed["elapsed"], BestSoFar.from_state(resumed.get("best")))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        newest = (ckpt.checkpoints(saver.folder) or [saver.folder])[-1]
        raise ckpt.unusable(newest, f"it does not fit this experiment ({ckpt.exception_line(exc)})") from None
    log.info("%s: resuming from step %d of %d", desc, at.step, run.steps)
    return at


def _train_epoch(run: _TrainingRun, at: _Progress, start: float, bar: tqdm, saver: _Checkpoints | None) -> None:
    """Train on the batches of epoch ``at.epoch`` from ``at.position`` on, until it ends or the steps run out."""
    run.sampler.set_epoch(at.epoch)
    for index, sample in enumerate(run.loader):
        if index < at.position:  # resuming inside an epoch: these batches were already trained on
            continue
        if at.step >= run.steps:
            break
        loss, terms, lr = _train_step(run, sample, at.step)
        at.step += 1
        held_out = _validate_if_due(run, at)
        if at.step % run.cfg.train.log_every == 0 or at.step == run.steps or held_out:
            at.rows.append({"step": at.step, "epoch": at.epoch, "lr": lr, "loss": loss, **terms, **held_out,
                            "seconds": round(time.perf_counter() - start, 4)})
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.update(1)
        at.position = index + 1
        if saver is not None and run.ctx.is_main and saver.every and at.step % saver.every == 0 and at.step < run.steps:
            _save_checkpoint(run, at, saver, elapsed=time.perf_counter() - start)


def _validate_if_due(run: _TrainingRun, at: _Progress) -> dict[str, float]:
    """Rank 0, when validation is due after step ``at.step``: held-out scores, and ``best.pt`` if they beat the best.

    Returns the scores for the training log (``holdout_psnr``, ``holdout_ssim``), or ``{}`` when nothing ran.
    The other processes go on to the next step and wait for rank 0 in its gradient all-reduce.
    """
    validation = run.validation
    if validation is None or not run.ctx.is_main or not validation.due(at.step, run.steps):
        return {}
    scores = held_out_scores(run.model, validation, run.ctx.device)
    if at.best.offer(at.step, scores[f"holdout_{validation.metric}"]) and validation.best_path is not None:
        ckpt.save_weights(run.model, validation.best_path)
    return scores


def _train_step(run: _TrainingRun, sample: dict, step: int) -> tuple[float, dict[str, float], float]:
    """One optimisation step on ``sample`` (``rgb``/``target``: (B,3,H,W), ``depth``: (B,1,H,W), floats in [0,1]).

    ``step`` is the number of steps taken before this one.  Returns the loss, its terms and the
    learning rate the step used.
    """
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
    run.optimizer.zero_grad(set_to_none=True)
    try:
        run.scaler.scale(loss).backward()
    except torch.OutOfMemoryError as exc:
        raise _out_of_memory(run, step, exc) from None
    run.scaler.step(run.optimizer)
    run.scaler.update()
    lr = run.scheduler.get_last_lr()[0]
    run.scheduler.step()
    return float(loss.detach()), terms, lr


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


def _save_checkpoint(run: _TrainingRun, at: _Progress, saver: _Checkpoints, elapsed: float) -> None:
    """Everything :func:`_resume` restores, written as the checkpoint of step ``at.step``."""
    ckpt.save_checkpoint(saver.folder, {
        "fingerprint": saver.fingerprint, "step": at.step, "epoch": at.epoch, "position": at.position,
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(), "rng": ckpt.rng_state(),
        "rows": at.rows, "elapsed": elapsed, "best": at.best.state(),
    }, keep=saver.keep)


def _out_of_memory(run: _TrainingRun, step: int, exc: BaseException) -> TrainingOutOfMemory:
    """The message of an out-of-memory error at ``step``: the sizes that caused it and what to lower."""
    cfg = run.cfg
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TrainingOutOfMemory(
        f"out of memory on {run.ctx.device} at training step {step + 1} with train.batch_size={cfg.train.batch_size} "
        f"({run.batch} per process) at data.size={cfg.data.size} ({first}). Lower train.batch_size or data.size, "
        f"use train.amp=bf16 on a GPU, or spread the batch over more GPUs with torchrun"
    )
