"""Scoring a folder of relit PNGs against a folder of ground truth with the harness's metric code.

``bench score`` uses it for images produced outside this harness (e.g. the published outputs of a method
without an adapter).  Every ``ImageNNN.png`` of the prediction folder is paired with the ground truth of the
same scene id, both decoded as 8-bit RGB (an opaque alpha channel, as VIDIT's RGBA files carry, is dropped; a
non-opaque one is an error), optionally resized and centre-cropped as the data loader does, and scored by
:func:`bench.harness.metrics.score_batch` on ``level / 255`` exactly as a run scores its written predictions.
Split means come with a bootstrap confidence interval over images, computed by the report's
:func:`reports.statistics.mean_interval`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from bench.harness.evaluate import METRICS, uint8_batch
from bench.harness.metrics import SSIM_WINDOW, UNIFORM_WINDOW, LPIPSMetric, check_ssim_kind, score_batch
from datasets.dataset import resize_and_crop
from datasets.errors import DataError
from datasets.io import read_rgb
from datasets.layout import TRACK1_NAME, scene_sort_key
from reports.statistics import BootstrapSettings, Interval, mean_interval

log = logging.getLogger(__name__)

#: The smallest side each SSIM convention can score (its window).
MIN_SIDE = {"gaussian": SSIM_WINDOW, "uniform7": UNIFORM_WINDOW}


@dataclass(frozen=True)
class ImagePair:
    """One scene: the prediction PNG and its ground-truth PNG."""

    scene_id: str
    prediction: Path
    ground_truth: Path


def pair_folders(pred_dir: Path, gt_dir: Path) -> list[ImagePair]:
    """Every ``ImageNNN.png`` of ``pred_dir`` with the same scene's PNG in ``gt_dir``, in scene order.

    A missing or empty folder, or a prediction without ground truth, is a :class:`DataError` naming it.
    Files of ``pred_dir`` not named ``ImageNNN.png`` are ignored; ground truth without prediction is unused.
    """
    predictions = _scene_pngs(pred_dir, "prediction")
    if not predictions:
        raise DataError(f"{pred_dir}: no prediction images found (expected VIDIT-named PNGs, ImageNNN.png)")
    truths = _scene_pngs(gt_dir, "ground-truth")
    pairs = []
    for scene_id in sorted(predictions, key=scene_sort_key):
        if scene_id not in truths:
            raise DataError(f"{predictions[scene_id]}: its ground truth {gt_dir / predictions[scene_id].name} is missing")
        pairs.append(ImagePair(scene_id, predictions[scene_id], truths[scene_id]))
    return pairs


def _scene_pngs(folder: Path, role: str) -> dict[str, Path]:
    """``scene_id -> path`` of the ``ImageNNN.png`` files in ``folder`` (a DataError if it is not a folder)."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"{role} folder {folder} {what}; expected a folder of ImageNNN.png images")
    found: dict[str, Path] = {}
    ignored = []
    for path in sorted(folder.iterdir()):
        match = TRACK1_NAME.match(path.name)
        if match and path.is_file():
            if match.group(1) in found:
                raise DataError(f"{path}: scene {match.group(1)} appears twice in {folder} (also {found[match.group(1)].name})")
            found[match.group(1)] = path
        elif path.suffix.lower() == ".png":
            ignored.append(path.name)
    if ignored:
        log.warning("%s: %d PNG file(s) ignored, not named ImageNNN.png (e.g. %s)", folder, len(ignored), ignored[0])
    return found


def read_opaque_rgb(path: Path, size: int | None = None) -> torch.Tensor:
    """Decode a PNG as ``(3, H, W) uint8`` RGB; resized and centre-cropped to ``size`` as the data loader does.

    An alpha channel (or a transparent colour) must be fully opaque (255 everywhere) and is dropped; otherwise a
    :class:`DataError` naming the file.  Unreadable or 16-bit files are refused by :func:`datasets.io.read_rgb`.
    """
    rgb = read_rgb(path)
    with Image.open(path) as img:
        if "A" in img.getbands() or "transparency" in img.info:
            alpha = np.asarray(img.convert("RGBA").getchannel("A"))
            see_through = int(np.count_nonzero(alpha < 255))
            if see_through:
                raise DataError(f"{path}: its alpha channel is not opaque ({see_through} of {alpha.size} pixels below "
                                "255); expected RGB or RGBA with alpha 255 everywhere (VIDIT's format)")
    return resize_and_crop(torch.from_numpy(rgb).permute(2, 0, 1), size).contiguous()


def load_pair(pair: ImagePair, size: int | None, ssim_kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The prediction and ground truth of ``pair`` as ``(3, H, W) uint8``, checked to match and to be scorable."""
    pred, truth = read_opaque_rgb(pair.prediction, size), read_opaque_rgb(pair.ground_truth, size)
    if pred.shape != truth.shape:
        raise DataError(
            f"{pair.prediction} is {pred.shape[2]}x{pred.shape[1]} (width x height) but its ground truth "
            f"{pair.ground_truth} is {truth.shape[2]}x{truth.shape[1]}; pass --size S to resize and centre-crop "
            "both to S x S as the data loader does"
        )
    smallest = MIN_SIDE[ssim_kind]
    if min(pred.shape[1:]) < smallest:
        raise DataError(f"{pair.prediction}: {pred.shape[2]}x{pred.shape[1]} is too small for the {ssim_kind} SSIM "
                        f"(it needs at least {smallest} pixels per side)")
    return pred, truth


@torch.inference_mode()
def score_folders(pred_dir: Path, gt_dir: Path, *, lpips_metric: LPIPSMetric | None, ssim_kind: str = "gaussian",
                  size: int | None = None, device: torch.device | str = "cpu") -> pd.DataFrame:
    """One row per scene (``scene_id, psnr, ssim, lpips, mps``; NaN where unknown), in scene order.

    Each image is scored on its own (images may differ in size from scene to scene).  Every pair is read and
    checked before the first is scored, so a bad file fails fast.
    """
    check_ssim_kind(ssim_kind, key="--ssim")
    pairs = pair_folders(Path(pred_dir), Path(gt_dir))
    loaded = [load_pair(pair, size, ssim_kind) for pair in pairs]
    rows = []
    for pair, (pred, truth) in zip(pairs, loaded):
        scored, target = (uint8_batch([image.permute(1, 2, 0)], device) for image in (pred, truth))
        scores = score_batch(scored, target, lpips_metric, ssim_kind=ssim_kind)
        rows.append({"scene_id": pair.scene_id, **{m: float(scores[m][0]) for m in METRICS}})
    log.info("scored %d images of %s against %s", len(rows), pred_dir, gt_dir)
    return pd.DataFrame(rows, columns=["scene_id", *METRICS])


def metric_intervals(per_image: pd.DataFrame, settings: BootstrapSettings) -> dict[str, Interval]:
    """Each metric's mean over the images of ``per_image`` with its bootstrap CI (:func:`reports.statistics.mean_interval`).

    The same function and settings as the report's, so a scored folder and a run give the same interval for the
    same per-image values.  Degenerate columns (LPIPS not computed, one image, an infinite PSNR) get an
    :class:`Interval` with NaN bounds and a ``reason``.
    """
    return {metric: mean_interval(per_image[metric].to_numpy(dtype=np.float64), settings, "image") for metric in METRICS}
