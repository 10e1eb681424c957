"""A tuning trial as a unit of a run folder of its own, and the score it earns.

The trials of ``bench tune CONFIG`` live in ``<out>/<name>-tune/``, a run folder whose config
(:func:`trial_config`) differs from the benchmark's only where tuning must: ``tune.steps`` training steps,
``tune.holdout`` training scenes held out and scored every ``tune.val_every`` steps and at the last, the tuning
seeds (``tune.seeds``, never the evaluation seeds), and **no val or test scoring** (``eval.splits: []``): a
trial is judged on the held-out training scenes only.  Trial ``n`` of experiment ``mbnet`` is the experiment
``mbnet-t003`` of that folder, with the trial's values as its own ``train:`` settings, so the existing
launchers run it like any unit and a rerun reuses it when it finished.

A trial's objective (:func:`trial_score`) is read from each seed's ``train_log.csv``: the best (or the last)
held-out ``tune.objective`` over its validations, averaged over the tuning seeds.  A trial whose training
failed (a NaN loss, a crash) or never validated has no score: it counts toward the budget as the worst value.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd

from relight_base import run_folder
from bench.harness.config import BenchConfig, ExperimentConfig, ExperimentTrainConfig

TUNE_SUFFIX = "-tune"
WORST = {"psnr": 0.0, "ssim": -1.0}  # the value a failed trial is told: the bottom of each metric's range


def tune_run_name(cfg: BenchConfig) -> str:
    """The trials' run folder name: ``<name>-tune``."""
    return cfg.name + TUNE_SUFFIX


def trial_steps(cfg: BenchConfig) -> int:
    """Training steps of every trial: ``tune.steps``, else ``train.steps``."""
    return int(cfg.tune.steps or cfg.train.steps)


def trial_config(cfg: BenchConfig) -> BenchConfig:
    """The config every trial unit of ``cfg`` runs under (its experiments: the trials, see :func:`trial_experiment`)."""
    tune, steps = cfg.tune, trial_steps(cfg)
    val_every = tune.val_every or (cfg.train.val_every if 0 < cfg.train.val_every <= steps else steps)
    train = dataclasses.replace(cfg.train, steps=steps, epochs=None, val_every=min(val_every, steps),
                                holdout=tune.holdout, best_metric=tune.objective)
    evaluation = dataclasses.replace(cfg.eval, splits=[], weights="last", save_predictions=False)
    return dataclasses.replace(cfg, name=tune_run_name(cfg), train=train, eval=evaluation, seeds=list(tune.seeds),
                               experiments=[])


def tunable(cfg: BenchConfig) -> list[ExperimentConfig]:
    """The experiments ``bench tune`` tunes: those whose model has parameters (not ``identity``)."""
    from models.registry import count_parameters, load_plugins

    load_plugins(cfg.plugins)
    return [exp for exp in cfg.experiments if count_parameters(exp.model, **exp.model_args) > 0]


def trial_name(experiment: str, number: int) -> str:
    """``mbnet-t003``: trial ``number`` (0-based, Optuna's) of ``experiment``."""
    return f"{experiment}-t{number:03d}"


def trial_experiment(exp: ExperimentConfig, number: int, params: dict[str, Any]) -> ExperimentConfig:
    """Experiment ``exp`` as trial ``number``: the trial's values (``lr`` ...) as its own ``train:`` settings."""
    own = dataclasses.replace(exp.train, **params) if params else exp.train
    return dataclasses.replace(exp, name=trial_name(exp.name, number), train=dataclasses.replace(ExperimentTrainConfig(),
                               **own.overrides()))


def trial_folder(run_dir: Path, experiment: str, number: int, seed: int) -> Path:
    """Where trial ``number`` of ``experiment`` trains with ``seed``."""
    return run_folder.experiment_dir(run_dir, trial_name(experiment, number), seed)


def seed_score(folder: Path, metric: str, step: str) -> float:
    """One trial seed's held-out ``metric`` (``step``: best or last), NaN when it failed or never validated."""
    if not (folder / run_folder.RESULT_JSON).is_file():
        return math.nan  # training failed or never finished: no result.json
    log_path = folder / run_folder.TRAIN_LOG_CSV
    try:
        frame = pd.read_csv(log_path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return math.nan
    column = f"holdout_{metric}"
    if column not in frame:
        return math.nan
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    if values.empty:
        return math.nan
    value = float(values.max() if step == "best" else values.iloc[-1])
    return value if math.isfinite(value) else math.nan


def trial_score(run_dir: Path, cfg: BenchConfig, experiment: str, number: int) -> float:
    """The trial's objective: the mean over the tuning seeds of :func:`seed_score`; NaN when any seed has none."""
    scores = [seed_score(trial_folder(run_dir, experiment, number, seed), cfg.tune.objective, cfg.tune.objective_step)
              for seed in cfg.tune.seeds]
    return float(sum(scores) / len(scores)) if all(math.isfinite(s) for s in scores) else math.nan


def drop_weights(run_dir: Path, experiment: str, number: int, seeds: list[int]) -> None:
    """Delete a scored trial's weights (model.pt, best.pt): only its score and training log are kept."""
    for seed in seeds:
        folder = trial_folder(run_dir, experiment, number, seed)
        for name in (run_folder.MODEL_WEIGHTS, run_folder.BEST_WEIGHTS):
            (folder / name).unlink(missing_ok=True)
