"""One experiment with one seed, start to finish: reuse or rescore a finished one, else train, then score.

Rank 0 alone evaluates and writes; under ``torchrun`` every rank trains.  The rows it returns have empty time
columns: the run's timing phase fills them after every experiment (:mod:`bench.harness.timing_phase`).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import pandas as pd
import torch
from torch import nn

from relight_base import run_folder
from relight_base.atomic import atomic_write_text
from relight_base.results import UNTRAINED, Weights, untimed
from bench.harness.capabilities import set_guide
from bench.harness.config import ExperimentConfig, to_dict, to_yaml
from bench.harness.distributed import DistContext
from bench.harness.evaluate import METRICS, evaluate, summarise
from bench.harness.inference import load_trained
from bench.harness.job import ExperimentJob, TrainingOutcome
from bench.harness.modeling import (RelightingModel, build_model, has_trainable_parameters, inference_model,
                                    inference_options)
from bench.harness.prepare import HOLDOUT, PreparedRun
from bench.harness.result_rows import evaluated_weights, row_base
from bench.harness.reuse import discard_stale_state, finished_record, mark_finished, stored_step
from bench.harness.checkpoint import save_log, save_state, save_weights
from bench.harness.tensorboard_log import TensorBoardLog
from bench.harness.train import NonFiniteLoss, seed_everything, train_model
from bench.harness.validation import EMA_LOG_PREFIX, LOG_COLUMNS, Validation

log = logging.getLogger(__name__)


def run_experiment(prepared: PreparedRun, exp: ExperimentConfig, seed: int, ctx: DistContext,
                   lpips_metric, *, progress: bool, restart: bool = False) -> list[dict]:
    """Train (or reuse, or rescore) and evaluate one experiment with one seed; rank 0 returns its result rows."""
    job = ExperimentJob.of(prepared, exp, seed, ctx)
    finished = finished_record(job, restart)
    if finished is not None:
        if not ctx.is_main:
            return []
        if finished.get("scoring") == job.scoring:
            log.info("experiment %s: finished earlier with the same config; reusing its results", job.label)
            return finished["rows"]
        return _rescore(job, finished["rows"], lpips_metric, progress)
    if ctx.is_main:
        discard_stale_state(job, restart)
    ctx.barrier()
    seed_everything(seed)
    model = build_model(exp, job.cfg.weights).to(ctx.device)
    set_guide(model, job.prepared.train_split(exp.extra_data), job.cfg, exp)
    board = TensorBoardLog(job.folder / run_folder.TENSORBOARD_DIR) if job.cfg.train.tensorboard and ctx.is_main \
        else None
    try:
        training = _train_if_needed(job, model, progress, board)
        ctx.barrier()
        if not ctx.is_main:
            return []
        _save_training(job, model, training)
        _load_evaluated_weights(job, model, training)
        rows = _evaluate(job, model, row_base(job, model, training, _lpips_status(lpips_metric)), lpips_metric,
                         progress)
        if board is not None:
            board.log_hparams(_hparams(job), _final_scores(rows, training))
    finally:
        if board is not None:
            board.close()
    if training.status == "done":
        mark_finished(job, rows)
    return rows


def _hparams(job: ExperimentJob) -> dict:
    """What TensorBoard's HParams tab lists for a unit: the experiment's model and data, and its training settings."""
    cfg, exp = job.cfg, job.exp
    return {"experiment": exp.name, "model": exp.model, "seed": job.seed, "residual": exp.residual,
            "extra_data": str(exp.extra_data), "lr": cfg.train.lr, "schedule": cfg.train.schedule,
            "batch_size": cfg.train.batch_size, "accumulate": cfg.train.accumulate,
            "ema_decay": cfg.train.ema_decay if cfg.train.ema_decay is not None else 0.0, "steps": cfg.train.steps,
            "eval_weights": cfg.eval.weights}


def _final_scores(rows: list[dict], training: TrainingOutcome) -> dict[str, float]:
    """The unit's final scores for TensorBoard: each split's metrics (``final/val_psnr``, ...) and the best
    held-out scores of the raw weights and of their moving average."""
    scores = {f"final/{row['split']}_{metric}": row[metric] for row in rows for metric in METRICS}
    scores.update({"final/best_holdout": training.best_value, "final/ema_best_holdout": training.ema_best_value})
    return scores


def _lpips_status(lpips_metric) -> str:
    return lpips_metric.status if lpips_metric else "n/a"


def _rescore(job: ExperimentJob, stored_rows: list[dict], lpips_metric, progress: bool) -> list[dict]:
    """Score a finished experiment again under the current scoring settings (rank 0; no training).

    It loads the weights ``eval.weights`` names when the experiment kept them (best.pt only with validation),
    else model.pt.  best.pt itself was chosen once, during training, by the held-out scores of the scoring
    settings then in force.
    """
    base = {k: v for k, v in stored_rows[0].items() if k not in ("split", *METRICS)}
    trained = bests_from_log(job, TrainingOutcome(steps=int(base.get("steps") or 0),
                                                  best_step=stored_step(base.get("best_step"))))
    which = evaluated_weights(job.cfg, trained)
    weights = Weights.LAST if which == UNTRAINED else Weights(which)
    log.info("experiment %s: finished earlier with the same training settings but other scoring settings; "
             "rescoring its %s (no training)", job.label, weights.file)
    _, _, model = load_trained(job.prepared.run_dir, job.exp.name, job.seed, job.ctx.device, weights=weights.value)
    best_step, best_value = trained.best_of(which)
    base.update(untimed(), lpips_weights=_lpips_status(lpips_metric), eval_weights=which,
                best_step=best_step or math.nan, best_holdout=best_value)
    rows = _evaluate(job, model, base, lpips_metric, progress)
    mark_finished(job, rows)
    return rows


def bests_from_log(job: ExperimentJob, trained: TrainingOutcome) -> TrainingOutcome:
    """``trained`` with the steps and held-out scores of ``best.pt`` and ``ema_best.pt`` as the unit's
    ``train_log.csv`` records them (the first step with the highest ``train.best_metric``, as training chose
    them); ``trained`` unchanged when the log is missing or has no held-out column."""
    path = job.folder / run_folder.TRAIN_LOG_CSV
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError):
        return trained
    column = LOG_COLUMNS[job.cfg.train.best_metric]
    best = _first_maximum(frame, column)
    ema_best = _first_maximum(frame, EMA_LOG_PREFIX + column)
    return dataclasses.replace(trained, best_step=best[0] if column in frame else trained.best_step,
                               best_value=best[1] if column in frame else trained.best_value,
                               ema_best_step=ema_best[0], ema_best_value=ema_best[1])


def _first_maximum(frame: pd.DataFrame, column: str) -> tuple[int, float]:
    """The step and value of ``column``'s highest finite value (its first occurrence); ``(0, nan)`` without one."""
    if column not in frame or "step" not in frame:
        return 0, math.nan
    values = pd.to_numeric(frame[column], errors="coerce")
    values = values[values.notna() & values.apply(math.isfinite)]
    if values.empty:
        return 0, math.nan
    index = values.idxmax()  # the first of equal maxima, as BestSoFar keeps the first
    return int(frame.loc[index, "step"]), float(values[index])


