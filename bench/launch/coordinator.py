"""``bench run --launcher local|slurm``: prepare once, start the unfinished units, wait, finish with one report.

The launching command checks the config, prepares the data (so units only read it), writes the run's header
and a config snapshot, and starts every unit that has no finished result (a rerun of the same command starts
only those).  It then waits, printing a line whenever a unit's state changes, unless ``--no-wait`` (Slurm
only: the final step is a dependent job that runs anyway).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from relight_base import results, run_folder
from relight_base.errors import BenchError, ConfigError
from bench.harness import unit_state
from bench.harness.config import BenchConfig
from bench.harness.distributed import DistContext
from bench.harness.prepare import prepare, write_run_header
from bench.harness.run import RunOutcome, require_splits
from bench.harness.run_progress import PlannedUnit, plan_prepared
from bench.harness.shared_results import unfinished_units
from bench.launch.progress import UnitProgress
from bench.launch.units import all_units, units_to_run, write_snapshot

log = logging.getLogger(__name__)

UNSEEN_JOB_S = 120.0  # a submitted job neither sacct nor squeue has listed for this long is taken as ended


@dataclass
class LaunchOutcome:
    """A launched run: its outcome and report once finished (None with ``--no-wait``), the jobs it submitted."""

    run_dir: Path
    outcome: RunOutcome | None
    report: Path | None
    started: int
    jobs: list[str]


def launch_run(cfg: BenchConfig, out_root: Path, *, no_wait: bool = False, progress: bool = True,
               restart: bool = False) -> LaunchOutcome:
    """Run ``cfg`` with its ``launcher.type`` (local or slurm); see the module docstring."""
    kind = cfg.launcher.type
    require_splits(cfg)
    if kind == "inline":
        raise ConfigError("launch_run is for launcher.type local or slurm; inline runs go through run_benchmark")
    if no_wait and kind != "slurm":
        raise ConfigError("--no-wait needs --launcher slurm (local units are child processes of this command)")
    if kind == "slurm":
        from bench.launch.slurm import require_slurm

        require_slurm()  # before any data is prepared
    prepared = prepare(cfg, out_root, progress=progress, ctx=DistContext())
    write_run_header(prepared)
    units = units_to_run(prepared, restart)
    snapshot = write_snapshot(prepared)
    done = len(all_units(prepared)) - len(units)
    print(f"{len(units)} unit(s) to run, {done} already finished; run folder {prepared.run_dir}", flush=True)
    if kind == "local":
        return _launch_local(cfg, Path(out_root), snapshot, units, restart, progress, plan_prepared(prepared))
    return _launch_slurm(cfg, Path(out_root), prepared.run_dir, units, restart, no_wait, plan_prepared(prepared))


def _launch_local(cfg: BenchConfig, out_root: Path, snapshot: Path, units: list, restart: bool,
                  progress: bool, plans: list[PlannedUnit]) -> LaunchOutcome:
    import torch

    from bench.launch.finish import finish_run, settle_units
    from bench.launch.local import LocalPool, slot_environments

    slots = slot_environments(cfg.launcher, torch.cuda.device_count(), os.cpu_count() or 1)
    for unit in units:
        unit_state.write_state(unit.folder, unit_state.PENDING, job=None, message="waiting for a free local slot")
    print(f"local launcher: {len(slots)} parallel unit(s): " + "; ".join(
        " ".join(f"{k}={v}" for k, v in env.items()) for env in slots), flush=True)
    pool = LocalPool(snapshot, out_root, slots, restart=restart, poll_s=cfg.launcher.poll_s, plans=plans)
    codes = pool.run(units)
    settle_units(units, codes)
    print("timing every trained model on this machine and writing the report", flush=True)
    outcome, report = finish_run(cfg, out_root, progress=progress)
    return LaunchOutcome(outcome.run_dir, outcome, report, len(units), [])


def _launch_slurm(cfg: BenchConfig, out_root: Path, run_dir: Path, units: list, restart: bool,
                  no_wait: bool, plans: list[PlannedUnit]) -> LaunchOutcome:
    from bench.launch.slurm import submit

    if cfg.train.checkpoint_every == 0:
        log.warning("train.checkpoint_every is 0: a unit requeued after a time limit or preemption starts its "
                    "training over; set it (e.g. 500) to resume from the newest checkpoint instead")
    sub = submit(cfg, out_root, run_dir, units, restart)
    if units:
        print(f"submitted job array {sub.array_id}: " + ", ".join(f"{u.label} -> {j}" for u, j in sub.unit_jobs.items()))
    print(f"final step (timing, results, report) is job {sub.finish_job}, after the array ends; Slurm logs in "
          f"{sub.folder}", flush=True)
    jobs = [*sub.unit_jobs.values(), sub.finish_job]
    if no_wait:
        print(f"not waiting; follow it with: python -m bench status {run_dir}")
        return LaunchOutcome(run_dir, None, None, len(units), jobs)
    try:
        wait_for_job(sub.finish_job, UnitProgress(units, plans=plans), cfg.launcher.poll_s, sub.folder)
    except KeyboardInterrupt:
        print(f"stopped waiting; the jobs keep running (scancel {sub.array_id} {sub.finish_job} stops them). "
              f"Follow them with: python -m bench status {run_dir}", flush=True)
        raise
    return LaunchOutcome(run_dir, read_outcome(run_dir), run_dir / run_folder.REPORT_HTML, len(units), jobs)


def wait_for_job(job_id: str, progress: UnitProgress, poll_s: float, logs: Path) -> None:
    """Poll until Slurm job ``job_id`` has ended, printing unit changes; an error naming its log if it failed."""
    from bench.launch.jobs import ACTIVE_STATES, slurm_states

    seen, started = False, time.monotonic()
    while True:
        progress.update()
        state = slurm_states([job_id]).get(job_id)
        if state is None and (seen or time.monotonic() - started > UNSEEN_JOB_S):
            state = "UNKNOWN"  # gone from squeue, and no accounting to say how it ended
        if state is not None and state not in ACTIVE_STATES:
            break
        seen = seen or state is not None
        time.sleep(poll_s)
    progress.update()
    if state == "UNKNOWN" and (logs.parent.parent / run_folder.RESULTS_CSV).is_file():
        log.warning("Slurm no longer lists job %s and has no accounting to say how it ended; reading the results "
                    "it wrote", job_id)
    elif state != "COMPLETED":
        raise BenchError(f"the final step (Slurm job {job_id}) ended as {state}; see its log "
                         f"{logs / f'{job_id}_0_log.err'}; rerun the same command to retry what did not finish")


def read_outcome(run_dir: Path) -> RunOutcome:
    """The finished run as its shared files tell it (after the final step wrote them)."""
    frame = pd.read_csv(run_dir / run_folder.RESULTS_CSV).reindex(columns=list(results.NAMES))
    return RunOutcome(run_dir, Path(""), frame, unfinished_units(frame.to_dict("records")))
