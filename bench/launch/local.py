"""``--launcher local``: the units as parallel subprocesses on this machine, ``launcher.jobs`` at a time.

Each parallel slot is pinned: to its ``CUDA_VISIBLE_DEVICES`` (``launcher.devices``, else one GPU per slot in
turn) and to its share of the CPU cores (``OMP_NUM_THREADS``, ``launcher.threads`` or cores / jobs).  A unit's
output goes to its ``unit.log``.  When every unit has ended, :func:`bench.launch.finish.finish_run` times the
trained models here and writes the report.  Ctrl-C stops every unit (each records itself cancelled).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relight_base import run_folder
from relight_base.errors import ConfigError
from bench.harness import unit_state
from bench.harness.config import LauncherConfig
from bench.harness.run_progress import PlannedUnit
from bench.launch.progress import UnitProgress
from bench.launch.units import Unit

log = logging.getLogger(__name__)


def slot_environments(launcher: LauncherConfig, cuda_devices: int, cores: int) -> list[dict[str, str]]:
    """The environment variables of each of the ``launcher.jobs`` parallel slots."""
    jobs = launcher.jobs
    threads = launcher.threads or max(1, cores // jobs)
    if launcher.devices and len(launcher.devices) < jobs:
        raise ConfigError(f"launcher.devices: {len(launcher.devices)} entries for launcher.jobs {jobs}; give one "
                          "CUDA_VISIBLE_DEVICES value per parallel slot (or leave devices empty)")
    slots = []
    for i in range(jobs):
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        if launcher.devices:
            env["CUDA_VISIBLE_DEVICES"] = str(launcher.devices[i])
        elif cuda_devices:
            env["CUDA_VISIBLE_DEVICES"] = str(i % cuda_devices)
        slots.append(env)
    return slots


@dataclass
class _Running:
    unit: Unit
    process: subprocess.Popen
    slot: int


@dataclass
class LocalPool:
    """Runs ``bench unit`` processes for ``units``, at most one per slot at a time."""

    snapshot: Path
    out_root: Path
    slots: list[dict[str, str]]
    restart: bool = False
    poll_s: float = 1.0
    exit_codes: dict[Unit, int] = field(default_factory=dict)
    plans: Sequence[PlannedUnit] | None = None  # for the run-level estimate; None: read from the run folder

    def run(self, units: list[Unit]) -> dict[Unit, int]:
        """Start and wait for every unit; returns each unit's exit status (negative: killed by that signal)."""
        queue, running = list(units), []
        progress = UnitProgress(units, plans=self.plans)
        try:
            while queue or running:
                free = [i for i in range(len(self.slots)) if i not in {r.slot for r in running}]
                while queue and free:
                    running.append(self._start(queue.pop(0), free.pop(0)))
                running = self._reap(running)
                progress.update()
                if queue or running:
                    time.sleep(min(self.poll_s, 1.0))
        except BaseException:
            self._stop(running)
            raise
        progress.update()
        return self.exit_codes

    def _start(self, unit: Unit, slot: int) -> _Running:
        log_path = unit.folder / run_folder.UNIT_LOG
        unit.folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "bench", "unit", str(self.snapshot), "--out", str(self.out_root),
                   "--experiment", unit.experiment, "--seed", str(unit.seed), "--no-progress", "--log", str(log_path)]
        if self.restart:
            command.append("--restart")
        # recorded before the start: the unit itself then records running (with its pid) without a race
        unit_state.write_state(unit.folder, unit_state.PENDING, job=None, host=socket.gethostname(),
                               log=str(log_path), message=f"local slot {slot}")
        with open(log_path, "w") as handle:
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                       env={**os.environ, **self.slots[slot]})
        return _Running(unit, process, slot)

    def _reap(self, running: list[_Running]) -> list[_Running]:
        still = []
        for item in running:
            code = item.process.poll()
            if code is None:
                still.append(item)
            else:
                self.exit_codes[item.unit] = code
        return still

    def _stop(self, running: list[_Running]) -> None:
        for item in running:
            item.process.terminate()
        for item in running:
            try:
                item.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                item.process.kill()
