"""Preparing a run: checks that fail fast, the data made available, every split validated, training scenes
held out, and the run folder's header (the resolved config, the data summary and, once, the protocol)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relight_base import run_folder
from relight_base.atomic import atomic_write_text, ensure_output_dir, refuse_world_writable, remove_orphans
from bench.harness.capabilities import check_residual_switch
from bench.harness.config import BenchConfig, config_hash, to_yaml
from bench.harness.data import build_split, prepare_data_root
from bench.harness.distributed import DistContext
from bench.harness.lock import SharedFilesLock
from bench.harness.protocol import fix_protocol
from bench.harness.provenance import now
from datasets.holdout import held_out_scenes, holdout_count, holdout_split, without_scenes
from datasets.pairs import resolve_strategies
from datasets.splits import describe_split
from models.registry import check_model_args, load_plugins

log = logging.getLogger(__name__)

HOLDOUT = "holdout"  # key of the held-out training scenes in PreparedRun.splits
TRAIN_PREFIX = "train:"


def strategies_label(extra_data: bool | list[str]) -> str:
    """The extra-data strategies of an experiment as the results name them: ``extra_input,mirror`` or ``none``."""
    return ",".join(resolve_strategies(extra_data)) or "none"


def train_key(extra_data: bool | list[str]) -> str:
    """The key of an experiment's training split in :attr:`PreparedRun.splits` (one per set of strategies)."""
    return TRAIN_PREFIX + ",".join(resolve_strategies(extra_data))


@dataclass
class PreparedRun:
    """Everything a run needs before training: the run folder, data root and validated splits."""

    cfg: BenchConfig
    run_dir: Path
    data_root: Path
    splits: dict[str, Any] = field(default_factory=dict)  # "val", "test", "holdout", "train:<strategies>" -> dataset

    def train_split(self, extra_data: bool | list[str]):
        return self.splits[train_key(extra_data)]


def prepare(cfg: BenchConfig, out_root: Path, *, progress: bool = True, ctx: DistContext | None = None) -> PreparedRun:
    """Check models and output folder, make the data available and validate every split up front.

    Cheap checks (plugins, model names and arguments, output folder) come first
    so a typo fails in a second, before any data is generated or read.
    """
    ctx = ctx or DistContext()
    load_plugins(cfg.plugins)
    for index, exp in enumerate(cfg.experiments):
        check_model_args(exp.model, exp.model_args)
        check_residual_switch(index, exp)
    run_dir = Path(out_root) / cfg.name
    if ctx.is_main:
        ensure_output_dir(run_dir)
        for folder in (run_dir.parent, run_dir):  # where others could replace what a run reads back
            refuse_world_writable(folder)
    return _prepare_data(cfg, run_dir, progress, ctx)


def _prepare_data(cfg: BenchConfig, run_dir: Path, progress: bool, ctx: DistContext) -> PreparedRun:
    if ctx.is_main:
        data_root = prepare_data_root(cfg.data, progress=progress)
    ctx.barrier()  # rank 0 generated the synthetic data; the others now find it
    if not ctx.is_main:
        data_root = prepare_data_root(cfg.data, progress=False)
    prepared = PreparedRun(cfg, run_dir, data_root)
    for exp in cfg.experiments:
        key = train_key(exp.extra_data)
        if key not in prepared.splits:
            prepared.splits[key] = build_split(cfg.data, data_root, "train", exp.extra_data)
    _hold_out(prepared)
    if ctx.is_main:
        for split in cfg.eval.splits:
            prepared.splits[split] = build_split(cfg.data, data_root, split)
    return prepared


def _hold_out(prepared: PreparedRun) -> None:
    """Take ``train.holdout`` scenes out of every training split; their plain pairs become ``splits["holdout"]``.

    The same scenes leave every training split (see :mod:`datasets.holdout`), so all experiments validate on
    one set of scenes none of them trained on.
    """
    train = {key: ds for key, ds in prepared.splits.items() if key.startswith(TRAIN_PREFIX)}
    if not train:
        return
    ids = sorted({p.scene_id for ds in train.values() for p in ds.pairs})
    count = holdout_count(prepared.cfg.train.holdout, prepared.cfg.train.val_every > 0, len(ids))
    if not count:
        return
    scenes = held_out_scenes(ids, count)
    prepared.splits[HOLDOUT] = holdout_split(next(iter(train.values())), scenes)
    for key, ds in train.items():
        prepared.splits[key] = without_scenes(ds, scenes)
    log.info("holding out %d of %d training scenes for validation during training: %s", count, len(ids),
             ", ".join(scenes))


def write_run_header(prepared: PreparedRun) -> None:
    """Write the resolved config and the data summary into the run folder (atomically), and fix the protocol.

    ``protocol.yaml`` is written only by the folder's first start; a later start whose scoring differs from it
    is recorded as a rescoring in ``results.json`` (:mod:`bench.harness.protocol`), before ``config.yaml`` is
    rewritten with the new settings.  All of it under the shared-files lock.
    """
    cfg = prepared.cfg
    summary = {
        "written": now(),
        "config_hash": config_hash(cfg),
        "source": cfg.data.source,
        "root": str(prepared.data_root),
        "size": cfg.data.size,
        "input": cfg.data.input,
        "target": cfg.data.target,
        "splits": split_summaries(prepared),
    }
    with SharedFilesLock(prepared.run_dir):
        for folder in (prepared.run_dir, prepared.run_dir / run_folder.TABLES_DIR, prepared.run_dir / run_folder.FIGURES_DIR):
            remove_orphans(folder)  # temporary files of a writer killed mid-write (this lock covers these files)
        fix_protocol(prepared.run_dir, cfg)
        atomic_write_text(prepared.run_dir / run_folder.CONFIG_YAML, to_yaml(cfg))
        atomic_write_text(prepared.run_dir / run_folder.DATA_JSON, json.dumps(summary, indent=2, default=str) + "\n")


def split_summaries(prepared: PreparedRun) -> dict[str, dict]:
    """``data.json``'s ``splits``: each split's summary; the held-out one also lists its ``scene_ids`` (sorted),
    the training scenes none of the experiments trained on."""
    summaries = {name: describe_split(ds) for name, ds in prepared.splits.items()}
    if HOLDOUT in prepared.splits:
        summaries[HOLDOUT]["scene_ids"] = sorted({p.scene_id for p in prepared.splits[HOLDOUT].pairs})
    return summaries
