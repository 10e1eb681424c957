"""Finding VIDIT scenes on disk: the NTIRE 2021 Track 1 layout and the full VIDIT naming.

VIDIT: El Helou et al., "VIDIT: Virtual Image Dataset for Illumination Transfer", arXiv:2005.05460
(https://github.com/majedelhelou/VIDIT); Track 1 is the one-to-one task of the NTIRE 2021 Depth Guided
Image Relighting Challenge (El Helou et al., CVPR Workshops 2021).

* Track 1: ``<input_dir>/ImageNNN.png`` + ``ImageNNN.npy`` (the input condition and its depth) and,
  where ground truth exists, ``<target_dir>/ImageNNN.png`` (the target condition, same name).
* Full naming (the Track 2 training set, source of the paper's extra data):
  ``<folder>/Image{NNN}_{TTTT}_{D}.png`` (any of the 40 conditions) plus one ``Image{NNN}.npy`` depth
  per scene.

Scene ids are ``Image`` followed by digits (three in VIDIT, more accepted) and are sorted numerically.
Scanning only lists files; :mod:`datasets.validate` checks their contents.  Files that are clearly
unrelated (other extensions, sub-folders) are ignored; PNGs whose names do not follow the layout are
ignored with a warning, so a misnamed image never disappears silently.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from datasets.errors import DataError
from datasets.conditions import Condition

log = logging.getLogger(__name__)

#: ``Image042.png`` (Track 1).
TRACK1_NAME = re.compile(r"^(Image\d+)\.[pP][nN][gG]$")
#: ``Image042.npy`` (a scene's depth, both layouts).
DEPTH_NAME = re.compile(r"^(Image\d+)\.npy$")
#: ``Image042_6500_NE.png`` (full VIDIT naming); the direction is matched case-insensitively.
FULL_NAME = re.compile(r"^(Image\d+)_(\d+)_([A-Za-z]{1,2})\.[pP][nN][gG]$")


@dataclass(frozen=True)
class Scene:
    """One scene: its depth file and the lit images available for it (condition -> PNG path)."""

    scene_id: str
    depth: Path
    images: Mapping[Condition, Path] = field(default_factory=dict)


def scene_sort_key(scene_id: str) -> tuple[int, str]:
    """Numeric order of ``ImageNNN`` ids (``Image999`` before ``Image1000``)."""
    digits = scene_id[len("Image"):]
    return (int(digits) if digits.isdigit() else -1, scene_id)


def _require_folder(folder: Path, what: str) -> None:
    if not folder.exists():
        raise DataError(f"{folder}: folder does not exist (expected {what})")
    if not folder.is_dir():
        raise DataError(f"{folder}: is a file, expected a folder of {what}")


def _pngs(folder: Path) -> list[Path]:
    """PNG files of a folder (extension case-insensitive), by name."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file()), key=lambda p: p.name)


def _track1_inputs(input_dir: Path, expected: str) -> list[tuple[str, Path]]:
    """``[(scene id, PNG), ...]`` of a Track 1 input folder in scene order; misnamed PNGs are skipped with a warning."""
    _require_folder(input_dir, expected)
    inputs: list[tuple[str, Path]] = []
    for png in _pngs(input_dir):
        match = TRACK1_NAME.match(png.name)
        if not match:
            log.warning("%s: ignored, not a Track 1 name (expected ImageNNN.png, e.g. Image042.png)", png)
            continue
        inputs.append((match[1], png))
    if not inputs:
        raise DataError(f"{input_dir}: no input images found (expected {expected})")
    inputs.sort(key=lambda item: scene_sort_key(item[0]))
    return inputs


