"""A launched run's plan: which experiment x seed units still need a process, and the config they load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relight_base import run_folder
from relight_base.atomic import atomic_write_text, ensure_private_dir
from bench.harness import unit_state
from bench.harness.config import config_hash, to_yaml
from bench.harness.lock import RunFolderBusy, UnitLock, describe_owner
from bench.harness.prepare import PreparedRun
from bench.harness.reuse import unit_is_finished


@dataclass(frozen=True)
class Unit:
    """One experiment with one seed of a run, and its folder."""

    experiment: str
    seed: int
    folder: Path

    @property
    def label(self) -> str:
        return f"{self.experiment} s{self.seed}"


def all_units(prepared: PreparedRun) -> list[Unit]:
    """Every experiment x seed of the run, in config order."""
    return [Unit(exp.name, seed, run_folder.experiment_dir(prepared.run_dir, exp.name, seed))
            for exp in prepared.cfg.experiments for seed in prepared.cfg.seeds]


def units_to_run(prepared: PreparedRun, restart: bool) -> list[Unit]:
    """The units without a finished result under this config (all of them with ``restart``).

    A unit another live process or job holds is an error naming it, before anything is started.
    """
    wanted = [u for u in all_units(prepared)
              if restart or not unit_is_finished(prepared, prepared.cfg.experiment(u.experiment), u.seed)]
    busy = [f"{u.label}: {describe_owner(owner)}" for u in wanted if (owner := live_holder(u)) is not None]
    busy += [f"{u.label}: Slurm job {job} ({state.lower()})" for u, job, state in queued_jobs(wanted)]
    if busy:
        raise RunFolderBusy(f"{prepared.run_dir}: units still held by another `bench run` or job ("
                            + "; ".join(busy) + "); wait for them (`python -m bench status "
                            f"{prepared.run_dir}`) or cancel them first")
    return wanted


def queued_jobs(units: list[Unit]) -> list[tuple[Unit, str, str]]:
    """Units whose recorded Slurm job is still queued or running (submitted by an earlier command), with it."""
    from bench.launch.jobs import ACTIVE_STATES, slurm_states

    records = {u: unit_state.read_state(u.folder) for u in units}
    jobs = {u: r["job"] for u, r in records.items()
            if r.get("job") and r["state"] in (unit_state.PENDING, unit_state.RUNNING)}
    states = slurm_states(list(jobs.values()))
    return [(u, job, states[job]) for u, job in jobs.items() if states.get(job) in ACTIVE_STATES]


def live_holder(unit: Unit) -> dict | None:
    """The owner of the unit's lock if that owner may still be alive, else None."""
    return UnitLock(unit.folder).live_holder()


def write_snapshot(prepared: PreparedRun) -> Path:
    """The resolved config, as the units load it: ``launch/config-<hash>.yaml`` (content-addressed; in a folder only
    this user can write, so nobody else can change what the units load)."""
    text = to_yaml(prepared.cfg)
    folder = ensure_private_dir(prepared.run_dir / run_folder.LAUNCH_DIR)  # the units load what is in it
    path = folder / f"config-{config_hash(prepared.cfg)[:12]}.yaml"
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    return path
