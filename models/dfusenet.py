"""DFuseNet: team DeepBlueAI's guided depth-fusion network (best PSNR of NTIRE 2021 Track 1), as an adapter.

Re-implemented from reading the team's repository ``Qidian213/NTIRE2021_Depth_Guided_Image_Relighting``:
``Deploy/DFuseNet.py`` (the network their Track 1 script runs), ``Models/DFuseNet.py`` (the same network
returning the input's lighting logits too, for training), ``Track1_Test_Ensemble.py`` (how Track 1 was run),
``Dataset/LdDataset.py`` (lighting labels) and ``Losses/FocalLoss.py``.  The repository has no licence file, so
nothing is copied: the architecture (facts) is rebuilt here.

Structure (``H x W`` a multiple of 16, after padding; widths 48, 96, 192, 384, 768)::

    the same encoder (shared weights) runs on the input and on the guide (an RGB-D image under the target light):
      rgb (B,3) -> BasicBlock(3->48, BN);  depth (B,1) -> BasicBlock(1->48, BN)
      4 levels, w = 48, 96, 192, 384:   skip_i = BasicBlock(w->w, BN)(rgb)            (input only)
                                        rgb   = Dblock_i(maxpool(rgb + depth))         w -> 2w
                                        depth = Dblock_depth_i(maxpool(depth))         w -> 2w
      bottleneck: rgb + depth (768 @H/16)
    lighting head (weights shared for input and guide): spatial mean of channels 0:576 -> 1x1 576->256, PReLU,
      1x1 256->8 direction logits; of channels 576:768 -> 1x1 192->256, PReLU, 1x1 256->5 temperature logits
    the guide's logits -> 1x1 8->256, PReLU, 1x1 256->576, ReLU and 1x1 5->256, PReLU, 1x1 256->192, ReLU,
      broadcast over H/16 x W/16: these 768 channels replace the input's whole bottleneck
    decoder (InstanceNorm BasicBlocks, nearest x2, concatenated skips):
      768 -> 384, up, ++skip_3 -> 768 -> 192, up, ++skip_2 -> 384 -> 96, up, ++skip_1 -> 192 -> 48, up,
      ++skip_0 -> 96 -> BasicBlock(96->48, BN) -> 1x1 48->3 -> sigmoid
    BasicBlock(i->o): [3x3 conv, norm, ReLU] x 2, plus the input (i == o) or a bias-free 1x1 conv of it
    Dblock(c->o): 3x3 convs at dilation 1, 3, 5 in a chain (each BN, ReLU); [x, d1, d2, d3] -> 1x1 4c->o, BN, ReLU

24,419,415 parameters.  The official module has 24,615,255: it also builds the 1x1 shortcut convolution of the
four BasicBlocks whose input and output widths are equal (48, 96, 192, 384 channels: 195,840 parameters), which
its forward never uses.  They are left out here (they would only be dead weights, and DDP refuses parameters that
get no gradient); every parameter the official forward uses is here, with its shape.

Adaptations to the harness
--------------------------
* **The guide is a fixed buffer.** The Track 1 model is the team's any-to-any network with a fixed guide: a
  training scene lit as the target (their ``Image014_4500_E.png`` and its depth).  Here ``guide_rgb`` and
  ``guide_depth`` are registered buffers (saved with the state dict), set by the harness with
  :meth:`DFuseNet.set_guide` from a training scene under ``data.target``: ``model_args: {guide_scene: ...}``
  names it (default: the team's ``Image014`` when it is a training scene, else the first training scene).  The
  run records which.  Until the harness sets one the guide is a flat mid-grey image with flat depth, which is
  what the contract tests use.  ``forward`` resizes the guide to the input's size (bilinear).  Guide features
  are recomputed in every forward: nothing is cached, so no stale features are ever reused across training
  steps (this also means the guide branch's 26.8 GFLOPs at 256x256 are counted and timed at inference).
* **Channel order**: their images are OpenCV BGR in [0, 1]; the adapter flips the harness's RGB to BGR on the
  way in and the prediction back to RGB on the way out.  Depth is ``normalized_depth`` in [0, 1], as theirs.
* **Any input size**: padded (replicate) to a multiple of 16, cropped back.
* **Not reproduced**: their inference resizes inputs to 512 px (and the output back to 1024) and averages two
  checkpoints (``Epoch_best108``, ``Epoch_best159``); the harness runs one model at the data's size.
* **Auxiliary terms** (:meth:`DFuseNet.auxiliary_terms`, added only with ``loss.adapter_terms: true``): their
  focal losses (gamma 2) on the direction and temperature logits of the input and of the guide, against the
  labels of ``data.input`` and ``data.target`` (their label order: directions E, N, NE, NW, S, SE, SW, W;
  temperatures 2500 ... 6500).  Their image losses (MSE + (1 - SSIM) + a gradient loss) are not used: every
  network trains on the harness's loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.padding import pad_to_multiple
from models.capabilities import RELIGHTING, Capabilities, Guide
from models.registry import register_model

BASE = 48
MULTIPLE = 16  # four max-pools
DIRECTIONS = ("E", "N", "NE", "NW", "S", "SE", "SW", "W")  # their dir2id order
TEMPERATURES = (2500, 3500, 4500, 5500, 6500)  # their tmp2id order
FOCAL_GAMMA = 2.0


def lighting_label(condition: str) -> tuple[int, int]:
    """``"4500_E"`` -> (direction index, temperature index) in the team's label order."""
    temperature, direction = condition.split("_")
    return DIRECTIONS.index(direction), TEMPERATURES.index(int(temperature))


