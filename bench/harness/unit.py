"""One unit's life in a run folder: its lock, its recorded state, and the experiment in between.

A unit is one experiment with one seed.  Rank 0 holds the unit's lock (:mod:`bench.harness.lock`) while it
runs and records its state in ``unit.json`` (:mod:`bench.harness.unit_state`): running, then done or failed,
or cancelled when stopped.  The work itself is :func:`bench.harness.experiment.run_experiment`.
"""

from __future__ import annotations

from relight_base import run_folder
from relight_base.atomic import remove_orphans
from bench.harness import unit_state
from bench.harness.config import ExperimentConfig
from bench.harness.distributed import DistContext
from bench.harness.experiment import run_experiment
from bench.harness.lock import RunFolderBusy, UnitLock, current_owner
from bench.harness.prepare import PreparedRun


def run_unit(prepared: PreparedRun, exp: ExperimentConfig, seed: int, ctx: DistContext, lpips_metric, *,
             progress: bool, restart: bool = False, log_path: str | None = None) -> list[dict]:
    """:func:`run_experiment` for one experiment x seed, holding its folder's lock and recording its state.

    Rank 0 takes :class:`~bench.harness.lock.UnitLock` (a busy folder is a clear error on every rank) and writes
    ``unit.json``: running, then done or failed (with the failed rows), or cancelled on Ctrl-C/SIGTERM
    (:class:`~bench.harness.unit_state.UnitStopped`), or failed with the error of any other exception, which
    propagates.
    """
    folder = run_folder.experiment_dir(prepared.run_dir, exp.name, seed)
    lock = UnitLock(folder) if ctx.is_main else None
    _acquire_on_all_ranks(lock, ctx)
    try:
        if ctx.is_main:
            remove_orphans(folder, recursive=True)  # a writer of this unit killed mid-write; the lock covers them
            owner = current_owner()
            unit_state.update_state(folder, unit_state.RUNNING, job=owner["job"], host=owner["host"],
                                    pid=owner["pid"], **({"log": log_path} if log_path else {}))
        rows = run_experiment(prepared, exp, seed, ctx, lpips_metric, progress=progress, restart=restart)
        if ctx.is_main:
            _record_outcome(folder, rows)
        return rows
    except (KeyboardInterrupt, unit_state.UnitStopped) as exc:
        if ctx.is_main:
            unit_state.update_state(folder, unit_state.CANCELLED, message=f"stopped: {exc or type(exc).__name__}")
        raise
    except BaseException as exc:
        if ctx.is_main:
            unit_state.update_state(folder, unit_state.FAILED, message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if lock is not None:
            lock.release()


def _record_outcome(folder, rows: list[dict]) -> None:
    """``unit.json`` after the experiment returned: failed (keeping the rows, which say why) or done."""
    failed = [r for r in rows if r["status"] == unit_state.FAILED]
    if failed:
        unit_state.update_state(folder, unit_state.FAILED, message=failed[0]["message"], rows=rows)
    else:
        unit_state.update_state(folder, unit_state.DONE)


def _acquire_on_all_ranks(lock: UnitLock | None, ctx: DistContext) -> None:
    """Rank 0 takes ``lock``; every rank raises :class:`RunFolderBusy` if it could not."""
    problem = None
    if lock is not None:
        try:
            lock.acquire()
        except RunFolderBusy as exc:
            problem = str(exc)
    problem = ctx.broadcast(problem)
    if problem:
        raise RunFolderBusy(problem)
