"""Training logs of every finished seed (``train_log.csv``), and what the report draws from them: held-out
learning curves with a band over seeds, and the rank stability of a table.

Rank stability asks whether a longer run would change a table's order: at each validation step the rows are
ranked by their held-out score (``holdout_psnr``, each row's mean over its seeds), and Kendall's τ
(``scipy.stats.kendalltau``) compares that ranking with the one at the last validation step.  τ = 1: the same
order; 0: unrelated; -1: reversed.  The held-out scenes are training scenes kept out of training, never the
reported splits, so this is a property of training, not a peek at the test data.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.stats

from relight_base import run_folder

log = logging.getLogger(__name__)

HELD_OUT = "holdout_psnr"


def read_train_log(path: Path) -> pd.DataFrame | None:
    """One ``train_log.csv`` (``step`` and the logged columns), or None when absent, empty or unreadable."""
    if not path.is_file() or path.stat().st_size <= 1:
        return None
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        log.warning("%s: unreadable training log, left out of the plots (%s)", path, exc)
        return None
    if "step" not in frame or frame.empty:
        return None
    frame["step"] = pd.to_numeric(frame["step"], errors="coerce")
    return frame[frame["step"].notna()]


def load_train_logs(results: pd.DataFrame) -> dict[str, dict[int, pd.DataFrame]]:
    """``{experiment: {seed: train log}}`` for every finished seed of ``results`` (with its ``run`` folder)."""
    logs: dict[str, dict[int, pd.DataFrame]] = {}
    done = results[(results["status"] == "done") & results["run"].notna()] if "run" in results else results.iloc[:0]
    for exp, seed, run in done[["experiment", "seed", "run"]].drop_duplicates().itertuples(index=False):
        frame = read_train_log(run_folder.experiment_dir(Path(run), exp, int(seed)) / run_folder.TRAIN_LOG_CSV)
        if frame is not None:
            logs.setdefault(str(exp), {})[int(seed)] = frame
    return logs


@dataclass(frozen=True)
class Band:
    """A curve over seeds: at each step the mean over the seeds and the lowest and highest seed."""

    steps: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]
    seeds: int


def held_out_band(seed_logs: dict[int, pd.DataFrame], column: str = HELD_OUT) -> Band | None:
    """The held-out curve of one experiment over its seeds, at the steps every seed validated; None without any."""
    series = [log.set_index("step")[column].dropna() for log in seed_logs.values() if column in log]
    series = [s for s in series if len(s)]
    if not series:
        return None
    table = pd.concat(series, axis=1, join="inner").astype(np.float64)
    if table.empty:
        return None
    return Band(table.index.tolist(), table.mean(axis=1).tolist(), table.min(axis=1).tolist(),
                table.max(axis=1).tolist(), len(series))


@dataclass(frozen=True)
class RankStability:
    """Kendall's τ between each validation step's ranking of ``rows`` and the last step's."""

    rows: tuple[str, ...]
    steps: list[float]
    taus: list[float]

    @property
    def halfway(self) -> tuple[float, float]:
        """(step, τ) at the first validation step at or after half the last one."""
        last = self.steps[-1]
        index = next(i for i, step in enumerate(self.steps) if step >= last / 2)
        return self.steps[index], self.taus[index]

    def describe(self) -> str:
        step, tau = self.halfway
        return (f"Rank stability: Kendall's τ between the ranking of the {len(self.rows)} trained rows by held-out "
                f"PSNR (mean over seeds) at step {step:g} and at the last validation step ({self.steps[-1]:g}) is "
                f"{tau:.2f} (1: the same order; the report's plots show τ at every validation step).")


def rank_stability(experiments: Sequence[str], logs: dict[str, dict[int, pd.DataFrame]]) -> RankStability | None:
    """τ at every validation step all of ``experiments`` share (those with held-out logs); None below 2 rows."""
    bands = {exp: held_out_band(logs[exp]) for exp in experiments if exp in logs}
    bands = {exp: band for exp, band in bands.items() if band is not None}
    if len(bands) < 2:
        return None
    frame = pd.concat({exp: pd.Series(b.mean, index=b.steps) for exp, b in bands.items()}, axis=1, join="inner")
    if len(frame) < 2:
        return None
    final = frame.iloc[-1].to_numpy()
    taus = []
    for _, values in frame.iterrows():
        tau = scipy.stats.kendalltau(values.to_numpy(), final).statistic
        taus.append(float(tau) if tau is not None and math.isfinite(tau) else math.nan)
    return RankStability(tuple(bands), frame.index.tolist(), taus)
