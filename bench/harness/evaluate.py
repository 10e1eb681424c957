"""Evaluation shared by every adapter: predictions, per-image metrics and split means."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from relight_base.atomic import atomic_write_bytes
from relight_base.run_folder import prediction_png
from bench.harness.metrics import LPIPSMetric, score_batch
from datasets.io import encode_rgb_png, to_uint8_image

log = logging.getLogger(__name__)

METRICS = ("psnr", "ssim", "lpips", "mps")


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    dataset,
    *,
    device: torch.device,
    lpips_metric: LPIPSMetric | None,
    batch_size: int = 4,
    pred_dir: Path | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> pd.DataFrame:
    """Run ``model`` over ``dataset``; return one row per image (``scene_id`` + metrics).

    ``model`` is normally ``bench.prepare_for_inference(trained)``; inputs are passed channels_last.

    Samples without a target (e.g. VIDIT's test split) get predictions but NaN metrics.
    Predictions are written as 8-bit RGB PNGs ``pred_dir/<scene_id>.png`` (atomically) when given.
    """
    from datasets.dataset import make_loader

    model.eval()
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, workers=0)
    rows: list[dict] = []
    for sample in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        rgb = sample["rgb"].to(device).contiguous(memory_format=torch.channels_last)
        depth = sample["depth"].to(device).contiguous(memory_format=torch.channels_last)
        pred = model(rgb, depth).float().clamp(0.0, 1.0)
        ids = list(sample["scene_id"])
        if "target" in sample:
            scores = score_batch(pred, sample["target"].to(device), lpips_metric)
        else:
            scores = {m: torch.full((len(ids),), math.nan) for m in METRICS}
        for i, scene_id in enumerate(ids):
            rows.append({"scene_id": scene_id, **{m: float(scores[m][i]) for m in METRICS}})
            if pred_dir is not None:
                atomic_write_bytes(prediction_png(pred_dir, scene_id), encode_rgb_png(to_uint8_image(pred[i])))
    return pd.DataFrame(rows, columns=["scene_id", *METRICS])


def summarise(per_image: pd.DataFrame) -> dict[str, float]:
    """Split means of each metric (NaN when the split has no ground truth or no LPIPS)."""
    return {m: float(per_image[m].mean()) if len(per_image) and per_image[m].notna().any() else math.nan for m in METRICS}
