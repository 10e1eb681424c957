"""The one training loop every adapter shares (paper, section 4.1).

Adam (betas 0.5, 0.999), lr 1e-4 divided by 10 after a quarter of training by
default (the paper: after 50 of 200 epochs; :mod:`bench.harness.optim`), batch size 3, the paper's loss.
CPU or CUDA, optional AMP on CUDA, deterministic seeding, a tqdm bar with loss
and ETA, and DistributedDataParallel when launched by torchrun: the configured
batch size is the global batch, split evenly over the processes, and DDP
averages the gradients, so N processes take the same steps as one process
over the same global batch.

``train.accumulate`` splits that batch further into micro-batches whose gradients add up before one
optimizer step (each micro-batch's loss weighted by its share of the batch, so the step's gradient is the
full batch's; DDP syncs gradients on the last micro-batch only).  ``train.ema_decay`` keeps a moving
average of the weights (timm's ``ModelEmaV3``, rank 0), checkpointed with the rest and validated beside
the raw weights; ``train.tensorboard`` mirrors the training log into TensorBoard event files (rank 0).
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from relight_base.errors import ConfigError
from bench.harness import checkpoint as ckpt
from bench.speedups.allocator import steady_allocator
from bench.harness.config import BenchConfig
from bench.harness.distributed import DistContext
from bench.harness.losses import RelightingLoss
from bench.harness.optim import make_optimizer, make_scheduler
from bench.speedups.small_map_conv import small_map_convs
from bench.harness.tensorboard_log import TensorBoardLog
from bench.harness.train_step import (NonFiniteLoss, TrainingOutOfMemory, TrainingRun, autocast_for,  # noqa: F401
                                      moving_average)
from bench.harness.train_step import train_step as _train_step
from bench.harness.validation import EMA_LOG_PREFIX, BestSoFar, Validation, held_out_predictions, held_out_scores

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What one training run did."""

    steps: int
    seconds: float
    perceptual: str
    log: pd.DataFrame = field(repr=False)
    best_step: int = 0  # the step of best.pt (0: no validation ran)
    best_value: float = math.nan  # its held-out score (train.best_metric)
    ema_state: dict | None = field(default=None, repr=False)  # the moving average's state dict at the end (ema.pt)
    ema_best_step: int = 0  # the step of ema_best.pt (0: no EMA, or no validation)
    ema_best_value: float = math.nan  # its held-out score


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def total_steps(cfg: BenchConfig, n_samples: int, world_size: int = 1) -> int:
    """``train.steps``, or ``train.epochs`` passes over the training pairs (optimizer steps either way)."""
    if cfg.train.epochs is None:
        return cfg.train.steps
    per_rank = math.ceil(n_samples / world_size)
    micro_batches = math.ceil(per_rank / per_rank_batch(cfg, world_size))
    return cfg.train.epochs * math.ceil(micro_batches / cfg.train.accumulate)


def per_rank_batch(cfg: BenchConfig, world_size: int) -> int:
    """Images per micro-batch on one process: the global batch split over ``train.accumulate`` micro-batches
    and ``world_size`` processes; it must divide evenly (a :class:`ConfigError` naming the keys otherwise)."""
    parts = world_size * cfg.train.accumulate
    if cfg.train.batch_size % parts:
        raise ConfigError(
            f"train.batch_size: {cfg.train.batch_size} does not split evenly over {world_size} processes x "
            f"train.accumulate {cfg.train.accumulate} micro-batches; use a multiple of {parts}"
        )
    return cfg.train.batch_size // parts


