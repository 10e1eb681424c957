"""The whole run in view: units done of total, time elapsed and an estimate of the time left.

One line, the same wherever a run is watched: the inline run's top progress bar (:class:`RunBar`), the launchers'
summaries (:class:`bench.launch.progress.UnitProgress`) and ``bench status`` (:func:`estimate_run_folder`)::

    run: 3/8 units done | 4 min 12 s elapsed | about 9 min left (+ timing phase)

How the numbers come about, from each unit's ``unit.json`` (:mod:`bench.harness.unit_state`) and planned steps:

* finished work: done, failed, cancelled and killed units; "done" counts done ones only, the others are
  reported as failed.  Pending, running and not-run units are what is left.
* elapsed: from the run's start to now (to the last unit's end once none is left).  The run's start is the
  moment its units phase began: the inline run's and a launcher's own clock, for ``bench status`` the
  ``written`` time of ``data.json`` (the run's header, written when the newest ``bench run`` started); without
  one, the earliest ``started`` of the units.
* rate: seconds of wall time (``started`` to ``updated``: training and scoring) per planned training step, per
  registered model (units of one model cost the same per step; MBNet's step is about ten times a small
  network's): total time over total steps of that model's measured units.  A model not measured yet takes the
  mean rate of the measured units that trained (of all measured units when none trained).
* measured units: done units of this run only.  Left out: units without ``started`` (older records), units
  started before the run's start (an earlier run's), and units that took less wall time than their
  ``result.json`` says training took (reused or rescored without training, or resumed from a checkpoint).
* time left: each unit left costs its model's rate times its planned steps; a running unit less the time it
  has run (not below 0).  Before any unit is measured there is no estimate ("estimating after the first
  unit", or "... the first unit this run trains" when the finished ones measure nothing).  The timing phase
  after the units is not included.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from relight_base import run_folder
from bench.harness import unit_state

if TYPE_CHECKING:
    from bench.harness.config import BenchConfig
    from bench.harness.prepare import PreparedRun

log = logging.getLogger(__name__)

FINISHED = (unit_state.DONE, unit_state.FAILED, unit_state.CANCELLED, unit_state.KILLED)
STAMP_SLACK_S = 1.0  # the records' timestamps have whole seconds


@dataclass(frozen=True)
class PlannedUnit:
    """One experiment x seed as the estimate sees it: its folder, registered model and planned training steps."""

    folder: Path
    model: str
    steps: int


@dataclass(frozen=True)
class UnitSnapshot:
    """A planned unit with its record (``unit.json``) and, once finished, its training time (``result.json``)."""

    plan: PlannedUnit
    record: dict[str, Any]
    train_seconds: float | None = None


@dataclass(frozen=True)
class RunEstimate:
    """The whole run at one moment; ``left_s`` None: no unit measured yet (or nothing to measure with)."""

    total: int
    done: int
    failed: int  # failed, cancelled or killed
    unfinished: int  # pending, running or not run
    elapsed_s: float | None
    left_s: float | None
    rates: dict[str, float] = field(default_factory=dict)  # seconds per step of each measured model

    @property
    def finished(self) -> int:
        return self.done + self.failed


def planned_steps(cfg: BenchConfig, train_samples: int | None) -> int:
    """``train.steps``, or ``train.epochs`` passes over ``train_samples`` pairs in batches of ``train.batch_size``.

    The training loop's count (:func:`bench.harness.train.total_steps`) on one process; for an estimate that is
    close enough under torchrun too.  Unknown samples count one batch per epoch.
    """
    if cfg.train.epochs is None:
        return cfg.train.steps
    batch = cfg.train.batch_size
    return cfg.train.epochs * math.ceil((train_samples or batch) / batch)


def plan_units(cfg: BenchConfig, run_dir: Path, train_samples: Mapping[str, int] | None = None) -> list[PlannedUnit]:
    """Every experiment x seed of ``cfg`` in config order; ``train_samples``: training pairs by experiment name."""
    samples = train_samples or {}
    return [PlannedUnit(run_folder.experiment_dir(run_dir, exp.name, seed), exp.model,
                        planned_steps(cfg, samples.get(exp.name)))
            for exp in cfg.experiments for seed in cfg.seeds]


def plan_prepared(prepared: PreparedRun) -> list[PlannedUnit]:
    """:func:`plan_units` of a prepared run, whose training splits say how many pairs each experiment has."""
    samples = {exp.name: len(prepared.train_split(exp.extra_data)) for exp in prepared.cfg.experiments}
    return plan_units(prepared.cfg, prepared.run_dir, samples)


def plan_run_folder(run_dir: Path) -> list[PlannedUnit]:
    """:func:`plan_units` from a run folder's ``config.yaml`` and ``data.json`` (training pairs, for epochs)."""
    from bench.harness.config import load_config
    from datasets.pairs import resolve_strategies

    cfg = load_config(Path(run_dir) / run_folder.CONFIG_YAML)
    splits = _read_json(Path(run_dir) / run_folder.DATA_JSON).get("splits") or {}
    samples = {}
    for exp in cfg.experiments:  # the keys of bench.harness.prepare.train_key
        split = splits.get("train:" + ",".join(resolve_strategies(exp.extra_data))) or {}
        if isinstance(split.get("samples"), int):
            samples[exp.name] = split["samples"]
    return plan_units(cfg, run_dir, samples)


