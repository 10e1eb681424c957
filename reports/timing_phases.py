"""The timing phases behind a report's time columns, and which row is fastest within one phase.

``bench run`` times every experiment in one interleaved phase after training and stores it in the run folder:
``timing.csv`` (``phase, round, position, experiment, seed, seconds``: one row per model per round) and
``timing.json`` (the phase's id, device, threads, input size, rounds, warm-up, order rule, what was skipped);
``results.csv`` names each row's phase in ``timing_phase``.

* A row is marked fastest only when its lead over every other ranked row *of its phase* exceeds the measured
  spread: the bootstrap CI of the median over rounds of the per-round ratio ``leader / other`` lies wholly
  below 1 (:func:`reports.statistics.median_ratio_interval`).  Otherwise the rows share a tie.
* Rows timed in different phases (a merged report ``bench report A B``) are never ranked against each other.
* Run folders written before the timing phase existed (no ``timing.csv``) timed each experiment right after its
  own training: their times are shown, never ranked.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from relight_base import run_folder
from reports.csv_input import read_checked_csv
from reports.errors import ReportError
from reports.ranking import marks
from reports.statistics import BootstrapSettings, median_ratio_interval

TIMING_COLUMNS = ("phase", "round", "experiment", "seconds")
NO_PHASE = ""  # rows of a run folder without a timing phase


@dataclass(frozen=True)
class Phase:
    """One timing phase: its conditions and its per-round times (``times``: ``round, experiment, seconds``)."""

    key: str
    label: str                   # short name in tables: P1, P2, ...
    run: str                     # the run folder that holds it
    device: str
    size: float                  # side length of the input (NaN: unknown)
    threads: float               # CPU threads pinned (NaN: unknown)
    rounds: int
    warmup: float
    times: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """E.g. ``P1 (id 2025...): Intel Xeon, 256x256 input, 2 threads, 5 rounds after 1 warm-up, rotating order``."""
        size = f"{int(self.size)}x{int(self.size)} input" if math.isfinite(self.size) else "input size unknown"
        threads = f"{int(self.threads)} CPU threads" if math.isfinite(self.threads) else "threads unknown"
        warmup = f" after {int(self.warmup)} warm-up pass(es) each" if math.isfinite(self.warmup) else ""
        return (f"{self.label} (phase {self.key}, {self.run}): {self.device}, {size}, {threads}, {self.rounds} rounds"
                f"{warmup}, the order rotating each round")


@dataclass
class TimingView:
    """Every phase of the reported runs, by id, and the run folders that have none (older runs)."""

    phases: dict[str, Phase] = field(default_factory=dict)
    untimed_runs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_timing_csv(path: Path) -> pd.DataFrame:
    """``timing.csv`` checked: the columns ``phase, round, experiment, seconds`` (seconds positive numbers)."""
    frame = read_checked_csv(path, kind="timing CSV", columns=TIMING_COLUMNS, dtype={"phase": str, "experiment": str},
                             expected="phase, round, position, experiment, seed, seconds (as `bench run` writes them)")
    seconds = pd.to_numeric(frame["seconds"], errors="coerce")
    rounds = pd.to_numeric(frame["round"], errors="coerce")
    if seconds.isna().any() or (seconds <= 0).any() or rounds.isna().any():
        raise ReportError(f"{path}: every round must be a number and every seconds value a positive number")
    return frame.assign(seconds=seconds.astype(np.float64), round=rounds.astype(int))


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ReportError(f"{path}: expected a JSON object describing the timing phase")
    return record


def _first(results: pd.DataFrame, column: str) -> float:
    values = pd.to_numeric(results.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
    return float(values.iloc[0]) if len(values) else math.nan


def read_phases(run_dir: Path, results: pd.DataFrame, first_label: int) -> list[Phase]:
    """The phases stored in one run folder (none for an older run), labelled from ``P<first_label>`` on.

    Conditions come from ``timing.json``; where it lacks one, from the run's ``results.csv`` columns.
    """
    csv_path = Path(run_dir) / run_folder.TIMING_CSV
    if not csv_path.is_file():
        return []
    frame = read_timing_csv(csv_path)
    record = _read_json(Path(run_dir) / run_folder.TIMING_JSON)
    phases = []
    for number, (key, times) in enumerate(frame.groupby("phase", sort=False)):
        rows = results[results["timing_phase"] == key]
        device = record.get("device") or (str(rows["device"].iloc[0]) if len(rows) else "device unknown")
        size = float(record.get("size") or _first(rows, "timing_size"))
        threads = float(record.get("threads") or _first(rows, "timing_threads"))
        phases.append(Phase(key=str(key), label=f"P{first_label + number}", run=str(run_dir), device=device,
                            size=size, threads=threads, rounds=int(times["round"].nunique()),
                            warmup=float(record.get("warmup", math.nan)),
                            times=times[["round", "experiment", "seconds"]].reset_index(drop=True),
                            skipped=dict(record.get("skipped") or {})))
    return phases


def load_timing(runs: Sequence[tuple[Path, pd.DataFrame]]) -> TimingView:
    """The timing phases of every ``(run folder, its results)``; folders without ``timing.csv`` are listed apart."""
    view = TimingView()
    for run_dir, results in runs:
        phases = read_phases(run_dir, results, len(view.phases) + 1)
        if not phases:
            view.untimed_runs.append(str(run_dir))
        for phase in phases:
            view.phases[phase.key] = phase
        named = set(results["timing_phase"]) - {NO_PHASE}
        unknown = sorted(named - {p.key for p in phases})
        if unknown:
            view.warnings.append(f"{run_dir}: results.csv names timing phase(s) {', '.join(unknown)} that "
                                 f"{run_folder.TIMING_CSV} does not hold; those rows are not ranked by time.")
    return view


def lead_is_clear(times: pd.DataFrame, leader: str, other: str, settings: BootstrapSettings) -> bool:
    """Is ``leader`` faster than ``other`` by more than the spread, judged on the rounds both ran?

    ``times``: one phase's ``round, experiment, seconds``.  Clear when the CI of the median per-round ratio
    leader/other lies below 1 (no CI, e.g. one round or identical ratios: not clear).
    """
    wide = times.pivot_table(index="round", columns="experiment", values="seconds", aggfunc="first")
    if leader not in wide or other not in wide:
        return False
    both = wide[[leader, other]].dropna()
    return median_ratio_interval(both[leader].to_numpy(), both[other].to_numpy(), settings).wholly_below(1.0)


def time_marks(medians: Mapping[str, float], phase_of: Mapping[str, str], experiment_of: Mapping[str, str],
               view: TimingView, settings: BootstrapSettings) -> dict[str, str]:
    """``best``/``tied`` marks of the time column, decided within each phase separately.

    ``medians``: each ranked row's median time (by row label); ``phase_of``/``experiment_of``: its phase id and
    experiment.  Rows without a known phase get no mark.
    """
    out: dict[str, str] = {}
    for key, phase in view.phases.items():
        members = [label for label, m in medians.items() if phase_of.get(label) == key and math.isfinite(m)]
        order = sorted(members, key=lambda label: medians[label])
        out.update(marks(order, lambda a, b, t=phase.times: lead_is_clear(t, experiment_of[a], experiment_of[b], settings)))
    return out


def phase_notes(view: TimingView, phase_of: Mapping[str, str]) -> list[str]:
    """Sentences for a table with a time column: each phase's conditions and rows, and what is not ranked."""
    notes = []
    groups = {key: [label for label, k in phase_of.items() if k == key] for key in dict.fromkeys(phase_of.values())}
    for key, phase in view.phases.items():
        if groups.get(key):
            notes.append(f"Timing phase {phase.describe()}; rows timed in it: {', '.join(groups[key])}.")
    untimed = groups.get(NO_PHASE, [])
    if untimed:
        notes.append("Timed without a shared timing phase (an older run folder without timing.csv: each experiment "
                     f"was timed right after its own training), so never ranked by time: {', '.join(untimed)}.")
    unknown = [label for key, labels in groups.items() if key not in view.phases and key != NO_PHASE for label in labels]
    if unknown:
        notes.append(f"Timing phase not found in the run folder, so not ranked by time: {', '.join(unknown)}.")
    if len([k for k in groups if groups[k]]) > 1:
        notes.append("Rows timed in different phases are never ranked against each other: the fastest mark is "
                     "decided within a phase only.")
    return notes