@dataclass
class _Progress:
    """How far training has got: what a checkpoint stores besides the states of the modules."""

    step: int = 0  # optimisation steps taken
    epoch: int = 0  # the pass over the data under way
    position: int = 0  # batches of ``epoch`` already trained on
    rows: list[dict] = field(default_factory=list)  # the training log so far
    elapsed: float = 0.0  # seconds trained before this process started (a resumed run)
    best: BestSoFar = field(default_factory=BestSoFar)  # the best held-out score so far (validation only)
    ema_best: BestSoFar = field(default_factory=BestSoFar)  # the moving average's best held-out score so far


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
    board: TensorBoardLog | None = None,
) -> TrainResult:
    """Train ``model`` (already on ``ctx.device``) on ``dataset`` for the configured steps.

    With ``checkpoint_dir``, continues from the newest checkpoint there whose ``fingerprint`` matches,
    and writes one every ``train.checkpoint_every`` steps (rank 0).  With ``validation``, rank 0 scores the
    held-out pairs when :meth:`Validation.due`, logs the scores and writes the best weights so far to
    ``validation.best_path`` (and, with ``train.ema_decay``, the moving average's to ``validation.ema_best_path``).
    With ``board`` (rank 0), every training-log row also goes to its TensorBoard event files.  Returns the
    per-step log (rank 0's losses and held-out scores) and the moving average's final state.
    Raises :class:`NonFiniteLoss` on a NaN/inf loss.
    """
    if cfg.train.amp != "off" and ctx.device.type != "cuda":
        log.warning("train.amp=%s is for CUDA; training in float32 on %s", cfg.train.amp, ctx.device)
    run = _build_run(model, dataset, cfg, seed, ctx)
    run.validation = validation
    run.board = board if ctx.is_main else None
    saver = None
    if checkpoint_dir is not None:
        saver = _Checkpoints(checkpoint_dir, fingerprint, cfg.train.checkpoint_every, cfg.train.keep_checkpoints)
    at = _resume(run, saver, desc)
    _forget_stale_best(run, at)
    if run.board is not None:
        run.board.open(at.step, at.rows)
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
    ema_best_value = at.ema_best.value if at.ema_best.step else math.nan
    return TrainResult(at.step, time.perf_counter() - start, run.criterion.perceptual_status, pd.DataFrame(at.rows),
                       at.best.step, best_value, run.ema.module.state_dict() if run.ema is not None else None,
                       at.ema_best.step, ema_best_value)


def _forget_stale_best(run: TrainingRun, at: _Progress) -> None:
    """A fresh start (nothing resumed) removes a ``best.pt`` (and ``ema_best.pt``) an earlier, abandoned run left
    behind (rank 0)."""
    if run.validation is None or at.step or not run.ctx.is_main:
        return
    for path in (run.validation.best_path, run.validation.ema_best_path):
        if path is not None:
            Path(path).unlink(missing_ok=True)


def _build_run(model: nn.Module, dataset, cfg: BenchConfig, seed: int, ctx: DistContext) -> TrainingRun:
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
    ema = moving_average(model, cfg.train.ema_decay) if ctx.is_main else None
    return TrainingRun(cfg, ctx, model, net, criterion, sampler, loader, optimizer, scheduler, scaler, batch, steps,
                        cfg.train.accumulate, ema)


def _resume(run: TrainingRun, saver: _Checkpoints | None, desc: str) -> _Progress:
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
        if run.ema is not None:
            run.ema.module.load_state_dict(resumed["ema"])
        ckpt.set_rng_state(resumed["rng"])
        at = _Progress(resumed["step"], resumed["epoch"], resumed["position"], list(resumed["rows"]),
                       resumed["elapsed"], BestSoFar.from_state(resumed.get("best")),
                       BestSoFar.from_state(resumed.get("ema_best")))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        newest = (ckpt.checkpoints(saver.folder) or [saver.folder])[-1]
        raise ckpt.unusable(newest, f"it does not fit this experiment ({ckpt.exception_line(exc)})") from None
    log.info("%s: resuming from step %d of %d", desc, at.step, run.steps)
    return at


