"""One experiment with one seed inside a prepared run (a "unit"), and how its training went."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from relight_base import run_folder
from bench.harness.config import BenchConfig, ExperimentConfig, experiment_config
from bench.harness.distributed import DistContext
from bench.harness.fingerprints import experiment_fingerprint, scoring_fingerprint
from bench.harness.prepare import PreparedRun


@dataclass(frozen=True)
class ExperimentJob:
    """One experiment with one seed inside a prepared run: what it is, where it writes, what identifies it.

    Build it with :meth:`of`, which computes both fingerprints.
    """

    prepared: PreparedRun
    exp: ExperimentConfig
    seed: int
    ctx: DistContext
    fingerprint: str  # experiment_fingerprint(...): finished results and checkpoints of another one are not reused
    scoring: str  # scoring_fingerprint(cfg): finished results of another one are rescored from their weights

    @classmethod
    def of(cls, prepared: PreparedRun, exp: ExperimentConfig, seed: int, ctx: DistContext | None = None) -> ExperimentJob:
        """The job of ``exp`` with ``seed`` in ``prepared`` (``ctx``: this process's place in DDP; default: alone)."""
        cfg = experiment_config(prepared.cfg, exp)
        return cls(prepared, exp, seed, ctx or DistContext(), experiment_fingerprint(cfg, exp, seed),
                   scoring_fingerprint(cfg))

    @property
    def cfg(self) -> BenchConfig:
        """The run's config as this experiment trains with it: its own ``train`` settings in place (if any)."""
        return experiment_config(self.prepared.cfg, self.exp)

    @property
    def folder(self) -> Path:
        return run_folder.experiment_dir(self.prepared.run_dir, self.exp.name, self.seed)

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder / run_folder.CHECKPOINTS_DIR

    @property
    def label(self) -> str:
        return f"{self.exp.name} (seed {self.seed})"


@dataclass
class TrainingOutcome:
    """How an experiment's training went; an untrained model keeps the defaults."""

    status: str = "done"
    message: str = ""
    steps: int = 0
    seconds: float = 0.0
    perceptual: str = "n/a (not trained)"
    log: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    best_step: int = 0  # the step best.pt holds (0: none)
    best_value: float = math.nan  # its held-out score
    ema_state: dict | None = field(default=None, repr=False)  # the moving average's final state dict (ema.pt)
    ema_best_step: int = 0  # the step ema_best.pt holds (0: none)
    ema_best_value: float = math.nan  # its held-out score

    def best_of(self, which: str) -> tuple[int, float]:
        """The step and held-out score of the best weights of the kind ``which`` names (an ``eval_weights`` value):
        the moving average's for ``ema_*``, the raw weights' otherwise."""
        if which.startswith("ema_"):
            return self.ema_best_step, self.ema_best_value
        return self.best_step, self.best_value
