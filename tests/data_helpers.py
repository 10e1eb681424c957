"""Tiny fake VIDIT trees for tests, written with datasets.io in VIDIT's formats (RGBA PNG, pickled-dict depth).

Images are random noise so that every pixel comparison is meaningful; the written arrays are returned so
tests can compare samples pixel-exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from datasets.io import write_depth_npy, write_rgba_png

FOLDERS = dict(
    train_input="track1_train/input",
    train_target="track1_train/target",
    val_input="track1_validation",
    val_target="track1_validation_gt",
    test_input="track1_test",
    test_target="track1_test_gt",
    full="vidit_full",
)


@dataclass
class FakeTree:
    """What was written: ``rgb[(scene_id, "6500_N")]`` (H,W,3) uint8 and ``depth[scene_id]`` (H,W) float32."""

    root: Path
    rgb: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    depth: dict[str, np.ndarray] = field(default_factory=dict)


def rand_rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def rand_depth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.random((h, w), dtype=np.float32)


def write_track1_split(
    tree: FakeTree,
    input_dir: str,
    target_dir: str | None,
    scene_ids: list[str],
    *,
    hw: tuple[int, int] = (16, 16),
    input_cond: str = "6500_N",
    target_cond: str = "4500_E",
    seed: int = 0,
) -> None:
    """``input_dir/ImageNNN.{png,npy}`` and, unless None, ``target_dir/ImageNNN.png``."""
    rng = np.random.default_rng(seed)
    h, w = hw
    for sid in scene_ids:
        rgb = tree.rgb.setdefault((sid, input_cond), rand_rgb(rng, h, w))
        depth = tree.depth.setdefault(sid, rand_depth(rng, h, w))
        write_rgba_png(tree.root / input_dir / f"{sid}.png", rgb)
        write_depth_npy(tree.root / input_dir / f"{sid}.npy", depth)
        if target_dir is not None:
            target = tree.rgb.setdefault((sid, target_cond), rand_rgb(rng, h, w))
            write_rgba_png(tree.root / target_dir / f"{sid}.png", target)


def write_full_folder(
    tree: FakeTree,
    folder: str,
    scene_ids: list[str],
    conditions: list[str],
    *,
    hw: tuple[int, int] = (16, 16),
    seed: int = 1,
) -> None:
    """``folder/Image{NNN}_{TTTT}_{D}.png`` for each condition plus ``folder/Image{NNN}.npy``.

    Conditions already in ``tree`` (e.g. the Track 1 input) reuse the same pixels, as in VIDIT.
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    for sid in scene_ids:
        depth = tree.depth.setdefault(sid, rand_depth(rng, h, w))
        write_depth_npy(tree.root / folder / f"{sid}.npy", depth)
        for cond in conditions:
            rgb = tree.rgb.setdefault((sid, cond), rand_rgb(rng, h, w))
            write_rgba_png(tree.root / folder / f"{sid}_{cond}.png", rgb)


def make_tree(
    root: Path,
    *,
    train: int = 3,
    val: int = 2,
    test: int = 2,
    hw: tuple[int, int] = (16, 16),
    test_gt: bool = False,
    full: bool = True,
) -> FakeTree:
    """A complete default-layout tree: train Image000.., val Image100.., test Image200..; full folder for train."""
    tree = FakeTree(Path(root))
    train_ids = [f"Image{i:03d}" for i in range(train)]
    write_track1_split(tree, FOLDERS["train_input"], FOLDERS["train_target"], train_ids, hw=hw, seed=10)
    write_track1_split(tree, FOLDERS["val_input"], FOLDERS["val_target"], [f"Image{100 + i}" for i in range(val)], hw=hw, seed=11)
    write_track1_split(tree, FOLDERS["test_input"], FOLDERS["test_target"] if test_gt else None,
                       [f"Image{200 + i}" for i in range(test)], hw=hw, seed=12)
    if full:
        write_full_folder(tree, FOLDERS["full"], train_ids, ["6500_N", "6500_NE", "4500_E", "4500_W"], hw=hw, seed=13)
    return tree


def data_cfg(size: int | None = 16, cache: bool = True, max_pixels: int = 4096 * 4096, **folders) -> SimpleNamespace:
    """A stand-in for ``bench.harness.config.DataConfig`` with the default folder names (overridable)."""
    return SimpleNamespace(
        size=size, input="6500_N", target="4500_E", extra_input="6500_NE", cache=cache, max_pixels=max_pixels,
        folders=SimpleNamespace(**{**FOLDERS, **folders}),
    )


def one_conv_plugin(model_name: str) -> str:
    """Source of a plugin module registering ``model_name``: one 3x3 convolution on RGB + depth (4 -> 3 channels)."""
    return f'''"""A one-layer fusion net from outside the package (test plugin)."""
import torch
from torch import nn
from bench import register_model


class OneConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, rgb, depth):
        return self.conv(torch.cat([rgb, depth], dim=1))


@register_model("{model_name}")
def {model_name}() -> nn.Module:
    """A 3x3 convolution on RGB + depth (test plugin)."""
    return OneConv()
'''