def _train_if_needed(job: ExperimentJob, model: RelightingModel, progress: bool,
                     board: TensorBoardLog | None = None) -> TrainingOutcome:
    """Train ``model`` in place (every rank) unless it has nothing to train or training is off; ``board``: rank 0's
    TensorBoard event files (``train.tensorboard``)."""
    cfg, exp, seed = job.cfg, job.exp, job.seed
    if not has_trainable_parameters(model):
        return TrainingOutcome(message="no trainable parameters: evaluated as is")
    if not (cfg.train.steps > 0 or cfg.train.epochs):
        return TrainingOutcome()
    pairs = job.prepared.train_split(exp.extra_data)
    log.info("training %s (seed %d) on %d pairs", exp.name, seed, len(pairs))
    try:
        result = train_model(model, pairs, cfg, seed, job.ctx, progress=progress, desc=f"{exp.name} s{seed}",
                             checkpoint_dir=job.checkpoint_dir, fingerprint=job.fingerprint,
                             validation=_validation(job), board=board)
    except NonFiniteLoss as exc:
        log.error("experiment %s (seed %d) failed: %s", exp.name, seed, exc)
        return TrainingOutcome(status="failed", message=str(exc))
    return TrainingOutcome(steps=result.steps, seconds=result.seconds, perceptual=result.perceptual, log=result.log,
                           best_step=result.best_step, best_value=result.best_value, ema_state=result.ema_state,
                           ema_best_step=result.ema_best_step, ema_best_value=result.ema_best_value)


