"""The paper's training objective (section 3.4): Charbonnier + SSIM + VGG19 perceptual loss.

``L = l1 * charbonnier + l2 * L_ssim + l3 * perceptual`` with the paper's weights
1, 1.1 and 0.1 by default.  Inputs are ``(B,3,H,W)`` images in [0,1] (the model
output is not clamped for the loss, so gradients flow everywhere).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim as _ssim
from torch import nn
from torchvision.models.vgg import cfgs as _vgg_cfgs, make_layers

from bench.harness.config import LossConfig
from models.normalization import IMAGENET_MEAN, IMAGENET_STD, normalize
from models.weights import Pretrained, WeightsChoice, load_into, load_state_dict, resolve_weights

log = logging.getLogger(__name__)


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean of ``sqrt((pred - target)^2 + eps^2)`` over all elements (paper eq. 1). Scalar."""
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, form: str = "neg") -> torch.Tensor:
    """SSIM loss (paper eq. 2): ``-SSIM`` (``form="neg"``, the paper) or ``1 - SSIM`` (``"one_minus"``).

    SSIM is pytorch-msssim's: 11-tap Gaussian window, sigma 1.5, data_range 1, averaged over the batch.
    Images need sides of at least 11 pixels.
    """
    value = _ssim(pred.float(), target.float(), data_range=1.0, size_average=True)
    if form == "neg":
        return -value
    if form == "one_minus":
        return 1.0 - value
    raise ValueError(f"ssim loss form must be 'neg' or 'one_minus', not {form!r}")


class VGGPerceptualLoss(nn.Module):
    """L1 distance between VGG19 conv3_3 activations (after its ReLU) of two images (paper eq. 3).

    Inputs ``(B,3,H,W)`` in [0,1] are ImageNet-normalised first. The VGG is frozen.
    """

    def __init__(self, weights: WeightsChoice):
        super().__init__()
        net = nn.Module()
        net.features = make_layers(_vgg_cfgs["E"])[:16]  # VGG19's conv1_1 ... conv3_3 + ReLU (no classifier)
        if weights.path is not None:
            load_into(net, load_state_dict(weights.path), source=str(weights.path))
        self.features = net.features.eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VGGPerceptualLoss":
        super().train(mode)
        self.features.eval()  # always frozen
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        both = torch.cat([pred, target], dim=0)
        feats = self.features(normalize(both, self.mean, self.std))
        fp, ft = feats.chunk(2, dim=0)
        return F.l1_loss(fp, ft.detach())


class RelightingLoss(nn.Module):
    """``l1 * charbonnier + l2 * ssim_loss + l3 * perceptual`` (paper eq. 4).

    If the VGG19 weights are not available the perceptual term is dropped (never computed on a
    random VGG); :attr:`perceptual_status` says what happened and is recorded with the results.
    """

    def __init__(self, weights: LossConfig | None = None, vgg_pretrained: Pretrained = "auto"):
        """``weights``: the config's ``loss`` section (default: the paper's 1, 1.1, 0.1, eps 1e-3, -SSIM)."""
        super().__init__()
        weights = weights if weights is not None else LossConfig()
        self.w = weights
        self.perceptual: VGGPerceptualLoss | None = None
        if weights.perceptual > 0:
            choice = resolve_weights("vgg19", vgg_pretrained, key="weights.perceptual",
                                     fallback="the perceptual loss term is dropped (never computed with a random VGG19)")
            if choice.pretrained:
                self.perceptual = VGGPerceptualLoss(choice)
                self.perceptual_status = f"VGG19 conv3_3 from {choice.path}"
            else:
                log.debug("perceptual loss dropped: %s", choice.describe())
                self.perceptual_status = f"dropped ({choice.reason})"
        else:
            self.perceptual_status = "off (weight 0)"

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns the total loss (scalar tensor) and each term's value for logging."""
        pred32, target32 = pred.float(), target.float()
        cha = charbonnier_loss(pred32, target32, self.w.charbonnier_eps)
        total = self.w.charbonnier * cha
        terms = {"charbonnier": cha}
        if self.w.ssim:
            s = ssim_loss(pred32, target32, self.w.ssim_form)
            total = total + self.w.ssim * s
            terms["ssim"] = s
        if self.perceptual is not None:
            p = self.perceptual(pred32, target32)
            total = total + self.w.perceptual * p
            terms["perceptual"] = p
        return total, {k: float(v.detach()) for k, v in terms.items()}
