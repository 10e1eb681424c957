"""Image-quality metrics of the NTIRE 2021 relighting challenge: PSNR, SSIM, LPIPS and MPS.

Conventions (written into every results file, see :func:`conventions`):

* predictions are clamped to [0,1] before scoring; images are ``(B,3,H,W)`` float in [0,1];
  by default (``eval.quantize``) the caller first rounds them to 8 bits exactly as the PNG written to
  ``predictions/`` (:mod:`bench.harness.evaluate`), so the scores are those of the written files;
* PSNR: per image, data_range 1, ``10 log10(1 / MSE)`` over all pixels and channels, then averaged;
* SSIM, one of two conventions (``eval.ssim``):

  - ``gaussian``: pytorch-msssim's definition (11-tap Gaussian window sigma 1.5, on RGB, data_range 1),
    per image, computed in one stacked depthwise pass (:func:`ssim`, tested equal to ``pytorch_msssim.ssim``);
  - ``uniform7``: scikit-image's ``structural_similarity`` default on the 8-bit image (7x7 uniform
    window, sample covariance, data_range 255, border crop, channel mean) (:func:`ssim_uniform7`,
    tested equal to scikit-image);

* LPIPS: lpips v0.1 with the AlexNet trunk, inputs mapped to [-1,1]; needs torchvision's ImageNet
  AlexNet weights on disk, otherwise LPIPS and MPS are reported missing (NaN, with the reason) and
  never computed on a random trunk;
* MPS = 0.5 * (SSIM + 1 - LPIPS), the challenge's ranking score, with whichever SSIM was chosen.
"""

from __future__ import annotations

import logging
import math
import warnings

import torch
import torch.nn.functional as F

from relight_base.errors import ConfigError
from models.weights import Pretrained, WeightsChoice, load_state_dict, resolve_weights

log = logging.getLogger(__name__)

SSIM_KINDS = ("gaussian", "uniform7")

_SSIM_WORDS = {
    "gaussian": "pytorch-msssim's SSIM (11-tap Gaussian window sigma 1.5, no padding, K1 0.01, K2 0.03), RGB, "
                "data_range 1, per image then averaged; computed by bench.harness.metrics.ssim, tested equal to "
                "pytorch_msssim.ssim",
    "uniform7": "scikit-image's structural_similarity default on the 8-bit RGB image (7x7 uniform window, sample "
                "covariance N/(N-1), K1 0.01, K2 0.03, data_range 255, mean over the map after a 3-pixel border "
                "crop, then over channels), per image then averaged; computed by "
                "bench.harness.metrics.ssim_uniform7, tested equal to skimage.metrics.structural_similarity",
}


def check_ssim_kind(ssim_kind: str, key: str = "eval.ssim") -> str:
    """``ssim_kind`` if it names a known SSIM convention, else a :class:`ConfigError` naming ``key``."""
    if ssim_kind not in SSIM_KINDS:
        raise ConfigError(f"{key}: unknown SSIM convention {ssim_kind!r}; expected one of {', '.join(SSIM_KINDS)}")
    return ssim_kind


def conventions(quantize: bool, ssim_kind: str) -> dict[str, str]:
    """How the metrics were computed, in words (``results.json``'s ``metric_conventions``, the report)."""
    check_ssim_kind(ssim_kind)
    rounding = ("predictions rounded to 8 bits (round(255 * clamp(x, 0, 1))) exactly as the PNGs written to "
                "predictions/, then divided by 255, before every metric (the challenge scored the submitted PNGs)"
                if quantize else "predictions scored as clamped floats, not rounded to 8 bits")
    return {
        "clamp": "predictions clamped to [0,1] before scoring",
        "quantize": rounding,
        "psnr": "per image, data_range 1, 10*log10(1/MSE) over pixels and RGB channels, then averaged",
        "ssim": _SSIM_WORDS[ssim_kind],
        "lpips": "lpips v0.1, AlexNet trunk (torchvision ImageNet weights), inputs scaled to [-1,1]",
        "mps": f"0.5 * (SSIM + 1 - LPIPS), with the {ssim_kind} SSIM",
    }




