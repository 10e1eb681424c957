"""The last step of a launched run: settle units that died silently, time every trained model, write the report.

It runs once every unit's process has ended (the local launcher calls it; on Slurm it is a job that depends on
the whole array with ``afterany``).  A unit still recorded as pending or running at that point ended without a
word (SIGKILL, ``scancel``, a node failure, a time limit without requeue): its record is corrected from Slurm's
accounting, or from the process table for local units, so the report says what happened to it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bench.harness.config import BenchConfig
from bench.harness.distributed import DistContext, pick_device
from bench.harness.lock import SharedFilesLock
from bench.harness.prepare import prepare
from bench.harness.run import RunOutcome, finalize
from bench.harness import unit_state
from bench.launch.jobs import ACTIVE_STATES, CANCELLED_STATES, local_process_alive, slurm_states
from bench.launch.units import Unit, all_units

log = logging.getLogger(__name__)


def settle_units(units: list[Unit], exit_codes: dict[Unit, int] | None = None) -> None:
    """Correct the records of units recorded pending/running whose process or job is gone."""
    records = {u: unit_state.read_state(u.folder) for u in units}
    open_units = {u: r for u, r in records.items() if r["state"] in (unit_state.PENDING, unit_state.RUNNING)}
    states = slurm_states([r.get("job") for r in open_units.values() if r.get("job")])
    for unit, record in open_units.items():
        ending = _ending(record, states.get(record.get("job") or ""), (exit_codes or {}).get(unit))
        if ending is not None:
            state, message = ending
            unit_state.update_state(unit.folder, state, message=message)
            log.warning("%s: %s (%s)", unit.label, state, message)


def _ending(record: dict, slurm_state: str | None, exit_code: int | None) -> tuple[str, str] | None:
    """(state, message) for a unit whose process ended without recording it, or None while it may still run."""
    if record.get("job"):
        if slurm_state in ACTIVE_STATES:
            return None
        if slurm_state in CANCELLED_STATES:
            return unit_state.CANCELLED, f"Slurm job {record['job']} {slurm_state.lower()} (scancel or preemption)"
        return unit_state.KILLED, f"Slurm job {record['job']} ended as {slurm_state or 'unknown to sacct'} " \
                                  "before the unit recorded an outcome"
    if exit_code is None and local_process_alive(record.get("host"), record.get("pid")) is not False:
        return None
    how = f"exit status {exit_code}" if exit_code is not None else "its process is gone"
    if exit_code is not None and exit_code < 0:
        return unit_state.KILLED, f"process killed by signal {-exit_code}"
    return unit_state.KILLED, f"the unit's process ended ({how}) before it recorded an outcome"


def finish_run(cfg: BenchConfig, out_root: Path, *, progress: bool = False) -> tuple[RunOutcome, Path]:
    """Settle silent units, run the timing phase over every trained model here, write results and the report."""
    ctx = DistContext(device=pick_device(cfg.train.device))
    prepared = prepare(cfg, out_root, progress=False, ctx=ctx)
    settle_units(all_units(prepared))
    outcome = finalize(prepared, ctx, progress=progress)
    return outcome, render_run_report(outcome.run_dir)


def render_run_report(run_dir: Path) -> Path:
    """``report.html`` and its tables and figures in ``run_dir``, written under the shared-files lock."""
    from bench.harness.data import validation_scenes
    from reports.render import render_report

    with SharedFilesLock(run_dir):
        return render_report([run_dir], load_scenes=validation_scenes)
