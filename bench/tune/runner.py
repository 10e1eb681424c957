"""``bench tune``: rounds of trials until every tunable experiment has spent exactly its budget, then ``tuned.yaml``.

Each round asks every unfinished study for its next ``tune.parallel`` trials (a trial asked but never scored,
because an earlier ``bench tune`` was interrupted, is run again first, with the values it was given), runs all of
them as units of the tuning run folder (inline, ``--launcher local --jobs N``, or ``--launcher slurm``: one job
array per round) and tells each study its trials' held-out scores (inline: as each trial ends).  A study is asked
again only once all of its trials of the round are told, and the studies are independent, so proposals depend on completed rounds only, never on how many
trials ran at once.  A failed trial (NaN loss, crash, no validation) is told the worst value of the objective,
listed, and not retried; a scored trial's weights are deleted (its score and training log stay).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness.config import BenchConfig, ExperimentConfig
from bench.harness.distributed import DistContext
from bench.harness.prepare import PreparedRun, prepare, write_run_header
from bench.harness.provenance import now
from bench.tune.space import distributions
from bench.tune.study import open_study, protocol, require_optuna, sampler
from bench.tune.trials import (WORST, drop_weights, trial_config, trial_experiment, trial_score, trial_steps,
                                       tunable)
from bench.tune.tuned_file import experiment_hash, write_tuned

log = logging.getLogger(__name__)

UNSEEN_JOB_S = 120.0  # a submitted job Slurm has not listed for this long is taken as ended (as the run launcher)


@dataclass
class TuneOutcome:
    """A finished tuning: its run folder, ``tuned.yaml``, and every experiment's entry in it."""

    run_dir: Path
    tuned: Path
    records: dict[str, dict] = field(default_factory=dict)


def tune(cfg: BenchConfig, out_root: Path, *, launcher: str = "inline", progress: bool = True) -> TuneOutcome:
    """Tune every trainable experiment of ``cfg`` with the same budget (see the module docstring)."""
    require_optuna()
    experiments = tunable(cfg)
    base = dataclasses.replace(trial_config(cfg), experiments=experiments)
    prepared = prepare(base, out_root, progress=progress, ctx=DistContext())
    write_run_header(prepared)
    studies = {exp.name: open_study(prepared.run_dir, exp.name, cfg) for exp in experiments}
    print(f"tuning {len(experiments)} experiment(s) in {prepared.run_dir}: {cfg.tune.trials} trials x "
          f"{trial_steps(cfg)} steps x {len(cfg.tune.seeds)} seed(s) each", flush=True)
    while True:
        batch = [(exp, number, params) for exp in experiments for number, params in _round(studies[exp.name], cfg)]
        if not batch:
            break
        for group in _run_round(prepared, batch, launcher, progress):
            for exp, number, _ in group:  # told as soon as its units ended: one progress line per trial
                _tell(prepared.run_dir, cfg, studies[exp.name], exp, number)
    records = {exp.name: {**_record(studies[exp.name], cfg), "experiment_hash": experiment_hash(exp)}
               for exp in experiments}
    skipped = [exp.name for exp in cfg.experiments if exp not in experiments]
    path = write_tuned(prepared.run_dir, cfg, records, skipped, now())
    return TuneOutcome(prepared.run_dir, path, records)