def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB, ``(B,)``; identical images give ``inf``."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """The normalised 1-D Gaussian taps ``(size,)`` centred on ``size // 2`` (pytorch-msssim's window)."""
    coords = torch.arange(size, dtype=dtype, device=device) - size // 2
    taps = torch.exp(-(coords**2) / (2 * sigma**2))
    return taps / taps.sum()


def _blur_valid(maps: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur without padding, vertical then horizontal, every channel on its own.

    maps: (B,C,H,W) -> (B,C,H-k+1,W-k+1).  Depthwise convs on channels_last tensors (the fast layout
    for them on CPU).
    """
    c, k = maps.shape[1], taps.numel()
    maps = maps.contiguous(memory_format=torch.channels_last)
    vertical = taps.view(1, 1, k, 1).expand(c, 1, k, 1).contiguous()
    horizontal = taps.view(1, 1, 1, k).expand(c, 1, 1, k).contiguous()
    return F.conv2d(F.conv2d(maps, vertical, groups=c), horizontal, groups=c)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM ``(B,)`` of images ``(B,C,H,W)`` in [0,1] (sides >= 11 px).

    pytorch-msssim's definition (Gaussian window 11 / sigma 1.5 without padding, K1 0.01, K2 0.03,
    data_range 1, mean over pixels then channels), with every map in channels_last (depthwise
    convolutions and the element-wise work are fastest there on CPU); equal to
    ``pytorch_msssim.ssim(..., size_average=False)`` to float rounding (tested).
    """
    x, y = pred.float(), target.float()
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {tuple(x.shape[-2:])}")
    taps = gaussian_window(device=x.device, dtype=x.dtype)
    x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    mu_x, mu_y, xx, yy, xy = (_blur_valid(m, taps) for m in (x, y, x * x, y * y, x * y))
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    contrast_structure = (2 * (xy - mu_xy) + c2) / ((xx - mu_xx) + (yy - mu_yy) + c2)
    luminance = (2 * mu_xy + c1) / (mu_xx + mu_yy + c1)
    return (luminance * contrast_structure).flatten(2).mean(dim=-1).mean(dim=1)


UNIFORM_WINDOW = 7


def ssim_uniform7(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM ``(B,)`` as ``skimage.metrics.structural_similarity`` computes it on 8-bit RGB by default.

    ``pred``, ``target``: ``(B,C,H,W)`` in [0,1] (sides >= 7 px), rounded to 8-bit levels 0..255 first.
    7x7 uniform window, sample covariance (N/(N-1), N = 49), K1 0.01, K2 0.03, data_range 255; the map is
    averaged over the valid region of the window (a stride-1 box mean without padding: exactly scikit-image's
    map after its 3-pixel border crop, so its padding never enters), then over channels.  Computed in float64
    (float32 on Apple MPS, which lacks it).
    """
    k = UNIFORM_WINDOW
    if min(pred.shape[-2:]) < k:
        raise ValueError(f"uniform7 SSIM needs images of at least {k}x{k} pixels, got {tuple(pred.shape[-2:])}")
    dtype = torch.float32 if pred.device.type == "mps" else torch.float64
    x, y = ((t.detach().to(dtype).clamp(0.0, 1.0) * 255.0).round() for t in (pred, target))
    mu_x, mu_y, xx, yy, xy = (F.avg_pool2d(m, kernel_size=k, stride=1) for m in (x, y, x * x, y * y, x * y))
    cov_norm = k * k / (k * k - 1.0)
    var_x, var_y, cov_xy = (cov_norm * (xx - mu_x * mu_x), cov_norm * (yy - mu_y * mu_y),
                            cov_norm * (xy - mu_x * mu_y))
    c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(2).mean(dim=-1).mean(dim=1).float()


def mps(ssim_value: float | torch.Tensor, lpips_value: float | torch.Tensor) -> float | torch.Tensor:
    """The challenge's Mean Perceptual Score: ``0.5 * (ssim + 1 - lpips)``."""
    return 0.5 * (ssim_value + 1.0 - lpips_value)


class LPIPSMetric:
    """LPIPS v0.1 (AlexNet trunk) with the trunk's ImageNet weights taken from local disk only.

    ``available`` is False (and :meth:`__call__` returns NaNs) when the AlexNet weights are missing;
    ``status`` says why.  A trunk ``state_dict`` path may be given for tests and offline machines.  ``key`` is
    the setting errors name (the config key, or a command-line flag).
    """

    def __init__(self, pretrained: Pretrained = "auto", device: torch.device | str = "cpu", key: str = "weights.lpips"):
        choice = resolve_weights("alexnet", pretrained, key=key,
                                 fallback="LPIPS and MPS will be reported as n/a (never computed with a random AlexNet)")
        self.choice: WeightsChoice = choice
        self.model = None
        if not choice.pretrained:
            self.status = f"LPIPS not computed: {choice.reason}"
            return
        model = _untrained_lpips()
        trunk = load_state_dict(choice.path)
        mapped = {}
        for name, value in trunk.items():  # torchvision "features.<i>.*" -> lpips "net.slice<k>.<i>.*"
            if name.startswith("features."):
                _, index, rest = name.split(".", 2)
                mapped[_lpips_slice(int(index)) + rest] = value
        own = model.state_dict()
        trunk_keys = [k for k in own if k.startswith("net.")]
        missing = [k for k in trunk_keys if k not in mapped]
        if missing:
            raise ConfigError(f"{key}: {choice.path} is not a torchvision AlexNet checkpoint (lacks {missing[:3]})")
        model.load_state_dict({**own, **{k: mapped[k] for k in trunk_keys}})
        self._install(model, device)
        self.status = f"AlexNet trunk from {choice.path}"

    def _install(self, model, device: torch.device | str) -> None:
        """Frozen, eval mode, channels_last (the fast layout for its convolutions on CPU and CUDA)."""
        self.model = model.eval().to(device).to(memory_format=torch.channels_last)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @classmethod
    def timing_only(cls, device: torch.device | str = "cpu") -> "LPIPSMetric":
        """The same network with an untrained AlexNet trunk: for timing the metric, never for reporting values."""
        metric = cls(pretrained=False, device=device)
        metric._install(_untrained_lpips(), device)
        metric.status = "timing only: untrained AlexNet trunk (values meaningless, never reported)"
        return metric

    @property
    def available(self) -> bool:
        return self.model is not None

    @torch.inference_mode()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS ``(B,)``; NaN when unavailable. Inputs in [0,1]."""
        if self.model is None:
            return torch.full((pred.shape[0],), math.nan)
        device = next(self.model.parameters()).device
        pred, target = (t.float().to(device).contiguous(memory_format=torch.channels_last) for t in (pred, target))
        return self.model(pred, target, normalize=True).flatten().cpu()


def _untrained_lpips():
    """``lpips.LPIPS`` v0.1 with the AlexNet trunk randomly initialised (lpips's own linear heads loaded)."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)


def _lpips_slice(index: int) -> str:
    """lpips's AlexNet splits ``features`` into 5 slices at indices 2, 5, 8, 10, 12."""
    for k, end in enumerate((2, 5, 8, 10, 12), start=1):
        if index < end:
            return f"net.slice{k}.{index}."
    raise ValueError(f"AlexNet feature index {index} is outside lpips's trunk")


def score_batch(pred: torch.Tensor, target: torch.Tensor, lpips_metric: LPIPSMetric | None = None, *,
                ssim_kind: str = "gaussian") -> dict[str, torch.Tensor]:
    """All metrics for a batch: dict of ``(B,)`` CPU tensors ``psnr, ssim, lpips, mps`` (pred clamped first).

    ``pred``, ``target``: ``(B,3,H,W)`` in [0,1]; ``ssim_kind`` is one of :data:`SSIM_KINDS` and is also the
    SSIM inside MPS.  Rounding to 8 bits, when wanted, is the caller's (it must match the written PNGs).
    """
    ssim_of = {"gaussian": ssim, "uniform7": ssim_uniform7}[check_ssim_kind(ssim_kind)]
    pred = pred.detach().float().clamp(0.0, 1.0)
    target = target.detach().float()
    out = {"psnr": psnr(pred, target).cpu(), "ssim": ssim_of(pred, target).cpu()}
    lp = lpips_metric(pred, target) if lpips_metric is not None else torch.full((pred.shape[0],), math.nan)
    out["lpips"] = lp
    out["mps"] = mps(out["ssim"], lp)
    return out
