"""``bench status RUN_DIR``: every unit's state as its files (and Slurm, for open jobs) tell it, and the whole run
in one line (:mod:`bench.harness.run_progress`)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from relight_base import run_folder
from relight_base.errors import BenchError
from bench.harness import unit_state
from bench.harness.config import load_config
from bench.harness.lock import UnitLock, describe_owner
from bench.harness.run_progress import estimate_run_folder, format_line
from bench.launch.jobs import ACTIVE_STATES, slurm_states

STATUS_COLUMNS = ["experiment", "seed", "state", "job", "step", "updated", "detail"]


def run_status(run_dir: Path) -> pd.DataFrame:
    """One row per experiment x seed of the run's ``config.yaml``: state, job, newest checkpoint step, detail."""
    config = Path(run_dir) / run_folder.CONFIG_YAML
    if not config.is_file():
        raise BenchError(f"{run_dir} is not a run folder: it has no {run_folder.CONFIG_YAML} (written by `bench run`)")
    cfg = load_config(config)
    units = [(e.name, s, run_folder.experiment_dir(run_dir, e.name, s)) for e in cfg.experiments for s in cfg.seeds]
    records = {folder: _record(folder) for _, _, folder in units}
    open_jobs = [r.get("job") for r in records.values() if r["state"] in (unit_state.PENDING, unit_state.RUNNING)]
    states = slurm_states([j for j in open_jobs if j])
    rows = [_row(name, seed, folder, records[folder], states) for name, seed, folder in units]
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def run_line(run_dir: Path, now: float | None = None) -> str:
    """``run: 3/8 units done | 4 min 12 s elapsed | about 9 min left (+ timing phase)`` from the run folder's files."""
    return format_line(estimate_run_folder(run_dir, now))


def _record(folder: Path) -> dict:
    record = unit_state.read_state(folder)
    if record["state"] == unit_state.NOT_RUN and (folder / run_folder.RESULT_JSON).is_file():
        return {"state": unit_state.DONE, "message": "finished (no unit.json: an earlier version wrote it)"}
    return record


def _row(name: str, seed: int, folder: Path, record: dict, states: dict[str, str]) -> dict:
    state, job = record["state"], record.get("job") or ""
    detail = record.get("message", "")
    if state in (unit_state.PENDING, unit_state.RUNNING):
        slurm = states.get(job)
        if slurm and slurm not in ACTIVE_STATES:
            detail = f"Slurm says {slurm}; the final step records it"
        elif slurm:
            detail = f"Slurm: {slurm}"
        holder = UnitLock(folder).live_holder()
        if holder is not None:
            detail = f"{detail}; held by {describe_owner(holder)}".lstrip("; ")
    if state in (unit_state.FAILED, unit_state.KILLED, unit_state.CANCELLED, unit_state.RUNNING) and record.get("log"):
        detail = f"{detail}; log: {record['log']}".lstrip("; ")
    return {"experiment": name, "seed": seed, "state": state, "job": job or ("local" if record.get("pid") else ""),
            "step": newest_checkpoint_step(folder), "updated": record.get("updated", ""), "detail": detail}


def newest_checkpoint_step(folder: Path) -> str:
    """The step of the newest training checkpoint in ``folder/checkpoints`` ("" when there is none)."""
    steps = [int(m.group(1)) for p in (folder / run_folder.CHECKPOINTS_DIR).glob("step_*.pt")
             if (m := re.fullmatch(r"step_(\d+)\.pt", p.name))]
    return str(max(steps)) if steps else ""