def run_folder_start(run_dir: Path) -> float | None:
    """When the run folder's newest ``bench run`` began its units: ``data.json``'s ``written`` (None if absent)."""
    return parse_stamp(_read_json(Path(run_dir) / run_folder.DATA_JSON).get("written"))


def snapshots(plans: Sequence[PlannedUnit], records: Mapping[Path, dict] | None = None) -> list[UnitSnapshot]:
    """Each planned unit with its record (read from its folder unless in ``records``) and training time."""
    found = records or {}
    result = []
    for plan in plans:
        record = found.get(plan.folder) or read_record(plan.folder)
        seconds = train_seconds(plan.folder) if record["state"] == unit_state.DONE else None
        result.append(UnitSnapshot(plan, record, seconds))
    return result


def read_record(folder: Path) -> dict[str, Any]:
    """The unit's record; a unit with ``result.json`` but no record (an earlier version's) counts as done."""
    record = unit_state.read_state(folder)
    if record["state"] == unit_state.NOT_RUN and (Path(folder) / run_folder.RESULT_JSON).is_file():
        return {"state": unit_state.DONE}
    return record


def train_seconds(folder: Path) -> float | None:
    """The training time ``result.json`` records for the unit (its first row's ``train_seconds``), or None."""
    rows = _read_json(Path(folder) / run_folder.RESULT_JSON).get("rows")
    try:
        value = float(rows[0]["train_seconds"])
    except (TypeError, KeyError, IndexError, ValueError):
        return None
    return value if math.isfinite(value) else None


def estimate(units: Sequence[UnitSnapshot], now: float, run_started: float | None = None) -> RunEstimate:
    """The run's progress at ``now`` (seconds since the epoch) and the time left (see the module docstring)."""
    states = [u.record.get("state") for u in units]
    unfinished = [u for u, s in zip(units, states) if s not in FINISHED]
    start = run_started if run_started is not None else _earliest_start(units)
    rates, fallback = _rates(_measured(units, start))
    left = None
    if fallback is not None:
        left = sum(_unit_left(u, rates.get(u.plan.model, fallback), now) for u in unfinished)
    return RunEstimate(total=len(units), done=states.count(unit_state.DONE),
                       failed=sum(s in FINISHED and s != unit_state.DONE for s in states),
                       unfinished=len(unfinished), elapsed_s=_elapsed(units, start, now, bool(unfinished)),
                       left_s=left, rates=rates)


def estimate_run_folder(run_dir: Path, now: float | None = None) -> RunEstimate:
    """:func:`estimate` of a run folder from its files alone (what ``bench status`` shows)."""
    plans = plan_run_folder(run_dir)
    return estimate(snapshots(plans), time.time() if now is None else now, run_folder_start(run_dir))


def _measured(units: Sequence[UnitSnapshot], start: float | None) -> list[tuple[str, float, int, bool]]:
    """(model, wall seconds, steps, trained) of each done unit that may be measured."""
    measured = []
    for unit in units:
        began, ended = parse_stamp(unit.record.get("started")), parse_stamp(unit.record.get("updated"))
        if unit.record.get("state") != unit_state.DONE or began is None or ended is None:
            continue
        if start is not None and began < start - STAMP_SLACK_S:
            continue  # an earlier run's
        wall = max(ended - began, 0.0)
        if unit.train_seconds is not None and wall + STAMP_SLACK_S < unit.train_seconds:
            continue  # reused, rescored or resumed: this attempt did not train it all
        trained = unit.train_seconds is None or unit.train_seconds > 0
        measured.append((unit.plan.model, wall, max(unit.plan.steps, 1), trained))
    return measured


