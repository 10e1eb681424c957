"""One Optuna study per tuned experiment, in the tuning run folder's journal file (``tune.journal``).

Optuna's journal file storage appends every event to one file under a file lock, so it suits NFS and several
writers; it is the only storage offered.  Every study is created with the same sampler and seed, so every
experiment gets the same proposals for the same history.  The sampler is made afresh for every round, seeded by
``tune.sampler_seed`` and the round's first trial number: an interrupted study proposes, when rerun, exactly
what it would have proposed without the interruption, whichever launcher runs its trials.

A study records the budget and space it was created for (its user attributes); a rerun with another budget or
space is refused, naming the journal, rather than mixing two protocols in one study.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from relight_base.errors import BenchError, ConfigError
from bench.harness.config import BenchConfig
from bench.tune.space import describe
from bench.tune.trials import trial_steps

JOURNAL = "tune.journal"


def require_optuna():
    """The optuna module, or a clear error saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("bench tune needs Optuna: pip install -e \".[tune]\"") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def sampler(cfg: BenchConfig, round_start: int):
    """The sampler of ``tune.sampler`` for the round whose first trial is ``round_start``."""
    optuna = require_optuna()
    seed = int(cfg.tune.sampler_seed)
    if cfg.tune.sampler == "qmc":  # the Sobol point of a trial is fixed by its number and the scrambling seed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                              warn_independent_sampling=False,
                                              independent_sampler=optuna.samplers.RandomSampler(seed=seed + round_start))
    if cfg.tune.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed + round_start)
    return optuna.samplers.RandomSampler(seed=seed + round_start)


def protocol(cfg: BenchConfig) -> dict[str, Any]:
    """What a study was created for: budget, space, sampler, objective (its user attributes)."""
    tune = cfg.tune
    return {"trials": tune.trials, "steps": trial_steps(cfg), "seeds": list(tune.seeds), "space": describe(tune.space),
            "sampler": tune.sampler, "sampler_seed": tune.sampler_seed, "objective": tune.objective,
            "objective_step": tune.objective_step, "holdout": tune.holdout, "parallel": tune.parallel}


def open_study(run_dir: Path, name: str, cfg: BenchConfig):
    """The study of experiment ``name`` in ``run_dir``'s journal, created on first use (maximising)."""
    optuna = require_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = run_dir / JOURNAL
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=sampler(cfg, 0))
    wanted = protocol(cfg)
    if not study.user_attrs:
        for key, value in wanted.items():
            study.set_user_attr(key, value)
    elif {k: study.user_attrs.get(k) for k in wanted} != wanted:
        differs = [k for k in wanted if study.user_attrs.get(k) != wanted[k]]
        raise BenchError(f"{path}: the study of {name} was made for another tuning protocol ({', '.join(differs)} "
                         f"differ: {', '.join(f'{k} {study.user_attrs.get(k)!r} → {wanted[k]!r}' for k in differs)}); "
                         f"tune into another --out folder, or delete {path} to start over")
    return study