def _validation(job: ExperimentJob) -> Validation | None:
    """The :class:`bench.harness.validation.Validation` of ``train.val_every`` (None when it is 0)."""
    cfg = job.cfg
    if not cfg.train.val_every or HOLDOUT not in job.prepared.splits:
        return None
    ema_best = job.folder / run_folder.EMA_BEST_WEIGHTS if cfg.train.ema_decay is not None else None
    return Validation(job.prepared.splits[HOLDOUT], cfg.train.val_every, cfg.train.best_metric,
                      job.folder / run_folder.BEST_WEIGHTS, cfg.eval.batch_size, cfg.eval.quantize, cfg.eval.ssim,
                      ema_best)


def _load_evaluated_weights(job: ExperimentJob, model: nn.Module, training: TrainingOutcome) -> None:
    """Load the weights ``eval.weights`` names into ``model`` for scoring, when they are not the last ones
    (rank 0; model.pt and ema.pt are already saved).  Best weights are kept only by validation: without it the
    last ones of the same kind are scored."""
    if training.status != "done" or not training.steps:
        return
    chosen = Weights(job.cfg.eval.weights)
    which = Weights(evaluated_weights(job.cfg, training))
    if which is not chosen:
        log.warning("experiment %s: eval.weights is %s, but no held-out validation ran; scoring %s", job.label,
                    chosen.value, which.words)
    if which is Weights.LAST:
        return
    state = torch.load(job.folder / which.file, map_location=job.ctx.device, weights_only=True)
    model.load_state_dict(state)


def _save_training(job: ExperimentJob, model: nn.Module, training: TrainingOutcome) -> None:
    """The trained weights (unless training failed), the training log and the experiment's settings."""
    folder, cfg = job.folder, job.cfg
    if training.status == "done":
        save_weights(model, folder / run_folder.MODEL_WEIGHTS)
        if training.ema_state is not None:
            save_state(training.ema_state, folder / run_folder.EMA_WEIGHTS)
    save_log(training.log, folder / run_folder.TRAIN_LOG_CSV)
    settings = {"experiment": to_dict(job.exp), "seed": job.seed,
                "train": to_dict(cfg.train), "loss": to_dict(cfg.loss)}
    atomic_write_text(folder / run_folder.EXPERIMENT_YAML, to_yaml(settings))


def _evaluate(job: ExperimentJob, model: RelightingModel, base: dict, lpips_metric, progress: bool) -> list[dict]:
    """Score the inference model on every evaluation split: one result row per split (``base`` + split + metrics)."""
    cfg, ctx, folder = job.cfg, job.ctx, job.folder
    model.eval()
    fast = inference_model(model, **inference_options(cfg, ctx.device))  # what the timing phase uses too
    rows = []
    for split in cfg.eval.splits:
        pred_dir = run_folder.predictions_dir(folder, split) if cfg.eval.save_predictions else None
        per_image = evaluate(fast, job.prepared.splits[split], device=ctx.device, lpips_metric=lpips_metric,
                             batch_size=cfg.eval.batch_size, pred_dir=pred_dir, progress=progress,
                             desc=f"{job.exp.name} {split}", quantize=cfg.eval.quantize, ssim_kind=cfg.eval.ssim)
        atomic_write_text(run_folder.metrics_csv(folder, split), per_image.to_csv(index=False))
        rows.append({**base, "split": split, **summarise(per_image)})
    return rows
