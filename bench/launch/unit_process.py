"""What runs inside a unit's own process (a local subprocess or a Slurm task): one experiment x seed.

The process loads the run's config snapshot, joins a process group when it is one of several DDP tasks,
checks the data (already prepared by the launching command), and runs
:func:`bench.harness.unit.run_unit`, which holds the unit's lock and records its state.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from relight_base import run_folder
from bench.harness.config import BenchConfig
from bench.harness.distributed import init_distributed, shutdown
from bench.harness.prepare import prepare, write_run_header
from bench.harness.run import lpips_metric_for
from bench.harness.unit import run_unit
from bench.harness.unit_state import DONE, FAILED, UnitStopped

log = logging.getLogger(__name__)


def run_one_unit(cfg: BenchConfig, out_root: Path, experiment: str, seed: int, *, restart: bool = False,
                 progress: bool = False, log_path: str | None = None) -> str:
    """Train and score ``experiment`` with ``seed`` into ``out_root/<name>/``; returns ``done`` or ``failed``.

    Under torchrun or a multi-task Slurm job (``WORLD_SIZE`` etc. in the environment) every rank trains and
    rank 0 scores and writes, as in ``bench run``.
    """
    exp = cfg.experiment(experiment)
    ctx = init_distributed(cfg.train.device)
    try:
        prepared = prepare(cfg, out_root, progress=False, ctx=ctx)
        if ctx.is_main and not (prepared.run_dir / run_folder.CONFIG_YAML).is_file():
            write_run_header(prepared)  # a unit started by hand: `bench status` and `bench report` need these
        rows = run_unit(prepared, exp, seed, ctx, lpips_metric_for(cfg, ctx), progress=progress, restart=restart,
                        log_path=log_path)
    finally:
        shutdown(ctx)
    return FAILED if any(r["status"] == "failed" for r in rows) else DONE


def stop_on_sigterm() -> None:
    """SIGTERM raises :class:`UnitStopped` (the unit records itself cancelled and exits); for local subprocesses.

    Not for Slurm jobs: there submitit keeps SIGTERM (sent before a preemption's checkpoint signal) harmless.
    """
    def _raise(signum: int, frame) -> None:
        raise UnitStopped(f"{signal.Signals(signum).name} received (pid {os.getpid()})")

    signal.signal(signal.SIGTERM, _raise)


def configure_job_logging() -> None:
    """INFO lines to the job's stderr (its Slurm log), as the CLI shows them, for a job started by submitit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def pin_threads_from_slurm() -> None:
    """Use the CPUs Slurm gave the task (``SLURM_CPUS_PER_TASK``, else 1), not every core of the node."""
    import torch

    threads = int(os.environ.get("SLURM_CPUS_PER_TASK") or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    torch.set_num_threads(threads)
