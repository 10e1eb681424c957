"""Validation during training (``train.val_every``): held-out scores, and keeping the best weights as ``best.pt``.

The held-out scenes come from the training split (:mod:`datasets.holdout`), never from a split the tables
report.  Scoring follows the run's own conventions (8-bit rounding, SSIM kind), without LPIPS (too slow to
run every few steps).  It touches no random number generator, so a run validates and resumes bitwise alike
whether or not validation ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.harness.evaluate import uint8_batch
from bench.harness.metrics import score_batch
from datasets.io import to_uint8_image

LOG_COLUMNS = {"psnr": "holdout_psnr", "ssim": "holdout_ssim"}  # metric -> its column in train_log.csv
EMA_LOG_PREFIX = "ema_"  # the moving average's held-out columns: ema_holdout_psnr, ema_holdout_ssim


@dataclass(frozen=True)
class Validation:
    """How one training run validates: on what, how often, by which metric, and where the best weights go."""

    dataset: object  # a RelightingDataset of held-out (input, depth, target) pairs
    every: int  # validate after every ``every`` steps and after the last
    metric: str = "psnr"  # "psnr" or "ssim": higher is better
    best_path: Path | None = None  # rank 0 writes the best weights here (a state dict, like model.pt)
    batch_size: int = 4
    quantize: bool = True
    ssim_kind: str = "gaussian"
    ema_best_path: Path | None = None  # with train.ema_decay: the moving average's best weights (ema_best.pt)

    def due(self, step: int, last: int) -> bool:
        """Whether to validate after optimisation step ``step`` (1-based) of ``last``."""
        return step == last or (self.every > 0 and step % self.every == 0)


@torch.inference_mode()
def held_out_scores(model: nn.Module, validation: Validation, device: torch.device) -> dict[str, float]:
    """Mean PSNR and SSIM of ``model`` over the held-out pairs: ``{"holdout_psnr": dB, "holdout_ssim": [0,1]}``.

    The model is run in eval mode and put back in the mode it was in.  Inputs: ``rgb`` (B,3,H,W) and
    ``depth`` (B,1,H,W) floats in [0,1]; predictions clamped to [0,1] (and rounded to 8 bits with
    ``validation.quantize``) before scoring against the target.
    """
    data, was_training = validation.dataset, model.training
    model.eval()
    totals = {"psnr": 0.0, "ssim": 0.0}
    try:
        for start in range(0, len(data), validation.batch_size):
            samples = [data[i] for i in range(start, min(start + validation.batch_size, len(data)))]
            rgb, depth, target = (torch.stack([s[k] for s in samples]).to(device) for k in ("rgb", "depth", "target"))
            pred = model(rgb, depth).float().clamp(0.0, 1.0)
            if validation.quantize:
                pred = uint8_batch([to_uint8_image(p) for p in pred], device)
            scores = score_batch(pred, target, None, ssim_kind=validation.ssim_kind)
            for metric in totals:
                totals[metric] += float(scores[metric].sum())
    finally:
        model.train(was_training)
    return {LOG_COLUMNS[m]: total / max(1, len(data)) for m, total in totals.items()}


@torch.inference_mode()
def held_out_predictions(model: nn.Module, validation: Validation, device: torch.device,
                         count: int = 3) -> torch.Tensor:
    """The first ``count`` held-out pairs side by side, input | prediction | target: (N,3,H,3W) floats in [0,1].

    Run in eval mode (the model is put back in the mode it was in); the prediction is clamped to [0,1].  Like
    :func:`held_out_scores` it touches no random number generator.
    """
    data, was_training = validation.dataset, model.training
    samples = [data[i] for i in range(min(count, len(data)))]
    rgb, depth, target = (torch.stack([s[k] for s in samples]).to(device) for k in ("rgb", "depth", "target"))
    model.eval()
    try:
        pred = model(rgb, depth).float().clamp(0.0, 1.0)
    finally:
        model.train(was_training)
    return torch.cat([rgb.float(), pred, target.float()], dim=3).cpu()


@dataclass
class BestSoFar:
    """The best held-out score seen so far and the step it was reached at (step 0: none yet)."""

    step: int = 0
    value: float = -math.inf

    def offer(self, step: int, value: float) -> bool:
        """Record ``value`` at ``step`` if it beats the best so far (strictly; NaN never does); True if it did."""
        if math.isnan(value) or value <= self.value:
            return False
        self.step, self.value = step, value
        return True

    def state(self) -> dict:
        return {"step": self.step, "value": self.value}

    @classmethod
    def from_state(cls, state: dict | None) -> BestSoFar:
        return cls(**state) if state else cls()