def focal_loss(logits: torch.Tensor, label: int, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """``mean over the batch of -(1 - p_label)^gamma * log p_label`` for ``logits: (B,K)``."""
    log_p = F.log_softmax(logits, dim=1)[:, label]
    return (-(1 - log_p.exp()).pow(gamma) * log_p).mean()


class ConvNormReLU(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, norm: str):
        layer = nn.BatchNorm2d(out_channels) if norm == "batch" else nn.InstanceNorm2d(out_channels)
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1), layer, nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """Two [3x3 conv, norm, ReLU] plus the input, through a bias-free 1x1 conv when the widths differ."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(ConvNormReLU(in_channels, out_channels, norm),
                                  ConvNormReLU(out_channels, out_channels, norm))
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels
                         else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class DilatedBlock(nn.Module):
    """3x3 convs at dilation 1, 3, 5 in a chain (BN, ReLU each); 1x1 over [x, d1, d2, d3] to ``out`` (BN, ReLU)."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.chain = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=d, dilation=d), nn.BatchNorm2d(channels),
                          nn.ReLU(inplace=True)) for d in (1, 3, 5))
        self.fuse = nn.Sequential(nn.Conv2d(4 * channels, out_channels, 1), nn.BatchNorm2d(out_channels),
                                  nn.ReLU(inplace=True))
        for m in self.modules():  # the official init: conv biases zero
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for stage in self.chain:
            feats.append(stage(feats[-1]))
        return self.fuse(torch.cat(feats, dim=1))


def _mlp(in_channels: int, hidden: int, out_channels: int, final_relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, hidden, 1, bias=False), nn.PReLU(), nn.Conv2d(hidden, out_channels, 1, bias=False)]
    return nn.Sequential(*layers, *([nn.ReLU()] if final_relu else []))


