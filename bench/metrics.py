"""Image-quality metrics of the NTIRE 2021 relighting challenge: PSNR, SSIM, LPIPS and MPS.

Conventions (written into every results file, see :data:`CONVENTIONS`):

* predictions are clamped to [0,1] before scoring; images are ``(B,3,H,W)`` float in [0,1];
* PSNR: per image, data_range 1, ``10 log10(1 / MSE)`` over all pixels and channels, then averaged;
* SSIM: pytorch-msssim, 11-tap Gaussian window sigma 1.5, on RGB, data_range 1, per image;
* LPIPS: lpips v0.1 with the AlexNet trunk, inputs mapped to [-1,1]; needs torchvision's ImageNet
  AlexNet weights on disk, otherwise LPIPS and MPS are reported missing (NaN, with the reason) and
  never computed on a random trunk;
* MPS = 0.5 * (SSIM + 1 - LPIPS), the challenge's ranking score.
"""

from __future__ import annotations

import logging
import math
import warnings

import torch
from pytorch_msssim import ssim as _ssim

from bench.errors import ConfigError
from bench.weights import Pretrained, WeightsChoice, load_state_dict, resolve_weights

log = logging.getLogger(__name__)

CONVENTIONS = {
    "clamp": "predictions clamped to [0,1] before scoring",
    "psnr": "per image, data_range 1, 10*log10(1/MSE) over pixels and RGB channels, then averaged",
    "ssim": "pytorch-msssim ssim, 11-tap Gaussian window sigma 1.5, RGB, data_range 1, per image then averaged",
    "lpips": "lpips v0.1, AlexNet trunk (torchvision ImageNet weights), inputs scaled to [-1,1]",
    "mps": "0.5 * (SSIM + 1 - LPIPS)",
}


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB, ``(B,)``; identical images give ``inf``."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM, ``(B,)`` (pytorch-msssim, Gaussian 11/1.5, data_range 1). Sides must be >= 11 px."""
    return _ssim(pred.float(), target.float(), data_range=1.0, size_average=False)


def mps(ssim_value: float | torch.Tensor, lpips_value: float | torch.Tensor) -> float | torch.Tensor:
    """The challenge's Mean Perceptual Score: ``0.5 * (ssim + 1 - lpips)``."""
    return 0.5 * (ssim_value + 1.0 - lpips_value)


class LPIPSMetric:
    """LPIPS v0.1 (AlexNet trunk) with the trunk's ImageNet weights taken from local disk only.

    ``available`` is False (and :meth:`__call__` returns NaNs) when the AlexNet weights are missing;
    ``status`` says why.  A trunk ``state_dict`` path may be given for tests and offline machines.
    """

    def __init__(self, pretrained: Pretrained = "auto", device: torch.device | str = "cpu"):
        choice = resolve_weights("alexnet", pretrained, key="weights.lpips",
                                 fallback="LPIPS and MPS will be reported as n/a (never computed with a random AlexNet)")
        self.choice: WeightsChoice = choice
        self.model = None
        if not choice.pretrained:
            self.status = f"LPIPS not computed: {choice.reason}"
            return
        import lpips

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        trunk = load_state_dict(choice.path)
        mapped = {}
        for key, value in trunk.items():  # torchvision "features.<i>.*" -> lpips "net.slice<k>.<i>.*"
            if key.startswith("features."):
                _, index, rest = key.split(".", 2)
                mapped[_lpips_slice(int(index)) + rest] = value
        own = model.state_dict()
        trunk_keys = [k for k in own if k.startswith("net.")]
        missing = [k for k in trunk_keys if k not in mapped]
        if missing:
            raise ConfigError(f"weights.lpips: {choice.path} is not a torchvision AlexNet checkpoint (lacks {missing[:3]})")
        model.load_state_dict({**own, **{k: mapped[k] for k in trunk_keys}})
        self.model = model.eval().to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.status = f"AlexNet trunk from {choice.path}"

    @property
    def available(self) -> bool:
        return self.model is not None

    @torch.inference_mode()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS ``(B,)``; NaN when unavailable. Inputs in [0,1]."""
        if self.model is None:
            return torch.full((pred.shape[0],), math.nan)
        device = next(self.model.parameters()).device
        out = self.model(pred.float().to(device), target.float().to(device), normalize=True)
        return out.flatten().cpu()


def _lpips_slice(index: int) -> str:
    """lpips's AlexNet splits ``features`` into 5 slices at indices 2, 5, 8, 10, 12."""
    for k, end in enumerate((2, 5, 8, 10, 12), start=1):
        if index < end:
            return f"net.slice{k}.{index}."
    raise ValueError(f"AlexNet feature index {index} is outside lpips's trunk")


def score_batch(pred: torch.Tensor, target: torch.Tensor, lpips_metric: LPIPSMetric | None = None) -> dict[str, torch.Tensor]:
    """All metrics for a batch: dict of ``(B,)`` tensors ``psnr, ssim, lpips, mps`` (pred clamped first)."""
    pred = pred.detach().float().clamp(0.0, 1.0)
    target = target.detach().float()
    out = {"psnr": psnr(pred, target).cpu(), "ssim": ssim(pred, target).cpu()}
    lp = lpips_metric(pred, target) if lpips_metric is not None else torch.full((pred.shape[0],), math.nan)
    out["lpips"] = lp
    out["mps"] = mps(out["ssim"], lp)
    return out
