"""How each row was tuned: its own training settings, and the ``bench tune`` budget that chose them.

A run made with ``bench run --tuned FILE`` keeps a copy of that file as ``tuned.yaml`` in its run folder; the
values each experiment actually trained with are its ``train:`` settings in the stored ``config.yaml``.  A row
is shown as tuned only when both agree (the values in force are the ones the file chose); a row with settings of
its own that no tuning chose says so; every other row is "not tuned" (the shared ``train:`` settings).  The
tuning section of the report lists every trial, draws the best held-out score so far per experiment, and states
the search space and rules, all from the copied file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from relight_base import run_folder
from relight_base.errors import ConfigError
from relight_base.typed_config import read_yaml_file
from reports import figures
from reports.errors import ReportError

TUNED_YAML = run_folder.TUNED_YAML


@dataclass
class Tuning:
    """Per experiment the cell text of its tuning, every trial (one row each), and the rules in words."""

    cells: dict[str, str] = field(default_factory=dict)
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)
    rules: list[str] = field(default_factory=list)


def read_tuned(run_dir: Path) -> dict | None:
    """The run folder's copy of the tuned file, or None when the run was not made with ``--tuned``."""
    path = Path(run_dir) / TUNED_YAML
    if not path.is_file():
        return None
    try:
        data = read_yaml_file(path)
    except ConfigError as exc:
        raise ReportError(f"{exc}; expected the tuned.yaml `python -m bench tune` writes") from None
    if not isinstance(data, dict) or not isinstance(data.get("experiments"), dict):
        raise ReportError(f"{path}: expected a mapping with 'experiments:' as `python -m bench tune` writes it")
    return data


def _words(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())


def cell(own: dict[str, Any], shared_lr: Any, entry: dict | None) -> str:
    """One row's tuning text: tuned (values, budget, score), own settings not from tuning, or not tuned."""
    if not own:
        return f"not tuned (shared lr {shared_lr:g})" if isinstance(shared_lr, (int, float)) else "not tuned"
    if not isinstance(entry, dict) or entry.get("train") != own:
        return f"own settings: {_words(own)} (not chosen by bench tune)"
    budget = entry.get("budget") or {}
    return (f"tuned: {_words(own)} (trial {entry.get('trial')} of {budget.get('trials')} × {budget.get('steps')} "
            f"steps × {budget.get('seeds')} seed(s); held-out {float(entry.get('held_out', math.nan)):.4g})")


def load_tuning(run_dir: Path, config: dict) -> Tuning:
    """The tuning of every experiment of one run (``config``: its stored ``config.yaml``)."""
    tuned = read_tuned(run_dir) or {"experiments": {}}
    shared_lr = (config.get("train") or {}).get("lr")
    out = Tuning()
    for exp in config.get("experiments") or []:
        if not isinstance(exp, dict) or "name" not in exp:
            continue
        own = {k: v for k, v in (exp.get("train") or {}).items() if v is not None}
        out.cells[str(exp["name"])] = cell(own, shared_lr, tuned["experiments"].get(exp["name"]))
    rows = [{"experiment": name, **trial} for name, entry in tuned["experiments"].items() if isinstance(entry, dict)
            for trial in entry.get("trials") or [] if isinstance(trial, dict)]
    out.trials = pd.DataFrame(rows)
    protocol = tuned.get("protocol") or {}
    if protocol:
        out.rules = [f"Search space: {protocol.get('space')}; {protocol.get('trials')} trials per experiment of "
                     f"{protocol.get('steps')} steps on seed(s) {protocol.get('seeds')}, proposed by the "
                     f"{protocol.get('sampler')} sampler (seed {protocol.get('sampler_seed')}), {protocol.get('parallel')} "
                     f"per round.",
                     f"Objective: held-out {protocol.get('objective')} at the {protocol.get('objective_step')} "
                     f"step, on {protocol.get('holdout')} training scenes held out of training (never the val or test "
                     f"split); failed trials count as the worst value and are not retried.",
                     f"Not tuned: {', '.join(tuned.get('not_tuned') or []) or 'none'}."]
    return out


def best_so_far_svg(trials: pd.DataFrame) -> str:
    """Best held-out score so far against trial number, one line per experiment."""
    curves = []
    for name, group in trials.groupby("experiment", sort=False) if not trials.empty else []:
        group = group.sort_values("trial")
        curves.append((str(name), group["trial"].tolist(), group["held_out"].cummax().tolist()))
    return figures.curves_svg(curves, "Best held-out score so far", "trial", "held-out score",
                              empty="no tuning: this run was not made with bench run --tuned")