def _round(study, cfg: BenchConfig) -> list[tuple[int, dict]]:
    """This round's trials of ``study``: ones asked but never told (rerun as given), else up to ``parallel`` new."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    pending = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    if pending:
        return [(t.number, dict(t.params)) for t in pending]
    count = min(cfg.tune.parallel, cfg.tune.trials - len(trials))
    if count <= 0:
        return []
    study.sampler = sampler(cfg, len(trials))
    space = distributions(cfg.tune.space)
    asked = [study.ask(space) for _ in range(count)]
    return [(t.number, dict(t.params)) for t in asked]


def _run_round(prepared: PreparedRun, batch: list[tuple[ExperimentConfig, int, dict]], launcher: str,
               progress: bool):
    """Run every trial of the round, each tuning seed a unit (already finished units are reused); yields the
    trials whose units have ended: one at a time inline, all of them at once with a launcher."""
    trials = [trial_experiment(exp, number, params) for exp, number, params in batch]
    cfg = dataclasses.replace(prepared.cfg, experiments=trials)
    round_run = dataclasses.replace(prepared, cfg=cfg)
    if launcher in ("local", "slurm"):
        (_run_local if launcher == "local" else _run_slurm)(round_run, progress)
        yield batch
        return
    from bench.harness.unit import run_unit

    for item, trial in zip(batch, trials):
        for seed in cfg.seeds:
            run_unit(round_run, trial, seed, DistContext(), None, progress=progress)
        yield [item]


def _run_local(round_run: PreparedRun, progress: bool) -> None:
    """The round's units as local subprocesses (``launcher.jobs`` at a time), as ``bench run --launcher local``."""
    import os

    import torch

    from bench.launch.finish import settle_units
    from bench.launch.local import LocalPool, slot_environments
    from bench.launch.units import units_to_run, write_snapshot

    cfg = round_run.cfg
    units = units_to_run(round_run, restart=False)
    snapshot = write_snapshot(round_run)
    slots = slot_environments(cfg.launcher, torch.cuda.device_count(), os.cpu_count() or 1)
    codes = LocalPool(snapshot, round_run.run_dir.parent, slots, restart=False, poll_s=cfg.launcher.poll_s).run(units)
    settle_units(units, codes)


def _run_slurm(round_run: PreparedRun, progress: bool) -> None:
    """The round's units as one Slurm job array (no final step); waits until every element has ended."""
    import time

    from bench.launch.finish import settle_units
    from bench.launch.jobs import ACTIVE_STATES, slurm_states
    from bench.launch.progress import UnitProgress
    from bench.launch.slurm import submit_units
    from bench.launch.units import units_to_run

    units = units_to_run(round_run, restart=False)
    if not units:
        return
    array = submit_units(round_run.cfg, round_run.run_dir.parent, round_run.run_dir, units, restart=False)
    watch, started = UnitProgress(units), time.monotonic()
    while True:
        watch.update()
        states = slurm_states(list(array.unit_jobs.values()))
        unseen_ok = time.monotonic() - started < UNSEEN_JOB_S  # just submitted: not listed yet
        if not any(states.get(job) in ACTIVE_STATES or (states.get(job) is None and unseen_ok)
                   for job in array.unit_jobs.values()):
            break
        time.sleep(round_run.cfg.launcher.poll_s)
    watch.update()
    settle_units(units)


def _tell(run_dir: Path, cfg: BenchConfig, study, exp: ExperimentConfig, number: int) -> None:
    """Tell ``study`` trial ``number``'s held-out score (the worst value when it failed) and print a line."""
    score = trial_score(run_dir, cfg, exp.name, number)
    failed = not math.isfinite(score)
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    if failed:
        study.set_user_attr(f"failed_{number}", True)
    study.tell(number, WORST[cfg.tune.objective] if failed else score)
    drop_weights(run_dir, exp.name, number, list(cfg.tune.seeds))
    best = study.best_trial
    values = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in trial.params.items())
    result = "failed (counted as the worst value)" if failed else f"held-out {cfg.tune.objective} {score:.4f}"
    print(f"{exp.name} trial {number + 1}/{cfg.tune.trials}: {values} -> {result}; best so far "
          f"{best.value:.4f} (trial {best.number + 1})", flush=True)


def _record(study, cfg: BenchConfig) -> dict:
    """The tuned file's entry of one study: chosen values, their trial and score, the budget spent, failures."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    failed = sorted(int(key.split("_")[1]) + 1 for key, value in study.user_attrs.items()
                    if key.startswith("failed_") and value)
    best = study.best_trial
    return {"train": dict(best.params), "trial": best.number + 1, "held_out": float(best.value),
            "objective": f"held-out {cfg.tune.objective} at the {cfg.tune.objective_step} step, mean over "
                         f"{len(cfg.tune.seeds)} seed(s)",
            "budget": {"trials": len(done), "steps": trial_steps(cfg), "seeds": len(cfg.tune.seeds),
                       "trial_steps": len(done) * trial_steps(cfg) * len(cfg.tune.seeds), "failed_trials": failed},
            "trials": [{"trial": t.number + 1, **dict(t.params), "held_out": float(t.value),
                        "failed": (t.number + 1) in failed} for t in done],
            "study": study.study_name, "protocol": protocol(cfg)}