def _rates(measured: list[tuple[str, float, int, bool]]) -> tuple[dict[str, float], float | None]:
    """Seconds per step of each measured model, and the mean over the measured units for the others."""
    if not measured:
        return {}, None
    seconds: dict[str, float] = defaultdict(float)
    steps: dict[str, int] = defaultdict(int)
    for model, wall, count, _ in measured:
        seconds[model] += wall
        steps[model] += count
    rates = {model: seconds[model] / steps[model] for model in seconds}
    trained = [wall / count for _, wall, count, did_train in measured if did_train]
    pool = trained or [wall / count for _, wall, count, _ in measured]
    return rates, sum(pool) / len(pool)


def _unit_left(unit: UnitSnapshot, rate: float, now: float) -> float:
    """The seconds ``unit`` still needs: its planned cost, less the time it has run when running (not below 0)."""
    cost = rate * max(unit.plan.steps, 1)
    began = parse_stamp(unit.record.get("started"))
    if unit.record.get("state") == unit_state.RUNNING and began is not None:
        cost -= now - began
    return max(cost, 0.0)


def _earliest_start(units: Sequence[UnitSnapshot]) -> float | None:
    starts = [t for u in units if (t := parse_stamp(u.record.get("started"))) is not None]
    return min(starts) if starts else None


def _elapsed(units: Sequence[UnitSnapshot], start: float | None, now: float, running: bool) -> float | None:
    """From ``start`` to now, or to the newest ``updated`` once no unit is left (a finished run stops its clock)."""
    if start is None:
        return None
    end = now
    if not running:  # the newest unit's end; none since the start: this run had nothing to do
        ends = [t for u in units if (t := parse_stamp(u.record.get("updated"))) is not None and t >= start]
        end = min(max(ends), now) if ends else start
    return max(end - start, 0.0)


def parse_stamp(text: object) -> float | None:
    """Seconds since the epoch of a record's timestamp (:data:`bench.harness.unit_state.STAMP_FORMAT`), or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, unit_state.STAMP_FORMAT).timestamp()
    except ValueError:
        return None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def format_line(est: RunEstimate) -> str:
    """``run: 3/8 units done[, 1 failed] | 4 min 12 s elapsed | about 9 min left (+ timing phase)``."""
    parts = [f"run: {est.done}/{est.total} units done" + (f", {est.failed} failed" if est.failed else "")]
    if est.elapsed_s is not None:
        parts.append(f"{format_duration(est.elapsed_s)} elapsed")
    if not est.unfinished:
        parts.append("no unit left")
    elif est.left_s is None:  # finished units but none measured: reused, or recorded without ``started``
        parts.append("estimating after the first unit" + (" this run trains" if est.finished else ""))
    else:
        parts.append(f"about {format_left(est.left_s)} left (+ timing phase)")
    return " | ".join(parts)


def format_duration(seconds: float) -> str:
    """``42 s``, ``4 min 12 s``, ``1 h 05 min``."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def format_left(seconds: float) -> str:
    """An estimate, rounded as it deserves: ``40 s`` (tens of seconds, at least 10), ``9 min``, ``1 h 05 min``."""
    if seconds < 90:
        return f"{max(int(round(seconds / 10.0)), 1) * 10} s"
    if seconds < 3600:
        return f"{int(round(seconds / 60.0))} min"
    return format_duration(round(seconds / 60.0) * 60)


class RunBar:
    """The inline run's top bar (tqdm position 0, above the per-unit bars): the line, refreshed after each unit.

    Units the loop has not reached yet count as their records say (a finished one will most likely be reused),
    except with ``restart``: then every one of them is still to do.
    """

    def __init__(self, plans: Sequence[PlannedUnit], enabled: bool, restart: bool = False):
        self.plans = list(plans)
        self.restart = restart
        self.reached = 0  # units the run's loop has passed
        self.started = time.time()
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(self.plans), position=0, leave=True, bar_format="{desc}", dynamic_ncols=True)
            self.refresh()

    @classmethod
    def of(cls, prepared: PreparedRun, enabled: bool, restart: bool = False) -> RunBar:
        """The bar of ``prepared``'s units; ``enabled`` False (no progress, or not rank 0): one that shows nothing."""
        return cls(plan_prepared(prepared) if enabled else [], enabled, restart)

    def advance(self) -> None:
        """One more unit passed: show the line anew."""
        self.reached += 1
        self.refresh()

    def refresh(self) -> None:
        """Read the units' records again and show the line."""
        if self.bar is None:
            return
        units = snapshots(self.plans)
        if self.restart:
            units[self.reached:] = [UnitSnapshot(u.plan, {"state": unit_state.PENDING}) for u in units[self.reached:]]
        est = estimate(units, time.time(), self.started)
        self.bar.n = est.finished
        self.bar.set_description_str(format_line(est))

    def close(self) -> None:
        """Show the line a last time and leave it on screen."""
        if self.bar is not None:
            self.refresh()
            self.bar.close()
            self.bar = None