class LightingHead(nn.Module):
    """Direction (8) and temperature (5) logits from a bottleneck; the guide's logits made into a new bottleneck."""

    def __init__(self, dir_channels: int = 12 * BASE, tmp_channels: int = 4 * BASE, hidden: int = 256):
        super().__init__()
        self.dir_channels, self.tmp_channels = dir_channels, tmp_channels
        self.predict_dir = _mlp(dir_channels, hidden, len(DIRECTIONS), final_relu=False)
        self.predict_tmp = _mlp(tmp_channels, hidden, len(TEMPERATURES), final_relu=False)
        self.embed_dir = _mlp(len(DIRECTIONS), hidden, dir_channels, final_relu=True)
        self.embed_tmp = _mlp(len(TEMPERATURES), hidden, tmp_channels, final_relu=True)

    def logits(self, bottleneck: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B,8,1,1)`` direction and ``(B,5,1,1)`` temperature logits from channel means of ``bottleneck``."""
        mean = bottleneck.mean(dim=(2, 3), keepdim=True)
        return (self.predict_dir(mean[:, :self.dir_channels]),
                self.predict_tmp(mean[:, self.dir_channels:self.dir_channels + self.tmp_channels]))

    def embed(self, direction: torch.Tensor, temperature: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The bottleneck that replaces the input's: the guide's lighting embedded and broadcast over ``size``."""
        feat = torch.cat([self.embed_dir(direction), self.embed_tmp(temperature)], dim=1)
        return feat.expand(-1, -1, *size)


