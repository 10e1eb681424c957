"""Building a validated split ("train", "val" or "test") from the data config.

``data_cfg`` needs ``size``, ``input``, ``target``, ``extra_input`` (conditions such as "6500_N"),
``cache``, ``max_pixels`` (the largest image read, width x height; :data:`datasets.io.DEFAULT_MAX_PIXELS` when
absent) and ``folders`` with ``train_input``, ``train_target``, ``val_input``, ``val_target``,
``test_input``, ``test_target`` and ``full`` (relative to the data root, or absolute; the last two may be
None).  The extra-data strategies apply to the training split only; the full-naming folder is scanned only
when a strategy needs it.  A test split without a ground-truth folder on disk yields samples without
``target``.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from datasets.errors import DataError
from datasets.conditions import Condition
from datasets.dataset import RelightingDataset
from datasets.io import DEFAULT_MAX_PIXELS
from datasets.layout import scan_full, scan_track1
from datasets.pairs import ORIGINS, build_pairs, resolve_strategies
from datasets.validate import validate_pairs

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
_FOLDERS = {"train": ("train_input", "train_target"), "val": ("val_input", "val_target"), "test": ("test_input", "test_target")}


def _resolve(root: Path, name: str | None) -> Path | None:
    if name is None or str(name).strip() == "":
        return None
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(root) / path


def _split_folders(data_cfg: Any, root: Path, split: str) -> tuple[Path, Path | None]:
    """The split's input folder and its ground-truth folder (None only for the test split) from the config."""
    input_key, target_key = _FOLDERS[split]
    input_dir = _resolve(root, getattr(data_cfg.folders, input_key))
    if input_dir is None:
        raise DataError(f"data.folders.{input_key} is not set; the {split} split needs its input folder")
    target_dir = _resolve(root, getattr(data_cfg.folders, target_key))
    if split != "test" and target_dir is None:
        raise DataError(f"data.folders.{target_key} is not set; the {split} split needs its ground-truth folder")
    return input_dir, target_dir


def _full_folder(data_cfg: Any, root: Path, strategies: Sequence[str], target_cond: Condition) -> Path:
    """The full-naming folder the extra-data ``strategies`` read; DataError saying what they need if it is absent."""
    extra_cond = Condition.parse(data_cfg.extra_input)
    needs = []
    if "extra_input" in strategies:
        needs.append(f"extra_input needs {extra_cond} images")
    if "mirror" in strategies:
        needs.append(f"mirror needs {target_cond.mirrored()} images")
    what = " and ".join(needs)
    full = _resolve(root, getattr(data_cfg.folders, "full", None))
    if full is None:
        raise DataError(
            f"data.folders.full is not set, but the training split uses extra data: {what} "
            "from the full VIDIT naming folder (Image{NNN}_{TTTT}_{D}.png + Image{NNN}.npy)"
        )
    if not full.is_dir():
        raise DataError(
            f"{full}: folder does not exist (data.folders.full); the training split uses extra data: {what} "
            "from it, in the full VIDIT naming (Image{NNN}_{TTTT}_{D}.png + Image{NNN}.npy)"
        )
    return full


def build_split(
    data_cfg: Any, root: Path, split: str, strategies: Sequence[str] = (), *, progress: bool = False
) -> RelightingDataset:
    """Scan, pair and validate one split and return its :class:`RelightingDataset`.

    ``strategies`` ("extra_input", "mirror") are used for ``split="train"`` and ignored, with a warning,
    otherwise.  Raises :class:`DataError` for missing folders or files and for any file that fails
    :func:`datasets.validate.validate_pairs` (images above ``data_cfg.max_pixels`` pixels included).
    """
    if split not in _FOLDERS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    input_cond, target_cond = Condition.parse(data_cfg.input), Condition.parse(data_cfg.target)
    input_dir, target_dir = _split_folders(data_cfg, root, split)
    scenes = scan_track1(input_dir, target_dir, input_cond, target_cond, require_target=split != "test")
    strategies = resolve_strategies(list(strategies))
    if strategies and split != "train":
        log.warning("extra-data strategies apply to the training split only; ignored for %s", split)
        strategies = ()
    full = _full_folder(data_cfg, root, strategies, target_cond) if strategies else None
    pairs = build_pairs(
        scenes, input_cond, target_cond, strategies,
        extra=scan_full(full) if full is not None else None,
        extra_input_cond=Condition.parse(data_cfg.extra_input), extra_folder=full,
    )
    max_pixels = int(getattr(data_cfg, "max_pixels", DEFAULT_MAX_PIXELS))
    validate_pairs(pairs, split=split, progress=progress, max_pixels=max_pixels)
    dataset = RelightingDataset(pairs, data_cfg.size, cache=bool(getattr(data_cfg, "cache", True)), split=split,
                                max_pixels=max_pixels)
    log.info("%s split: %s", split, describe_split(dataset))
    return dataset


def describe_split(ds: RelightingDataset) -> dict:
    """Summary of a split for run records: samples, scenes, samples per origin, targets, side length."""
    origins = Counter(p.origin for p in ds.pairs)
    return {
        "split": ds.split,
        "samples": len(ds),
        "scenes": len({p.scene_id for p in ds.pairs}),
        "origins": {o: origins[o] for o in ORIGINS if origins[o]},
        "with_target": sum(p.target_path is not None for p in ds.pairs),
        "size": ds.size,
    }
