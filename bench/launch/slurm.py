"""``--launcher slurm``: each unit one element of a Slurm job array (submitit), the final step a dependent job.

* Every unit job loads the pickled config, joins a DDP process group over its tasks when it has more than one
  (``launcher.slurm.gpus_per_job`` / ``tasks_per_job``; ``submitit.helpers.TorchDistributedEnvironment``), and
  runs :func:`bench.launch.unit_process.run_one_unit`.
* Requeue: Slurm signals the job ``signal_delay_s`` before its time limit (and on preemption); submitit then
  calls :meth:`SlurmUnit.checkpoint`, which hands back the same unit, and requeues the job.  The requeued job
  resumes from the unit's newest training checkpoint (``train.checkpoint_every``), bitwise as an uninterrupted
  run would have gone on.  A requeued job keeps its id, so it takes back its own unit lock.
* The final step (:class:`SlurmFinish`: settle, time, report) depends on the array with ``afterany``: it runs
  once every element has ended, however it ended, on one device of the partition.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from relight_base import run_folder
from relight_base.atomic import ensure_private_dir
from relight_base.errors import BenchError
from bench.harness import unit_state
from bench.harness.config import BenchConfig, SlurmConfig

log = logging.getLogger(__name__)

FINISH_TIME_MIN = 60  # the final step's time limit: timing and the report take minutes


@dataclass
class SlurmUnit:
    """The callable submitit pickles for one unit (``checkpoint`` makes it requeue-safe)."""

    cfg: BenchConfig
    out_root: str
    experiment: str
    seed: int
    restart: bool = False

    def __call__(self) -> str:
        from bench.launch.unit_process import configure_job_logging, pin_threads_from_slurm, run_one_unit

        configure_job_logging()
        _join_tasks()
        pin_threads_from_slurm()
        log_path = _job_log()
        return run_one_unit(self.cfg, Path(self.out_root), self.experiment, self.seed, restart=self.restart,
                            log_path=log_path)

    def checkpoint(self, *args: Any, **kwargs: Any):
        """submitit calls this on the time-limit or preemption signal: requeue the same unit, resuming this time."""
        import submitit

        return submitit.helpers.DelayedSubmission(replace(self, restart=False))


@dataclass
class SlurmFinish:
    """The final step's callable: settle silent units, time every trained model, write results and the report."""

    cfg: BenchConfig
    out_root: str

    def __call__(self) -> str:
        from bench.launch.finish import finish_run
        from bench.launch.unit_process import configure_job_logging, pin_threads_from_slurm

        configure_job_logging()
        pin_threads_from_slurm()
        _, report = finish_run(self.cfg, Path(self.out_root))
        return str(report)


def _join_tasks() -> None:
    """With several tasks, export the DDP environment (RANK, WORLD_SIZE, MASTER_ADDR, ...) from Slurm's."""
    import submitit

    env = submitit.JobEnvironment()
    if env.num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def _job_log() -> str | None:
    import submitit

    try:
        return str(submitit.JobEnvironment().paths.stderr)
    except Exception:  # outside a submitit job
        return None


@dataclass
class Submission:
    """What one ``bench run --launcher slurm`` submitted."""

    array_id: str
    unit_jobs: dict[Any, str]  # Unit -> "<array>_<index>"
    finish_job: str
    folder: Path


def require_slurm() -> Any:
    """submitit, or a clear error when it or Slurm's commands are missing."""
    try:
        import submitit
    except ImportError:
        raise BenchError("--launcher slurm needs submitit: pip install -e \".[slurm]\"") from None
    if shutil.which("sbatch") is None:
        raise BenchError("--launcher slurm: sbatch is not on PATH; run it on a Slurm login node (or use "
                         "--launcher local)")
    return submitit


