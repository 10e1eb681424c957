"""``python -m bench run``: every experiment x seed of a config, into one run folder.

Run folder layout (``<out>/<name>/``)::

    config.yaml      the resolved config (defaults filled in, overrides applied)
    data.json        where the data came from and what each split holds
    <experiment>/    one folder per experiment (training results: issue 2 of 6)
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.atomic import atomic_write_text, ensure_output_dir
from bench.config import BenchConfig, config_hash, to_yaml
from bench.data import build_split, prepare_data_root
from bench.registry import check_model_args, load_plugins

log = logging.getLogger(__name__)


@dataclass
class PreparedRun:
    """Everything a run needs before training: the run folder, data root and validated splits."""

    cfg: BenchConfig
    run_dir: Path
    data_root: Path
    splits: dict[str, Any] = field(default_factory=dict)  # "val", "test", "train:<strategies>" -> dataset

    def train_split(self, extra_data: bool | list[str]):
        from datasets.pairs import resolve_strategies

        return self.splits["train:" + ",".join(resolve_strategies(extra_data))]


def prepare(cfg: BenchConfig, out_root: Path, *, progress: bool = True) -> PreparedRun:
    """Check models and output folder, make the data available and validate every split up front.

    Cheap checks (plugins, model names and arguments, output folder) come first
    so a typo fails in a second, before any data is generated or read.
    """
    load_plugins(cfg.plugins)
    for exp in cfg.experiments:
        check_model_args(exp.model, exp.model_args)
    run_dir = ensure_output_dir(Path(out_root) / cfg.name)
    data_root = prepare_data_root(cfg.data, progress=progress)
    prepared = PreparedRun(cfg, run_dir, data_root)
    from datasets.pairs import resolve_strategies

    for exp in cfg.experiments:
        key = "train:" + ",".join(resolve_strategies(exp.extra_data))
        if key not in prepared.splits:
            prepared.splits[key] = build_split(cfg.data, data_root, "train", exp.extra_data)
    for split in ("val", "test"):
        prepared.splits[split] = build_split(cfg.data, data_root, split)
    return prepared


def write_run_header(prepared: PreparedRun) -> None:
    """Write the resolved config and the data summary into the run folder (atomically)."""
    from datasets.splits import describe_split

    cfg = prepared.cfg
    atomic_write_text(prepared.run_dir / "config.yaml", to_yaml(cfg))
    summary = {
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config_hash": config_hash(cfg),
        "source": cfg.data.source,
        "root": str(prepared.data_root),
        "size": cfg.data.size,
        "input": cfg.data.input,
        "target": cfg.data.target,
        "splits": {name: describe_split(ds) for name, ds in prepared.splits.items()},
    }
    atomic_write_text(prepared.run_dir / "data.json", json.dumps(summary, indent=2, default=str) + "\n")


def run_benchmark(cfg: BenchConfig, out_root: Path, *, progress: bool = True) -> PreparedRun:
    """Prepare data and models for every experiment and write the run folder's header files."""
    prepared = prepare(cfg, out_root, progress=progress)
    write_run_header(prepared)
    return prepared
