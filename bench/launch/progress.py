"""While a launched run waits: one line per unit whenever its state changes, and a summary now and then.

The summary ends with the whole run's line (:mod:`bench.harness.run_progress`): units done of those this command
runs, the time since it started them and an estimate of the time left.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from typing import Sequence, TextIO

from relight_base.errors import BenchError
from bench.harness import unit_state
from bench.harness.run_progress import PlannedUnit, estimate, format_line, plan_run_folder, snapshots
from bench.launch.units import Unit

log = logging.getLogger(__name__)

SUMMARY_EVERY_S = 60.0


class UnitProgress:
    """Prints ``[hh:mm:ss] <experiment> s<seed>: <state> (<detail>)`` on each change of a unit's record.

    ``plans``: the units' models and planned steps, for the estimate; None: read from the run folder's
    ``config.yaml`` and ``data.json`` at the first summary (no estimate when they do not cover the units).
    """

    def __init__(self, units: list[Unit], stream: TextIO | None = None, plans: Sequence[PlannedUnit] | None = None):
        self.units = units
        self.stream = stream or sys.stdout
        self.seen: dict[Unit, str] = {}
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.last_summary = self.started
        self.plans = list(plans) if plans is not None else None

    def update(self) -> dict[Unit, dict]:
        """Read every unit's record, print the changes (and a summary every minute); returns the records."""
        records = {u: unit_state.read_state(u.folder) for u in self.units}
        for unit, record in records.items():
            shown = _describe(record)
            if self.seen.get(unit) != shown:
                self.seen[unit] = shown
                self._print(f"{unit.label}: {shown}")
        now = time.monotonic()
        if now - self.last_summary >= SUMMARY_EVERY_S:
            self.last_summary = now
            self._print(self.summary(records))
        return records

    def summary(self, records: dict[Unit, dict]) -> str:
        """The count of each state and the time waited, then the whole run's line (when it can be told)."""
        counts = Counter(r["state"] for r in records.values())
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + f" ({minutes} min {seconds:02d} s)"
        line = self.run_line(records)
        return f"{text}; {line}" if line else text

    def run_line(self, records: dict[Unit, dict], now: float | None = None) -> str:
        """:func:`~bench.harness.run_progress.format_line` of this command's units ("" without their plans)."""
        plans = self._unit_plans()
        if plans is None:
            return ""
        by_folder = {u.folder: r for u, r in records.items()}
        est = estimate(snapshots(plans, by_folder), time.time() if now is None else now, self.started_wall)
        return format_line(est)

    def _unit_plans(self) -> list[PlannedUnit] | None:
        """The plans of :attr:`units`, in their order (read from the run folder once when not given)."""
        if self.plans is None:
            self.plans = _plans_from_run_folder(self.units)
        by_folder = {p.folder: p for p in self.plans}
        if not self.units or any(u.folder not in by_folder for u in self.units):
            return None
        return [by_folder[u.folder] for u in self.units]

    def _print(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.stream, flush=True)


def _plans_from_run_folder(units: list[Unit]) -> list[PlannedUnit]:
    """The plans of the run folder holding ``units`` (``<run>/<experiment>/seed<k>``); [] when it cannot say."""
    if not units:
        return []
    run_dir = units[0].folder.parent.parent
    try:
        return plan_run_folder(run_dir)
    except (BenchError, OSError) as exc:
        log.debug("no run estimate for %s: %s", run_dir, exc)
        return []


def _describe(record: dict) -> str:
    state = record["state"]
    detail = [f"job {record['job']}" if record.get("job") else "", record.get("message", "")]
    if state in (unit_state.FAILED, unit_state.KILLED, unit_state.CANCELLED) and record.get("log"):
        detail.append(f"log: {record['log']}")
    text = "; ".join(d for d in detail if d)
    return f"{state} ({text})" if text else state
