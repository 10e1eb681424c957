"""Building a validated split ("train", "val" or "test") from the data config."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

from bench.errors import DataError
from datasets.conditions import Condition
from datasets.dataset import RelightingDataset
from datasets.layout import scan_full, scan_track1
from datasets.pairs import build_pairs
from datasets.validate import validate_pairs

log = logging.getLogger(__name__)

_FOLDERS = {"train": ("train_input", "train_target"), "val": ("val_input", "val_target"), "test": ("test_input", "test_target")}


def _resolve(root: Path, name: str | None) -> Path | None:
    if name is None:
        return None
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(root) / path


def build_split(data_cfg, root: Path, split: str, strategies: Sequence[str] = (), *, progress: bool = False) -> RelightingDataset:
    """Scan, pair and validate one split; strategies apply to "train" only."""
    if split not in _FOLDERS:
        raise ValueError(f"split must be train, val or test, not {split!r}")
    input_key, target_key = _FOLDERS[split]
    input_cond, target_cond = Condition.parse(data_cfg.input), Condition.parse(data_cfg.target)
    input_dir = _resolve(root, getattr(data_cfg.folders, input_key))
    target_dir = _resolve(root, getattr(data_cfg.folders, target_key))
    scenes = scan_track1(input_dir, target_dir, input_cond, target_cond, require_target=split != "test")
    strategies = tuple(strategies) if split == "train" else ()
    extra, extra_folder = None, "the full-naming folder"
    if strategies:
        full = _resolve(root, data_cfg.folders.full)
        if full is None:
            raise DataError(f"data.folders.full is not set, and the {' and '.join(strategies)} strategy needs it "
                            "(the full VIDIT naming folder with 6500_NE and 4500_W images)")
        extra, extra_folder = scan_full(full), str(full)
    pairs = build_pairs(scenes, input_cond, target_cond, strategies, extra=extra,
                        extra_input_cond=Condition.parse(data_cfg.extra_input), extra_folder=extra_folder)
    validate_pairs(pairs, split=split, progress=progress)
    return RelightingDataset(pairs, data_cfg.size, cache=data_cfg.cache, split=split)


def describe_split(ds: RelightingDataset) -> dict:
    """Counts per origin, scenes and sample size of a split (for run summaries)."""
    return {
        "samples": len(ds),
        "scenes": len({p.scene_id for p in ds.pairs}),
        "origins": dict(Counter(p.origin for p in ds.pairs)),
        "with_target": sum(p.target_path is not None for p in ds.pairs),
        "size": ds.size,
    }
