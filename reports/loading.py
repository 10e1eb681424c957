"""Reading run folders for a report: their stored files checked against the results contract, and whether
several of them may be merged into one report.

Older run folders (fewer columns, no ``schema_version``) are read with the contract's defaults; a folder of a
newer schema than this code is refused (:mod:`relight_base.results`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relight_base import results as contract
from relight_base import run_folder
from relight_base.typed_config import read_yaml_file
from reports.conventions import scoring_of
from reports.errors import ReportError
from reports.timing_phases import NO_PHASE

COMPARABLE_KEYS = ("source", "size", "input", "target")


@dataclass
class LoadedRun:
    """What one run folder holds."""

    path: Path
    results: pd.DataFrame
    meta: dict[str, Any]
    data: dict[str, Any]
    config: dict[str, Any]
    schema_version: int = contract.SCHEMA_VERSION  # of its results (relight_base.results)


def normalise_results(path: Path, results: pd.DataFrame, version: int) -> pd.DataFrame:
    """Check the columns of a ``results.csv`` of schema ``version`` against the results contract and give the
    columns it may lack (older folders) their defaults (:mod:`relight_base.results`)."""
    missing, filled = contract.missing_for(version, results.columns)
    if missing:
        raise ReportError(f"{path / run_folder.RESULTS_CSV}: missing column(s) {', '.join(missing)}; expected the "
                          f"columns `python -m bench run` writes (schema version {version}: "
                          f"{', '.join(contract.REQUIRED)}, ...)")
    results = results.copy()
    for column, default in filled.items():
        results[column] = default
    _check_unit_keys(path / run_folder.RESULTS_CSV, results)
    phases = results["timing_phase"].astype(object)
    results["timing_phase"] = phases.where(phases.notna(), NO_PHASE).astype(str)
    results["experiment"] = results["experiment"].astype(str)
    return results


def _check_unit_keys(source: Path, results: pd.DataFrame) -> None:
    """Experiment names, seeds and splits of ``results`` become paths of per-image files: each must be what
    ``bench run`` writes (a valid experiment name, a whole seed >= 0, val or test), else a :class:`ReportError`."""
    for row, (experiment, seed, split) in enumerate(results[["experiment", "seed", "split"]].itertuples(index=False)):
        problem = run_folder.name_problem(str(experiment))
        if problem is None and not _whole(seed):
            problem = f"seed {seed!r} is not a whole number >= 0"
        if problem is None and split not in contract.SPLITS:
            problem = f"split {split!r} is not one of {', '.join(contract.SPLITS)}"
        if problem is not None:
            raise ReportError(f"{source}: row {row + 2}: {problem}; this file was not written by `python -m bench run`")


def _whole(value) -> bool:
    """A seed as a CSV holds it: a whole number >= 0 (an int, an integral float, or a string of digits)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return value >= 0
    if isinstance(value, (float, np.floating)):
        return float(value).is_integer() and value >= 0
    return isinstance(value, str) and value.isascii() and value.isdigit()


def load_run(path: Path) -> LoadedRun:
    """Read a run folder's stored results; a missing or unreadable file is a clear error."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path}: run folder does not exist")
    for name in (run_folder.RESULTS_CSV, run_folder.RESULTS_JSON, run_folder.DATA_JSON, run_folder.CONFIG_YAML):
        if not (path / name).is_file():
            raise ReportError(f"{path}: {name} is missing; is this a folder written by `python -m bench run`?")
    try:
        results = pd.read_csv(path / run_folder.RESULTS_CSV)
        meta = json.loads((path / run_folder.RESULTS_JSON).read_text())
        data = json.loads((path / run_folder.DATA_JSON).read_text())
        config = read_yaml_file(path / run_folder.CONFIG_YAML)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ReportError(f"{path}: cannot read its stored results ({exc})") from None
    if not isinstance(meta, dict):
        raise ReportError(f"{path / run_folder.RESULTS_JSON}: expected a JSON object, found {type(meta).__name__}")
    version = contract.schema_version(meta, str(path / run_folder.RESULTS_JSON))
    return LoadedRun(path, normalise_results(path, results, version), meta, data, config or {}, version)


def _check_data(first: LoadedRun, other: LoadedRun) -> None:
    for key in COMPARABLE_KEYS:
        if first.data.get(key) != other.data.get(key):
            raise ReportError(
                f"cannot merge {first.path} and {other.path}: data {key} differs "
                f"({first.data.get(key)!r} vs {other.data.get(key)!r}); their numbers are not comparable"
            )
    for split in ("val", "test"):
        a, b = first.data["splits"].get(split), other.data["splits"].get(split)
        if a and b and (a.get("samples"), a.get("scenes")) != (b.get("samples"), b.get("scenes")):
            raise ReportError(
                f"cannot merge {first.path} and {other.path}: their {split} splits differ "
                f"({a.get('samples')} vs {b.get('samples')} samples); their numbers are not comparable"
            )
    if first.config.get("data", {}).get("synthetic") != other.config.get("data", {}).get("synthetic") \
            and first.data.get("source") == "synthetic":
        raise ReportError(f"cannot merge {first.path} and {other.path}: they used different synthetic datasets")
    a, b = scoring_of(first.meta, first.config), scoring_of(other.meta, other.config)
    if a != b:
        raise ReportError(f"cannot merge {first.path} and {other.path}: they were scored differently (SSIM "
                          f"{a.ssim_kind} vs {b.ssim_kind}; {a.rounding()} vs {b.rounding()}); rescore one of them")


def check_comparable(runs: list[LoadedRun]) -> None:
    """Refuse to merge runs whose numbers were measured on different data or scored differently."""
    paths = [r.path.resolve() for r in runs]
    if len(set(paths)) != len(paths):
        raise ReportError("the same run folder is given twice: " + ", ".join(str(p) for p in paths if paths.count(p) > 1))
    for other in runs[1:]:
        _check_data(runs[0], other)
    seen: dict[tuple, Path] = {}
    for run in runs:
        for key in run.results[["experiment", "seed", "split"]].itertuples(index=False):
            if tuple(key) in seen and seen[tuple(key)] != run.path:
                raise ReportError(f"experiment {key[0]!r} seed {key[1]} appears in both {seen[tuple(key)]} and {run.path}")
            seen[tuple(key)] = run.path




def pairing(runs: list[LoadedRun]) -> dict[str, tuple[str, str]]:
    """Experiment -> (model with its arguments, training pairs), for deciding which rows' seeds are paired
    (:class:`reports.seed_level.SeedSource`): the model and ``model_args`` from the run's ``config.yaml``, the
    extra-data strategies from its results.  An experiment the config does not describe is left out (unpaired).
    """
    out: dict[str, tuple[str, str]] = {}
    for run in runs:
        pairs = dict(zip(run.results["experiment"], run.results["extra_data"].astype(str)))
        for exp in run.config.get("experiments") or []:
            if not isinstance(exp, dict) or exp.get("name") not in pairs:
                continue
            model = json.dumps([exp.get("model"), exp.get("model_args") or {}], sort_keys=True, default=str)
            out[str(exp["name"])] = (model, pairs[exp["name"]])
    return out