def job_parameters(slurm: SlurmConfig, name: str) -> dict[str, Any]:
    """submitit's ``update_parameters`` for the unit jobs."""
    gpus = slurm.gpus_per_job if slurm.gpus_per_job is not None else partition_gpus(slurm.partition)
    params: dict[str, Any] = {
        "name": name, "timeout_min": slurm.time_min, "nodes": 1, "tasks_per_node": slurm.tasks_per_job or max(1, gpus),
        "slurm_array_parallelism": slurm.array_parallelism, "slurm_signal_delay_s": slurm.signal_delay_s,
        "slurm_setup": list(slurm.setup),
        "slurm_additional_parameters": dict(slurm.additional),
    }
    if gpus:
        params["gpus_per_node"] = gpus
    for key, value in (("slurm_partition", slurm.partition), ("cpus_per_task", slurm.cpus_per_task),
                       ("mem_gb", slurm.mem_gb)):
        if value is not None:
            params[key] = value
    return params


def partition_gpus(partition: str | None) -> int:
    """1 if ``sinfo`` lists a GPU GRES on the partition's nodes (or the default partition's), else 0."""
    command = ["sinfo", "-h", "-o", "%G"] + (["-p", partition] if partition else [])
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return 1 if "gpu" in out else 0


def submit(cfg: BenchConfig, out_root: Path, run_dir: Path, units: list, restart: bool) -> Submission:
    """Submit ``units`` as one job array and the final step as a job depending on it (``afterany``)."""
    submitit = require_slurm()
    array = submit_units(cfg, out_root, run_dir, units, restart)
    finish = _submit_finish(submitit, array.folder, cfg, out_root, array.params, array.array_id)
    return Submission(array.array_id, array.unit_jobs, finish.job_id, array.folder)


@dataclass
class ArraySubmission:
    """One job array of units: its id, each unit's job, the folder of submitit's files, the job parameters."""

    array_id: str
    unit_jobs: dict[Any, str]
    folder: Path
    params: dict[str, Any]


def submit_units(cfg: BenchConfig, out_root: Path, run_dir: Path, units: list, restart: bool) -> ArraySubmission:
    """Submit ``units`` as one job array (no final step: `bench tune` tells its studies itself)."""
    submitit = require_slurm()
    ensure_private_dir(run_dir / run_folder.LAUNCH_DIR)  # submitit's pickled jobs are loaded as code
    folder = ensure_private_dir(run_dir / run_folder.LAUNCH_DIR / "slurm")
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm",
                                     slurm_max_num_timeout=cfg.launcher.slurm.max_requeues)
    params = job_parameters(cfg.launcher.slurm, f"relight-{cfg.name}")
    executor.update_parameters(**params)
    jobs = []
    if units:
        with executor.batch():
            for unit in units:
                jobs.append(executor.submit(SlurmUnit(cfg, str(out_root), unit.experiment, unit.seed, restart)))
    unit_jobs = {}
    for unit, job in zip(units, jobs):
        unit_jobs[unit] = job.job_id
        unit_state.write_state(unit.folder, unit_state.PENDING, job=job.job_id, log=str(job.paths.stderr),
                               message="submitted to Slurm")
    array_id = jobs[0].job_id.split("_")[0] if jobs else ""
    return ArraySubmission(array_id, unit_jobs, folder, params)


def _submit_finish(submitit: Any, folder: Path, cfg: BenchConfig, out_root: Path, params: dict, array_id: str):
    """The final step: one task (one device), after every array element has ended, whatever its outcome."""
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    extra = dict(params["slurm_additional_parameters"])
    if array_id:
        extra["dependency"] = f"afterany:{array_id}"
    finish = {**params, "name": f"{params['name']}-finish", "tasks_per_node": 1, "timeout_min": FINISH_TIME_MIN,
              "slurm_additional_parameters": extra, "slurm_signal_delay_s": min(params["slurm_signal_delay_s"], 60)}
    finish.pop("slurm_array_parallelism")
    if "gpus_per_node" in finish:
        finish["gpus_per_node"] = 1
    executor.update_parameters(**finish)
    return executor.submit(SlurmFinish(cfg, str(out_root)))
