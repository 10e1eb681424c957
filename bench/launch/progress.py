"""While a launched run waits: one line per unit whenever its state changes, and a summary now and then."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from bench.harness import unit_state
from bench.launch.units import Unit

SUMMARY_EVERY_S = 60.0


class UnitProgress:
    """Prints ``[hh:mm:ss] <experiment> s<seed>: <state> (<detail>)`` on each change of a unit's record."""

    def __init__(self, units: list[Unit], stream: TextIO | None = None):
        self.units = units
        self.stream = stream or sys.stdout
        self.seen: dict[Unit, str] = {}
        self.started = time.monotonic()
        self.last_summary = self.started

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
        counts = Counter(r["state"] for r in records.values())
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + f" ({minutes} min {seconds:02d} s)"

    def _print(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.stream, flush=True)


def _describe(record: dict) -> str:
    state = record["state"]
    detail = [f"job {record['job']}" if record.get("job") else "", record.get("message", "")]
    if state in (unit_state.FAILED, unit_state.KILLED, unit_state.CANCELLED) and record.get("log"):
        detail.append(f"log: {record['log']}")
    text = "; ".join(d for d in detail if d)
    return f"{state} ({text})" if text else state
