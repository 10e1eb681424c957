"""Held-out training scenes: a part of the training split never trained on, for validation during training.

Choosing a checkpoint on the split a table reports would flatter every row, so the harness validates on
scenes taken out of the *training* split instead.  Which scenes are held out depends only on the split's
scene ids and the count, never on an experiment or its seed, so every experiment of a run holds out the same
scenes and every data strategy (extra inputs, mirrored pairs) loses all pairs of those scenes alike.
"""

from __future__ import annotations

import math
from typing import Sequence

from datasets.dataset import RelightingDataset
from relight_base.errors import ConfigError

DEFAULT_FRACTION = 0.1  # of the training scenes, when validation is on and no count is given


def holdout_count(requested: int | None, validating: bool, scenes: int) -> int:
    """How many of ``scenes`` training scenes to hold out.

    ``requested`` (``train.holdout``) if given, else 10 % of the scenes (rounded up, at least 1) when
    ``validating`` (``train.val_every > 0``), else none.  Raises :class:`ConfigError` when no scene
    would be left to train on.
    """
    count = requested if requested is not None else (max(1, math.ceil(DEFAULT_FRACTION * scenes)) if validating else 0)
    if count and count >= scenes:
        raise ConfigError(f"train.holdout: holding out {count} of the {scenes} training scenes leaves none to train "
                          f"on; use at most {scenes - 1}")
    return count


def held_out_scenes(scene_ids: Sequence[str], count: int) -> list[str]:
    """``count`` scene ids spread evenly over the sorted ids (the middle of each of ``count`` equal runs)."""
    ordered = sorted(set(scene_ids))
    if not 0 <= count <= len(ordered):
        raise ValueError(f"cannot hold out {count} of {len(ordered)} scenes")
    return [ordered[int((k + 0.5) * len(ordered) / count)] for k in range(count)]


def without_scenes(dataset: RelightingDataset, scenes: Sequence[str]) -> RelightingDataset:
    """``dataset`` minus every pair (of any origin) of ``scenes``; the dataset itself when there are none."""
    if not scenes:
        return dataset
    drop = set(scenes)
    return RelightingDataset([p for p in dataset.pairs if p.scene_id not in drop], dataset.size,
                             cache=dataset.cache, split=dataset.split, max_pixels=dataset.max_pixels)


def holdout_split(dataset: RelightingDataset, scenes: Sequence[str]) -> RelightingDataset:
    """The plain input -> target pairs (origin ``baseline``) of ``scenes``: the task the tables score, on them."""
    keep = set(scenes)
    pairs = [p for p in dataset.pairs if p.scene_id in keep and p.origin == "baseline"]
    return RelightingDataset(pairs, dataset.size, cache=dataset.cache, split="holdout", max_pixels=dataset.max_pixels)