class DFuseNet(nn.Module):
    """DFuseNet with a fixed guide behind the harness's ``(rgb, depth)`` signature.

    ``forward(rgb, depth)``: rgb ``(B,3,H,W)`` in [0,1], depth ``(B,1,H,W)`` (``normalized_depth`` in [0,1]);
    returns ``(B,3,H,W)`` in (0,1) (sigmoid).  The lighting logits of the last training forward are kept for
    :meth:`auxiliary_terms`.
    """

    def __init__(self, pad_mode: str = "replicate"):
        super().__init__()
        self.pad_mode = pad_mode
        widths = [BASE * 2 ** i for i in range(4)]  # 48, 96, 192, 384
        self.rgb_stem = BasicBlock(3, BASE, "batch")
        self.depth_stem = BasicBlock(1, BASE, "batch")
        self.skips = nn.ModuleList(BasicBlock(w, w, "batch") for w in widths)
        self.rgb_levels = nn.ModuleList(DilatedBlock(w, 2 * w) for w in widths)
        self.depth_levels = nn.ModuleList(DilatedBlock(w, 2 * w) for w in widths)
        self.lighting = LightingHead()
        ups = [(16 * BASE, 8 * BASE), (16 * BASE, 4 * BASE), (8 * BASE, 2 * BASE), (4 * BASE, BASE)]
        self.up_blocks = nn.ModuleList(BasicBlock(i, o, "instance") for i, o in ups)  # coarse to fine
        self.final = BasicBlock(2 * BASE, BASE, "batch")
        self.out = nn.Conv2d(BASE, 3, 1)
        self.register_buffer("guide_rgb", torch.full((1, 3, MULTIPLE, MULTIPLE), 0.5))
        self.register_buffer("guide_depth", torch.full((1, 1, MULTIPLE, MULTIPLE), 0.5))
        self.register_buffer("labels", torch.tensor([-1, -1, -1, -1]))  # input dir, tmp; guide dir, tmp (-1: unset)
        self.logits: dict[str, torch.Tensor] = {}

    def set_guide(self, rgb: torch.Tensor, depth: torch.Tensor, input_condition: str, guide_condition: str) -> None:
        """Fix the guide: ``rgb (3,H,W)`` in [0,1] and ``depth (1,H,W)`` of a scene lit as ``guide_condition``."""
        with torch.no_grad():
            self.guide_rgb = rgb.detach().reshape(1, 3, *rgb.shape[-2:]).to(self.guide_rgb)
            self.guide_depth = depth.detach().reshape(1, 1, *depth.shape[-2:]).to(self.guide_depth)
            labels = [*lighting_label(input_condition), *lighting_label(guide_condition)]
            self.labels = torch.tensor(labels, device=self.labels.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A stored guide may have another size than this model's: take its shape before loading it."""
        for name in ("guide_rgb", "guide_depth"):
            stored = state_dict.get(prefix + name)
            if stored is not None and stored.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty(stored.shape, dtype=stored.dtype, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __getstate__(self) -> dict:
        """Copies and pickles leave out the last training forward's tensors (part of an autograd graph)."""
        return {**self.__dict__, "logits": {}}

    def train(self, mode: bool = True):
        """Switching to eval drops the last training forward's kept tensors (a model holding them cannot be copied)."""
        if not mode:
            self.logits = {}
        return super().train(mode)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        h, w = rgb.shape[-2:]
        x = pad_to_multiple(rgb.flip(1), MULTIPLE, self.pad_mode)  # RGB -> BGR, as their OpenCV images
        d = pad_to_multiple(depth, MULTIPLE, self.pad_mode)
        size = x.shape[-2:]
        guide_bgr = F.interpolate(self.guide_rgb.flip(1), size=size, mode="bilinear", align_corners=False)
        guide_d = F.interpolate(self.guide_depth, size=size, mode="bilinear", align_corners=False)
        guide_bottleneck, _ = self._encode(guide_bgr, guide_d, with_skips=False)
        bottleneck, skips = self._encode(x, d)
        in_dir, in_tmp = self.lighting.logits(bottleneck)
        gd_dir, gd_tmp = self.lighting.logits(guide_bottleneck)
        self.logits = {"input_dir": in_dir.flatten(1), "input_tmp": in_tmp.flatten(1),
                       "guide_dir": gd_dir.flatten(1), "guide_tmp": gd_tmp.flatten(1)} if self.training else {}
        feat = self.lighting.embed(gd_dir, gd_tmp, bottleneck.shape[-2:]).expand(x.shape[0], -1, -1, -1)
        out = torch.sigmoid(self.out(self.final(self._decode(feat, skips))))
        return out[..., :h, :w].flip(1)  # BGR -> RGB

    def _encode(self, rgb: torch.Tensor, depth: torch.Tensor,
                with_skips: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The shared encoder: the bottleneck (rgb + depth streams, 768 @ /16) and the four skip features.

        The guide needs no skips (its decoder is never run), so the official code computes none for it.
        """
        feat, dep = self.rgb_stem(rgb), self.depth_stem(depth)
        skips = []
        for skip, rgb_level, depth_level in zip(self.skips, self.rgb_levels, self.depth_levels):
            if with_skips:
                skips.append(skip(feat))
            feat = rgb_level(F.max_pool2d(feat + dep, 2))
            dep = depth_level(F.max_pool2d(dep, 2))
        return feat + dep, skips

    def _decode(self, feat: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for block, skip in zip(self.up_blocks, reversed(skips)):
            feat = torch.cat([F.interpolate(block(feat), scale_factor=2, mode="nearest"), skip], dim=1)
        return feat

    def auxiliary_terms(self, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Their focal losses on the last training forward's lighting logits (empty until :meth:`set_guide`)."""
        if not self.logits or int(self.labels[0]) < 0:
            return {}
        labels = dict(zip(("input_dir", "input_tmp", "guide_dir", "guide_tmp"), self.labels.tolist()))
        return {f"dfusenet_focal_{name}": focal_loss(logits, labels[name]) for name, logits in self.logits.items()}


GUIDE_SCENE = "Image014"  # DeepBlueAI's Track 1 guide, used when it is a training scene of the run


@register_model("dfusenet", capabilities=Capabilities(tags=(RELIGHTING,), auxiliary_terms=True,
                                                      guide=Guide(default_scene=GUIDE_SCENE)))
def dfusenet(guide_scene: str | None = None, pad_mode: str = "replicate") -> nn.Module:
    """DFuseNet (DeepBlueAI, NTIRE 2021): FuseNet-style RGB-D encoder, lighting from a fixed guide image.

    ``guide_scene`` is for the harness, which fills the guide before training (see :class:`models.capabilities.Guide`):
    the training scene to use, else :data:`GUIDE_SCENE` when it is one, else the first training scene.
    """
    return DFuseNet(pad_mode=pad_mode)
