"""Checks of a converted config that span several keys or need more than a type (run after the conversion)."""

from __future__ import annotations

import difflib
import logging

from relight_base.results import Weights
from relight_base.run_folder import name_problem
from relight_base.typed_config import Problems
from bench.harness.config.schema import BenchConfig, ExperimentConfig, LauncherConfig, TuneConfig

log = logging.getLogger(__name__)

STRATEGY_NAMES = ("extra_input", "mirror")


def check_config(cfg: BenchConfig, problems: Problems) -> None:
    """Checks that span several keys or need more than a type."""
    from datasets.conditions import Condition  # local import: datasets depends on relight_base.errors only

    for key in ("input", "target", "extra_input"):
        try:
            Condition.parse(getattr(cfg.data, key))
        except Exception as exc:  # DataError from the parser
            problems.add(("data", key), f"data.{key}: {exc}")
    if (problem := name_problem(cfg.name, experiment=False)) is not None:
        problems.add(("name",), f"name: {problem}")
    betas = cfg.train.betas
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        problems.add(("train", "betas"), f"train.betas: expected two numbers in [0, 1), got {betas!r}")
    if not cfg.experiments:
        problems.add(("experiments",), "experiments: at least one experiment is needed")
    if not cfg.seeds:
        problems.add(("seeds",), "seeds: at least one seed is needed")
    repeated = sorted({seed for seed in cfg.seeds if cfg.seeds.count(seed) > 1})
    if repeated:
        problems.add(("seeds",), f"seeds: {', '.join(map(str, repeated))} repeated; each seed must appear once "
                                 "(a repeated seed would count the same run twice in every interval)")
    if not 0.5 <= cfg.report.confidence < 1.0:
        problems.add(("report", "confidence"), f"report.confidence: expected a level in [0.5, 1), got {cfg.report.confidence!r}")
    if cfg.eval.weights == Weights.BEST.value and not cfg.train.val_every:
        problems.add(("eval", "weights"), "eval.weights: best needs train.val_every > 0 (best.pt is chosen by the "
                                          "held-out score that val_every computes); set it or use eval.weights: last")
    _check_training_extras(cfg, problems)
    _migrate_timing_runs(cfg)
    _check_experiments(cfg.experiments, problems)
    _check_launcher(cfg.launcher, problems)
    _check_tune(cfg, problems)


def _check_training_extras(cfg: BenchConfig, problems: Problems) -> None:
    """EMA decay in (0, 1), accumulation that splits the batch, EMA weights only where an EMA is kept."""
    decay = cfg.train.ema_decay
    if decay is not None and not 0.0 < decay < 1.0:
        problems.add(("train", "ema_decay"), f"train.ema_decay: expected a decay in (0, 1), e.g. 0.999, or null "
                                             f"(no moving average); got {decay!r}")
    if cfg.train.batch_size % cfg.train.accumulate:
        problems.add(("train", "accumulate"), f"train.accumulate: {cfg.train.accumulate} micro-batches do not split "
                                              f"train.batch_size {cfg.train.batch_size} evenly; use a divisor of it")
    chosen = Weights(cfg.eval.weights)
    if chosen.needs_ema and decay is None:
        problems.add(("eval", "weights"), f"eval.weights: {chosen.value} scores the moving average of the weights, "
                                          "which only train.ema_decay keeps; set it (e.g. 0.999) or use last/best")
    if chosen.needs_validation and chosen.needs_ema and not cfg.train.val_every:
        problems.add(("eval", "weights"), f"eval.weights: {chosen.value} needs train.val_every > 0 (ema_best.pt is "
                                          "chosen by the held-out score); set it or use eval.weights: ema_last")


def _check_launcher(launcher: LauncherConfig, problems: Problems) -> None:
    """Slurm's signal comes before its time limit; one DDP task per GPU."""
    slurm = launcher.slurm
    if slurm.signal_delay_s >= slurm.time_min * 60:
        problems.add(("launcher", "slurm", "signal_delay_s"),
                     f"launcher.slurm.signal_delay_s: {slurm.signal_delay_s} s is not below the time limit "
                     f"(time_min {slurm.time_min} = {slurm.time_min * 60} s); the checkpoint signal must come first")
    if slurm.gpus_per_job and slurm.tasks_per_job not in (None, slurm.gpus_per_job):
        problems.add(("launcher", "slurm", "tasks_per_job"),
                     f"launcher.slurm.tasks_per_job: {slurm.tasks_per_job} with gpus_per_job {slurm.gpus_per_job}; "
                     "DDP runs one task per GPU, so leave it null or make them equal")


def _migrate_timing_runs(cfg: BenchConfig) -> None:
    """``eval.timing_runs`` (the old name) becomes ``eval.timing_rounds``, with a warning."""
    if cfg.eval.timing_runs is not None:
        log.warning("eval.timing_runs is deprecated: it now means eval.timing_rounds (rounds of the interleaved "
                    "timing phase); using eval.timing_rounds=%d. Rename the key to silence this.", cfg.eval.timing_runs)
        cfg.eval.timing_rounds = cfg.eval.timing_runs
        cfg.eval.timing_runs = None


def _check_experiments(experiments: list[ExperimentConfig], problems: Problems) -> None:
    """Experiment names valid and unique; ``extra_data`` lists name known strategies."""
    seen: set[str] = set()
    for i, exp in enumerate(experiments):
        where = ("experiments", i)
        if (problem := name_problem(exp.name)) is not None:
            problems.add(where, f"experiments[{i}].name: {problem}")
        if exp.name in seen:
            problems.add(where, f"experiments[{i}].name: {exp.name!r} is used twice; experiment names must be unique")
        seen.add(exp.name)
        for item in exp.extra_data if isinstance(exp.extra_data, list) else []:
            if item not in STRATEGY_NAMES:
                close = difflib.get_close_matches(item, STRATEGY_NAMES, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.add(where, f"experiments[{i}].extra_data: unknown strategy {item!r}; "
                                    f"expected {', '.join(STRATEGY_NAMES)}{hint}")


def _check_tune(cfg: BenchConfig, problems: Problems) -> None:
    """The ``tune:`` section: ranges that are ranges, a space that searches something, tuning seeds of their own."""
    tune: TuneConfig = cfg.tune
    space = tune.space
    for key in ("lr", "warmup_steps"):
        bounds = getattr(space, key)
        if bounds is not None and bounds.low is not None and bounds.high is not None and not bounds.low < bounds.high:
            problems.add(("tune", "space", key), f"tune.space.{key}: empty range [{bounds.low}, {bounds.high}]; "
                                                 f"expected low < high")
    if space.schedule is not None and (not space.schedule or len(set(space.schedule)) != len(space.schedule)):
        problems.add(("tune", "space", "schedule"), f"tune.space.schedule: expected distinct schedules to choose "
                                                    f"from, got {space.schedule!r}")
    if space.lr is None and space.schedule is None and space.warmup_steps is None:
        problems.add(("tune", "space"), "tune.space: nothing to search; give at least one of lr, schedule, "
                                        "warmup_steps")
    shared = sorted(set(tune.seeds) & set(cfg.seeds)) if cfg.eval.splits else []  # a trial config scores nothing
    if not tune.seeds or shared or len(set(tune.seeds)) != len(tune.seeds):
        problems.add(("tune", "seeds"), f"tune.seeds: expected distinct seeds none of which is an evaluation seed "
                                        f"(seeds: {cfg.seeds}); got {tune.seeds!r}")