def _ground_truth_dir(
    input_dir: Path, target_dir: Path | None, target_cond: Condition, require_target: bool
) -> Path | None:
    """The ground-truth folder to read, or None for a split without ground truth (only if not ``require_target``)."""
    if target_dir is None:
        if require_target:
            raise DataError(
                f"{input_dir}: this split needs a ground-truth folder ({target_cond} images), and none is configured"
            )
        return None
    target_dir = Path(target_dir)
    if target_dir.is_dir():
        return target_dir
    if require_target:
        _require_folder(target_dir, f"ground-truth ImageNNN.png images lit {target_cond}")
    log.info("%s: no ground-truth folder; the split has inputs only", target_dir)
    return None


def _warn_about_orphan_depths(input_dir: Path) -> None:
    """Log the depth maps of a Track 1 folder that have no image beside them (they are ignored)."""
    orphans = sorted(
        p.name for p in input_dir.glob("Image*.npy")
        if DEPTH_NAME.match(p.name) and not (input_dir / f"{p.stem}.png").is_file()
    )
    if orphans:
        log.warning("%s: %d depth map(s) without an image ignored: %s", input_dir, len(orphans), ", ".join(orphans[:5]))


def scan_track1(
    input_dir: Path,
    target_dir: Path | None,
    input_cond: Condition,
    target_cond: Condition,
    *,
    require_target: bool,
) -> list[Scene]:
    """Scenes of one Track 1 split, sorted by scene id.

    Each scene's ``images`` holds ``input_cond`` (from ``input_dir``) and, when a target folder exists,
    ``target_cond`` (from ``target_dir``).  Raises :class:`DataError` naming the folder or file for: a
    missing or empty input folder, a PNG without its ``.npy`` depth, an input without its target, and a
    missing target folder when ``require_target`` (validation/training).  Without ``require_target``
    (the test split) a missing target folder means "no ground truth".
    """
    input_dir = Path(input_dir)
    inputs = _track1_inputs(input_dir, "ImageNNN.png input images with their ImageNNN.npy depth maps")
    target_dir = _ground_truth_dir(input_dir, target_dir, target_cond, require_target)
    scenes: list[Scene] = []
    for scene_id, png in inputs:
        depth = input_dir / f"{scene_id}.npy"
        if not depth.is_file():
            raise DataError(f"{png}: its depth map {depth.name} is missing from {input_dir}")
        images: dict[Condition, Path] = {input_cond: png}
        if target_dir is not None:
            target = target_dir / png.name
            if not target.is_file():
                raise DataError(f"{png}: its ground truth {target} is missing")
            images[target_cond] = target
        scenes.append(Scene(scene_id, depth, images))
    _warn_about_orphan_depths(input_dir)
    return scenes


def scan_full(folder: Path) -> dict[str, Scene]:
    """Scenes of a folder in the full VIDIT naming, by id (numeric order), each with every condition found.

    Raises :class:`DataError` for a missing folder, a folder with no full-naming images, a name whose
    temperature or direction is not a VIDIT condition, and an image whose scene has no ``Image{NNN}.npy``.
    """
    folder = Path(folder)
    expected = "full VIDIT naming, Image{NNN}_{TTTT}_{D}.png images plus one Image{NNN}.npy depth per scene"
    _require_folder(folder, expected)
    found: dict[str, dict[Condition, Path]] = {}
    for png in _pngs(folder):
        match = FULL_NAME.match(png.name)
        if not match:
            log.warning("%s: ignored, not a full VIDIT name (expected e.g. Image042_6500_NE.png)", png)
            continue
        try:
            condition = Condition.parse(f"{match[2]}_{match[3]}")
        except DataError as exc:
            raise DataError(f"{png}: {exc}") from None
        found.setdefault(match[1], {})[condition] = png
    scenes: dict[str, Scene] = {}
    for scene_id in sorted(found, key=scene_sort_key):
        depth = folder / f"{scene_id}.npy"
        if not depth.is_file():
            first = next(iter(found[scene_id].values()))
            raise DataError(f"{first}: its scene's depth map {depth.name} is missing from {folder}")
        scenes[scene_id] = Scene(scene_id, depth, dict(sorted(found[scene_id].items())))
    if not scenes:
        raise DataError(f"{folder}: no images found (expected {expected})")
    return scenes