def _train_epoch(run: TrainingRun, at: _Progress, start: float, bar: tqdm, saver: _Checkpoints | None) -> None:
    """Train on the micro-batches of epoch ``at.epoch`` from ``at.position`` on, ``run.accumulate`` of them per
    optimizer step (fewer for the last step of an epoch that does not divide), until the epoch ends or the steps
    run out."""
    run.sampler.set_epoch(at.epoch)
    group: list[dict] = []
    last_index = at.position - 1
    for index, sample in enumerate(run.loader):
        if index < at.position:  # resuming inside an epoch: these micro-batches were already trained on
            continue
        if at.step >= run.steps:
            break
        group.append(sample)
        last_index = index
        if len(group) == run.accumulate:
            _optimizer_step(run, at, group, last_index, start, bar, saver)
            group = []
    if group and at.step < run.steps:
        _optimizer_step(run, at, group, last_index, start, bar, saver)


def _optimizer_step(run: TrainingRun, at: _Progress, group: list[dict], last_index: int, start: float, bar: tqdm,
                    saver: _Checkpoints | None) -> None:
    """One optimizer step on ``group``'s micro-batches (the last of which is number ``last_index`` of the epoch),
    then its bookkeeping: validation, the log row, the bar, the data position and a checkpoint when due."""
    loss, terms, lr = _train_step(run, group, at.step)
    at.step += 1
    held_out = _validate_if_due(run, at)
    if at.step % run.cfg.train.log_every == 0 or at.step == run.steps or held_out:
        row = {"step": at.step, "epoch": at.epoch, "lr": lr, "loss": loss, **terms, **held_out,
               "seconds": round(time.perf_counter() - start, 4)}
        at.rows.append(row)
        if run.board is not None:
            run.board.log_row(row)
    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
    bar.update(1)
    at.position = last_index + 1
    if saver is not None and run.ctx.is_main and saver.every and at.step % saver.every == 0 and at.step < run.steps:
        _save_checkpoint(run, at, saver, elapsed=time.perf_counter() - start)


def _validate_if_due(run: TrainingRun, at: _Progress) -> dict[str, float]:
    """Rank 0, when validation is due after step ``at.step``: held-out scores, and ``best.pt`` if they beat the best;
    with an EMA, the same for the moving average (``ema_holdout_*``, ``ema_best.pt``).

    Returns the scores for the training log (``holdout_psnr``, ``holdout_ssim``, ``ema_holdout_*``), or ``{}``
    when nothing ran.  The other processes go on to the next step and wait for rank 0 in its gradient all-reduce.
    """
    validation = run.validation
    if validation is None or not run.ctx.is_main or not validation.due(at.step, run.steps):
        return {}
    column = f"holdout_{validation.metric}"
    scores = held_out_scores(run.model, validation, run.ctx.device)
    if at.best.offer(at.step, scores[column]) and validation.best_path is not None:
        ckpt.save_weights(run.model, validation.best_path)
    if run.ema is not None:
        ema_scores = held_out_scores(run.ema.module, validation, run.ctx.device)
        scores.update({EMA_LOG_PREFIX + key: value for key, value in ema_scores.items()})
        if at.ema_best.offer(at.step, ema_scores[column]) and validation.ema_best_path is not None:
            ckpt.save_weights(run.ema.module, validation.ema_best_path)
    if run.board is not None:
        run.board.log_images(held_out_predictions(run.model, validation, run.ctx.device), at.step)
    return scores


def _save_checkpoint(run: TrainingRun, at: _Progress, saver: _Checkpoints, elapsed: float) -> None:
    """Everything :func:`_resume` restores, written as the checkpoint of step ``at.step``."""
    ckpt.save_checkpoint(saver.folder, {
        "fingerprint": saver.fingerprint, "step": at.step, "epoch": at.epoch, "position": at.position,
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(), "rng": ckpt.rng_state(),
        "rows": at.rows, "elapsed": elapsed, "best": at.best.state(),
        **({"ema": run.ema.module.state_dict(), "ema_best": at.ema_best.state()} if run.ema is not None else {}),
    }, keep=saver.keep)
