"""The run folder's shared results: ``results.csv`` and ``results.json``, rebuilt from the units' own files.

Many processes may share one run folder (the launchers of :mod:`bench.launch` run units in parallel), so the
shared files are never appended to: they are rebuilt from each unit's ``result.json`` / ``unit.json`` under a
short lock (:class:`~bench.harness.lock.SharedFilesLock`).  The rows follow the results contract
(:mod:`relight_base.results`); ``results.json`` records its schema version beside the conventions and provenance,
names the run's ``protocol.yaml`` and carries forward the rescorings recorded since (:mod:`bench.harness.protocol`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from relight_base import run_folder
from relight_base.atomic import atomic_write_text
from relight_base.errors import ConfigError
from relight_base.typed_config import read_yaml_file
from relight_base.results import NAMES, SCHEMA_VERSION
from bench.harness import unit_state
from bench.harness.config import BenchConfig, ExperimentConfig, config_hash, to_dict
from bench.harness.distributed import pick_device
from bench.harness.job import ExperimentJob
from bench.harness.lock import SharedFilesLock
from bench.harness.metrics import conventions
from bench.harness.prepare import PreparedRun
from bench.harness.protocol import stored_rescorings
from bench.harness.provenance import git_state, machine, now, software_versions
from bench.harness.result_rows import placeholder_row
from bench.harness.reuse import unit_is_finished
from bench.harness.timing_phase import TimingPhase, gflops_description, timing_size


def unit_rows(prepared: PreparedRun, exp: ExperimentConfig, seed: int, *, include_unfinished: bool) -> list[dict]:
    """One unit's result rows as its own files tell them.

    A finished unit (``result.json`` of this config and scoring) gives its rows; a failed one the rows its
    ``unit.json`` kept; with ``include_unfinished`` every other unit gives one row per split whose status is
    its state (cancelled, killed, running, pending, not run) and whose metrics are empty.
    """
    job = ExperimentJob.of(prepared, exp, seed)
    if unit_is_finished(prepared, exp, seed):
        return json.loads((job.folder / run_folder.RESULT_JSON).read_text())["rows"]
    record = unit_state.read_state(job.folder)
    if record["state"] == unit_state.FAILED and record.get("rows"):
        return record["rows"]
    if not include_unfinished and record["state"] != unit_state.FAILED:
        return []
    return [placeholder_row(job, split, record) for split in prepared.cfg.eval.splits]


def collect_rows(prepared: PreparedRun, *, include_unfinished: bool) -> list[dict]:
    """Every unit's rows, in config order (experiments, then seeds), from the units' own files."""
    return [row for exp in prepared.cfg.experiments for seed in prepared.cfg.seeds
            for row in unit_rows(prepared, exp, seed, include_unfinished=include_unfinished)]


def rebuild_results(prepared: PreparedRun, phase: TimingPhase | None = None, rows: list[dict] | None = None) -> list[dict]:
    """Rewrite ``results.csv``/``results.json`` from the units' files (or ``rows``) under the shared-files lock."""
    if rows is None:
        rows = collect_rows(prepared, include_unfinished=phase is not None)
    with SharedFilesLock(prepared.run_dir):
        write_results(prepared, rows, phase)
    return rows


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """``rows`` as a frame with the contract's columns, in its order."""
    return pd.DataFrame(rows, columns=list(NAMES))


def write_results(prepared: PreparedRun, rows: list[dict], phase: TimingPhase | None = None) -> None:
    """``results.csv`` and its companion ``results.json`` (schema version, conventions, provenance, timing,
    protocol and rescorings), atomically.  Before the timing phase (``phase`` None) the time columns are empty
    and ``timing`` says so.  The ``rescorings`` of the previous ``results.json`` are kept (an unreadable or
    missing one has none); call it under the shared-files lock, as every caller does.
    """
    cfg = prepared.cfg
    atomic_write_text(prepared.run_dir / run_folder.RESULTS_CSV, results_frame(rows).to_csv(index=False))
    meta = {
        "schema_version": SCHEMA_VERSION,
        "written": now(),
        "config_hash": config_hash(cfg),
        "git": git_state(),
        "data": {"source": cfg.data.source, "root": str(prepared.data_root), "size": cfg.data.size,
                 "input": cfg.data.input, "target": cfg.data.target},
        "train": to_dict(cfg.train),
        "software": software_versions(),
        "machine": machine(_device_of(cfg)),
        "metric_conventions": conventions(cfg.eval.quantize, cfg.eval.ssim),
        "lpips": lpips_status(rows),
        "timing": phase.description(cfg) if phase else
                  "not timed yet: the timing phase runs once every experiment has trained and been scored",
        "gflops": gflops_description(timing_size(cfg)),
        "protocol": _protocol_file(prepared),
        "rescorings": stored_rescorings(prepared.run_dir),
        "tuned": tuned_record(prepared.run_dir),
    }
    atomic_write_text(prepared.run_dir / run_folder.RESULTS_JSON, json.dumps(meta, indent=2, default=str) + "\n")


def _protocol_file(prepared: PreparedRun) -> str | None:
    """The name of the run's ``protocol.yaml`` (relative to the run folder), or None if it has none."""
    return run_folder.PROTOCOL_YAML if (prepared.run_dir / run_folder.PROTOCOL_YAML).is_file() else None


def _device_of(cfg: BenchConfig):
    return pick_device(cfg.train.device)


def lpips_status(rows: list[dict]) -> str:
    """Which LPIPS weights scored ``rows`` (the first finished row's ``lpips_weights``), or n/a."""
    for row in rows:
        if row.get("status") == unit_state.DONE and isinstance(row.get("lpips_weights"), str) and row["lpips_weights"]:
            return row["lpips_weights"]
    return "n/a"


def unfinished_units(rows: list[dict]) -> list[str]:
    """``"name (seed k)"`` for each failed unit, ``"name (seed k): <state>"`` for each other unit not done."""
    labels = {}
    for row in rows:
        if row["status"] != unit_state.DONE:
            state = "" if row["status"] == unit_state.FAILED else f": {row['status']}"
            labels[(row["experiment"], row["seed"])] = f"{row['experiment']} (seed {row['seed']}){state}"
    return list(labels.values())


def tuned_record(run_dir: Path) -> dict | None:
    """The tuning behind the run (``bench run --tuned`` keeps the file as ``tuned.yaml``): per experiment the
    chosen values, trial, held-out score, budget and study; None for a run that was not tuned."""
    path = run_dir / run_folder.TUNED_YAML
    if not path.is_file():
        return None
    try:
        data = read_yaml_file(path)
    except ConfigError as exc:
        return {"file": run_folder.TUNED_YAML, "problem": str(exc)}
    experiments = data.get("experiments") if isinstance(data, dict) else None
    keep = ("train", "trial", "held_out", "budget", "study")
    return {"file": run_folder.TUNED_YAML, "config_hash": data.get("config_hash") if isinstance(data, dict) else None,
            "experiments": {name: {k: entry.get(k) for k in keep} for name, entry in (experiments or {}).items()
                            if isinstance(entry, dict)}}

