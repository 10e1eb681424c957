"""PGAR: the progressively guided alternate refinement network, as a relighting network.

Chen and Fu, "Progressively Guided Alternate Refinement Network for RGB-D Salient
Object Detection", ECCV 2020.  One of the four RGB-D salient-object networks the
MBNet paper (section 4.3, Table 2: PSNR 17.64, SSIM 0.675) retrained for relighting
"replacing the final convolutional layers so their output is three-channel
tensors".  Re-implemented from the paper's description and from reading the
authors' repository, ``ShuhanChen/PGAR_ECCV20`` (HEAD 4ea5d19): ``PGAR.py`` (all
modules) and ``VGG16.py`` (the RGB backbone).  It has no licence, so nothing is
copied.

Structure (shapes for an ``H x W`` input after padding to multiples of 32)::

    rgb (B,3,H,W) -ImageNet norm-> VGG16 (no BN) -> x1 64@H  x2 128@H/2  x3 256@H/4
                                                     x4 512@H/8  x5 512@H/16  x6 512@H/32 (pool5)
    depth (B,1,H,W) -(1 - d - 0.493) / 0.231-> light depth stream (4 x [3x3 s2 conv 64 + ReLU])
                                                -> d3 64@H/4  d4 64@H/8  d5 64@H/16
    convert (1x1 convs):  x1..x5 -> 16, 32, 64, 64, 64 channels
    multi-scale residual block:  y6 = MSR(x6)                        1 ch @H/32
    alternate refinement (each GR module refines the guidance map y; up = bilinear, align_corners=True):
        y5d = GR_depth5(d5, up(y6))   y5r = GR_rgb5(x5, y5d)          @H/16
        y4d = GR_depth4(d4, up(y5r))  y4r = GR_rgb4(x4, y4d)          @H/8
        y3d = GR_depth3(d3, up(y4r))  y3r = GR_rgb3(x3, y3d)          @H/4
        y2  = GR_rgb2(x2, up(y3r))                                     @H/2
        out = GR_rgb1(x1, up(y2))                                      3 ch @H   (the output)

* **Multi-scale residual block** (:class:`MultiScaleResidualBlock`): three residual
  bottlenecks (1x1 512->64, 3x3 64->64 at dilation 1 / 2 / 3 + ReLU, 1x1 64->512,
  added to the input), each applied 5 times in a row with shared weights to ``x6``;
  the three results are summed and a 3x3 conv 512->1 gives the coarse map ``y6``.
* **Guided residual block** (:class:`GuidedResidualBlock`, width ``C``, group width
  ``s``): the guidance ``y`` is inserted after every group of ``s`` feature
  channels (``C + C/s`` channels), a 3x3 conv back to ``C`` + ReLU is added to the
  feature, and a 3x3 conv ``C -> 1`` of the new feature is added to ``y``.
* **GR module, progressive guidance** (:class:`GRModule`): weak (``s = C``, ``y``
  inserted once), medium (``s = 8``) and strong (``s = 1``, ``y`` after every
  channel) guided residual blocks in sequence; it returns only the refined ``y``.
  ``C`` is 64 for the depth modules and GR3..GR5, 32 for GR2, 16 for GR1.
* **Alternate refinement**: from 1/16 to 1/4, ``y`` is refined by depth features,
  then by RGB features; at 1/2 and full resolution by RGB features only.  Only the
  map ``y`` crosses scales; features are never fused across scales.

The three-channel head (the choices made)
----------------------------------------
* The published structure is kept unchanged, including the **1-channel guidance
  map** that every GR module refines and passes on.  The only change is the
  network's final convolution, the score conv of the strong guided residual block
  of GR1 (3x3, 16 -> 1 in the official model), which becomes **16 -> 3**, as the
  MBNet paper describes for all four peer networks.  That block adds its score to
  the incoming guidance, so the output is ``y_in + conv(x)`` with the 1-channel
  ``y_in`` broadcast over the three colour channels: the refined guidance map acts
  as a shared (grey) base and the final conv supplies the per-channel image.  This
  adds 290 parameters (2 x 16 x 9 weights + 2 biases).
* Why not a 3-channel guidance map throughout (the obvious swap, since the
  guidance map is the decoder's whole state)?  It widens every interleaved conv (``C + 3 C/s`` inputs) and
  every score conv: 16,767,851 parameters, 563,954 (+3.5 %) over the official
  count, far more than the head change the MBNet paper describes.  It is kept as
  a flagged option, ``PGAR(guidance_channels=3)``, not used by the registered
  ``pgar`` adapter.
* No final activation and no ``rgb +``: the output is the plain conv sum, so it can
  be negative; the harness's ``residual: true`` turns it into ``relu(rgb + map)``.
* **Side outputs**: the official model returns nine maps (the final one and the
  eight intermediate guidance maps, all upsampled to full size) for deep
  supervision.  They cost no parameters here (they are the ``y`` maps on the main
  path).  ``PGAR(return_side_outputs=True)`` (off by default, and off in the
  adapter) makes ``forward`` return ``(out, sides)``, ``sides`` a dict of the eight
  guidance maps upsampled to ``H x W`` and cropped: ``y6``, ``y5_depth``,
  ``y5_rgb``, ``y4_depth``, ``y4_rgb``, ``y3_depth``, ``y3_rgb``, ``y2``, each
  ``(B, guidance_channels, H, W)``.  Nothing in the harness supervises them.
* ``PGAR(out_channels=1)`` is the official saliency network itself (16,203,897
  parameters, the official count exactly); it exists to check this
  implementation against the official code.  During development, with the
  official (random) weights renamed into it, its final map and all eight side
  maps equalled the official ``PGAR`` outputs exactly (64x96 and 128x128 inputs,
  batch 2, the official model fed the same normalised inputs).

Inputs, depth and padding
-------------------------
* ``rgb`` (B,3,H,W) in [0,1] is ImageNet-normalised inside the model (mean
  0.485/0.456/0.406, std 0.229/0.224/0.225), as the official data loader does.
* ``depth`` (B,1,H,W) enters only through the **light depth stream**, trained from
  scratch (PyTorch default init, no pretrained weights), whose three outputs
  guide GR_depth5/4/3.  PGAR expects "nearer is brighter" depth normalised with
  mean 0.493 and std 0.231; VIDIT's ``normalized_depth`` is larger-is-farther in
  about [0,1], so the stream sees ``((1 - depth) - 0.493) / 0.231``
  (``invert_depth=False`` skips the ``1 -``).  For a stream trained from scratch the
  inversion is only a reparametrisation of its first conv (a sign flip and a bias
  shift); it keeps the input on the scale the official constants assume.
* Sizes: VGG16 with pool5 needs ``H`` and ``W`` to be multiples of 32 (the
  official model fails otherwise).  Other sizes are padded on the bottom/right
  with ``replicate`` padding (``pad_mode="reflect"`` optional) to the next multiple
  of 32, before normalisation, and the output (and any side outputs) cropped back
  to ``H x W``.  Multiples of 32 (256, 352, 1024) are not padded.
* ImageNet weights: ``pgar(pretrained=...)`` loads torchvision's VGG16 into
  ``rgb_backbone`` (conv layers only).  The released constructor fetches
  torchvision's VGG16 and has a routine copying its conv weights in order, but
  never calls it (the training script is not released; the published checkpoint
  overwrites everything anyway); the ImageNet initialisation that routine
  prepares is what is reproduced here.

Measured figures (this implementation)
--------------------------------------
* Parameters (all used in ``forward``): **16,204,187** for the adapter, against
  16,203,897 for the official ``PGAR()`` (16.20 M; every official parameter is
  used in its forward) and 16,203,897 for ``PGAR(out_channels=1)`` here: VGG16
  14,714,688, light depth stream 111,424, convert 87,280, MSR 313,729, GR modules
  977,066 (976,776 + the 290 of the 3-channel score conv).
* FLOPs per image, ``torch.utils.flop_counter.FlopCounterMode`` (convolutions,
  counted on the meta device): **47.15 G at 256x256** (47,150,071,808; official
  1-channel model 47,112,323,072), 89.14 G at 352x352 (official 89.07 G, i.e.
  44.5 G multiply-accumulates), 754.40 G at 1024x1024.  Bilinear
  upsampling and the normalisation are not counted.

Module names map onto the official code as: ``rgb_backbone`` = ``vgg`` (here with
torchvision's ``features.N`` keys, so ImageNet VGG16 checkpoints load as they are),
``depth_stream`` = ``dep``, ``convert``, ``msr``, ``gr_depth{3,4,5}`` = ``grd{3,4,5}``,
``gr_rgb{1..5}`` = ``gr{1..5}``, and inside a GR module ``weak`` / ``medium`` /
``strong`` = ``weak_gr`` / ``medium_gr`` / ``strong_gr``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.normalization import IMAGENET_MEAN, IMAGENET_STD, normalize
from models.padding import pad_to_multiple
from models.capabilities import Capabilities
from models.registry import register_model
from models.weights import Pretrained, load_into, load_state_dict, resolve_weights

__all__ = [
    "VGG16Backbone",
    "LightDepthStream",
    "ResidualBottleneck",
    "MultiScaleResidualBlock",
    "GuidedResidualBlock",
    "GRModule",
    "PGAR",
    "interleave_guidance",
    "pgar",
]

DEPTH_MEAN = 0.493  # the official depth normalisation (1-channel, nearer is brighter)
DEPTH_STD = 0.231

PadMode = Literal["replicate", "reflect"]


# ---------------------------------------------------------------------------
# the two streams
# ---------------------------------------------------------------------------

# VGG16 configuration "D": conv widths, "M" = 2x2 max pool (torchvision's layer order)
_VGG16_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                        512, 512, 512, "M", 512, 512, 512, "M")


class VGG16Backbone(nn.Module):
    """VGG16 without BN (torchvision layout, no classifier), returning six levels.

    ``features`` has torchvision's ``vgg16().features`` indices, so an ImageNet
    checkpoint's ``features.*`` keys load unchanged.  forward: (B,3,H,W) ImageNet-normalised
    -> [x1 64@H (conv1_2), x2 128@H/2 (conv2_2), x3 256@H/4 (conv3_3), x4 512@H/8 (conv4_3),
    x5 512@H/16 (conv5_3), x6 512@H/32 (pool5)], all after their ReLU.
    """

    # slices of ``features`` ending at each level: conv1 block, pool1+conv2 block, ..., pool5
    _level_ends = (4, 9, 16, 23, 30, 31)

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for item in _VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_ch, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_ch = int(item)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B,3,H,W) -> the six levels of the class docstring."""
        levels = []
        start = 0
        for end in self._level_ends:
            for layer in self.features[start:end]:
                x = layer(x)
            levels.append(x)
            start = end
        return levels


class LightDepthStream(nn.Module):
    """The lightweight depth stream, learned from scratch: four 3x3 stride-2 convs (``width`` ch) + ReLU, no BN.

    forward: normalised depth (B,1,H,W) -> (d3 width@H/4, d4 width@H/8, d5 width@H/16); the
    H/2 output of the first conv only feeds the second.
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(1 if i == 0 else width, width, 3, stride=2, padding=1), nn.ReLU(inplace=True))
            for i in range(4)
        )

    def forward(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """d: (B,1,H,W) -> d3, d4, d5."""
        outs = []
        for layer in self.layers:
            d = layer(d)
            outs.append(d)
        return outs[1], outs[2], outs[3]


# ---------------------------------------------------------------------------
# multi-scale residual block (coarse prediction from pool5)
# ---------------------------------------------------------------------------


class ResidualBottleneck(nn.Module):
    """``x + expand(ReLU(dilated3x3(squeeze(x))))``: 1x1 ``channels -> width``, 3x3 at ``dilation``, 1x1 back.

    Shapes: (B,channels,h,w) -> (B,channels,h,w).
    """

    def __init__(self, channels: int = 512, width: int = 64, dilation: int = 1) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(channels, width, kernel_size=1)
        self.conv = nn.Conv2d(width, width, kernel_size=3, padding=dilation, dilation=dilation)
        self.expand = nn.Conv2d(width, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,C,h,w) -> (B,C,h,w)."""
        return x + self.expand(F.relu(self.conv(self.squeeze(x))))


class MultiScaleResidualBlock(nn.Module):
    """MSR: three dilated residual bottlenecks, each applied ``recurrences`` times with shared weights.

    ``y = score(sum_k B_k^recurrences(x))`` with ``B_k`` the bottleneck at dilation ``dilations[k]``
    and ``score`` a 3x3 conv ``channels -> out_ch``.

    Shapes: (B,channels,h,w) -> (B,out_ch,h,w).
    """

    def __init__(
        self,
        channels: int = 512,
        width: int = 64,
        out_ch: int = 1,
        dilations: tuple[int, ...] = (1, 2, 3),
        recurrences: int = 5,
    ) -> None:
        super().__init__()
        if recurrences < 1:
            raise ValueError(f"MultiScaleResidualBlock: recurrences must be >= 1, got {recurrences}")
        self.recurrences = recurrences
        self.bottlenecks = nn.ModuleList(ResidualBottleneck(channels, width, d) for d in dilations)
        self.score = nn.Conv2d(channels, out_ch, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,channels,h,w) -> coarse map (B,out_ch,h,w)."""
        total = None
        for block in self.bottlenecks:
            z = x
            for _ in range(self.recurrences):
                z = block(z)
            total = z if total is None else total + z
        return self.score(total)

    def extra_repr(self) -> str:
        return f"recurrences={self.recurrences}"


# ---------------------------------------------------------------------------
# guided residual blocks and the GR module (progressive guidance)
# ---------------------------------------------------------------------------


def interleave_guidance(x: torch.Tensor, y: torch.Tensor, groups: int) -> torch.Tensor:
    """Split ``x`` (B,C,h,w) into ``groups`` consecutive channel groups and put ``y`` (B,G,h,w) after each.

    Returns (B, C + groups*G, h, w) ordered [x group 0, y, x group 1, y, ...].
    """
    b, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"interleave_guidance: {c} channels do not split into {groups} groups")
    g = y.shape[1]
    parts = torch.cat([x.reshape(b, groups, c // groups, h, w), y.unsqueeze(1).expand(b, groups, g, h, w)], dim=2)
    return parts.reshape(b, c + groups * g, h, w)


class GuidedResidualBlock(nn.Module):
    """Guided residual (GR) block: the guidance map steers a residual update of the feature, then is updated by it.

    ``x <- x + ReLU(conv3x3(interleave(x, y)))`` with ``y`` inserted after every ``group_width``
    channels of ``x`` (``channels // group_width`` copies); then ``y <- y + score3x3(x)``.
    ``score_ch`` defaults to ``guide_ch``; ``score_ch = 3`` with ``guide_ch = 1`` makes the sum
    broadcast the 1-channel ``y`` over the 3 score channels (the relighting head).

    Shapes: x (B,channels,h,w), y (B,guide_ch,h,w) -> x (B,channels,h,w), y (B,score_ch,h,w).
    """

    def __init__(self, channels: int, group_width: int, guide_ch: int = 1, score_ch: int | None = None) -> None:
        super().__init__()
        score_ch = guide_ch if score_ch is None else score_ch
        if channels % group_width:
            raise ValueError(f"GuidedResidualBlock: group width {group_width} does not divide {channels} channels")
        if score_ch != guide_ch and guide_ch != 1:
            raise ValueError(f"GuidedResidualBlock: {score_ch}-channel score, {guide_ch}-channel guide")
        self.groups = channels // group_width
        self.conv = nn.Conv2d(channels + self.groups * guide_ch, channels, kernel_size=3, padding=1)
        self.score = nn.Conv2d(channels, score_ch, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B,C,h,w); y: (B,guide_ch,h,w) -> (x', y')."""
        x = x + F.relu(self.conv(interleave_guidance(x, y, self.groups)))
        return x, y + self.score(x)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class GRModule(nn.Module):
    """GR module with progressive guidance: weak (y once), medium (y every 8 ch), strong (y every channel).

    Returns only the refined guidance map.  ``out_ch`` is the strong block's score width
    (default ``guide_ch``; 3 for the final, relighting module).

    Shapes: x (B,channels,h,w), y (B,guide_ch,h,w) -> (B,out_ch,h,w).
    """

    medium_group_width = 8

    def __init__(self, channels: int, guide_ch: int = 1, out_ch: int | None = None) -> None:
        super().__init__()
        self.weak = GuidedResidualBlock(channels, channels, guide_ch)
        self.medium = GuidedResidualBlock(channels, self.medium_group_width, guide_ch)
        self.strong = GuidedResidualBlock(channels, 1, guide_ch, out_ch)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x: (B,C,h,w); y: (B,guide_ch,h,w) -> refined y."""
        x, y = self.weak(x, y)
        x, y = self.medium(x, y)
        return self.strong(x, y)[1]


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------


def _resize(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``y`` to ``ref``'s spatial size (align_corners=True, as in the official decoder)."""
    return F.interpolate(y, size=ref.shape[-2:], mode="bilinear", align_corners=True)


class PGAR(nn.Module):
    """PGAR with a 3-channel output: VGG16 + light depth stream, MSR, alternate GR refinement.

    forward(rgb (B,3,H,W) in [0,1], depth (B,1,H,W)) -> (B,out_channels,H,W), or ``(out, sides)``
    with ``return_side_outputs``.  See the module docstring for the head, the depth input and
    the padding.

    ``width``: the GR / depth-stream width (64); ``guidance_channels``: 1 (published structure)
    or 3 (flagged alternative); ``out_channels``: 3 (relighting) or 1 (the official saliency
    network); ``pad_mode``: "replicate" or "reflect"; ``invert_depth``: feed ``1 - depth``
    (VIDIT's larger-is-farther to PGAR's nearer-is-brighter).
    """

    convert_widths = (16, 32, 64, 64, 64)  # x1..x5 after the 1x1 convert convs (width 64)

    def __init__(
        self,
        width: int = 64,
        guidance_channels: int = 1,
        out_channels: int = 3,
        pad_mode: PadMode = "replicate",
        invert_depth: bool = True,
        return_side_outputs: bool = False,
    ) -> None:
        super().__init__()
        if pad_mode not in ("replicate", "reflect"):
            raise ValueError(f"PGAR: pad_mode must be 'replicate' or 'reflect', got {pad_mode!r}")
        if guidance_channels not in (1, 3):
            raise ValueError(f"PGAR: guidance_channels must be 1 or 3, got {guidance_channels}")
        if out_channels not in (1, 3) or (guidance_channels == 3 and out_channels != 3):
            raise ValueError(f"PGAR: out_channels {out_channels} does not fit guidance_channels {guidance_channels}")
        self.pad_mode: PadMode = pad_mode
        self.invert_depth = invert_depth
        self.return_side_outputs = return_side_outputs
        g = guidance_channels
        rgb_widths = (width // 4, width // 2, width, width, width)

        self.rgb_backbone = VGG16Backbone()
        self.depth_stream = LightDepthStream(width)
        self.convert = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=1) for c_in, c_out in zip((64, 128, 256, 512, 512), rgb_widths)
        )
        self.msr = MultiScaleResidualBlock(512, width, out_ch=g)
        self.gr_depth5 = GRModule(width, g)
        self.gr_rgb5 = GRModule(rgb_widths[4], g)
        self.gr_depth4 = GRModule(width, g)
        self.gr_rgb4 = GRModule(rgb_widths[3], g)
        self.gr_depth3 = GRModule(width, g)
        self.gr_rgb3 = GRModule(rgb_widths[2], g)
        self.gr_rgb2 = GRModule(rgb_widths[1], g)
        self.gr_rgb1 = GRModule(rgb_widths[0], g, out_ch=out_channels)  # the output head

    def normalise_inputs(self, rgb: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ImageNet-normalised rgb and the depth stream's input ``((1 - depth) - 0.493) / 0.231``."""
        d = 1.0 - depth if self.invert_depth else depth
        return normalize(rgb, IMAGENET_MEAN, IMAGENET_STD), (d - DEPTH_MEAN) / DEPTH_STD

    def forward(
        self, rgb: torch.Tensor, depth: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """rgb (B,3,H,W) in [0,1], depth (B,1,H,W) -> (B,out_channels,H,W) (plus side maps if switched on)."""
        h, w = rgb.shape[-2:]
        x, d = self.normalise_inputs(
            pad_to_multiple(rgb, 32, self.pad_mode), pad_to_multiple(depth.to(rgb.dtype), 32, self.pad_mode)
        )

        x1, x2, x3, x4, x5, x6 = self.rgb_backbone(x)
        d3, d4, d5 = self.depth_stream(d)
        x1, x2, x3, x4, x5 = (conv(f) for conv, f in zip(self.convert, (x1, x2, x3, x4, x5)))

        y6 = self.msr(x6)  # coarse map @H/32
        y5_depth = self.gr_depth5(d5, _resize(y6, x5))  # @H/16
        y5_rgb = self.gr_rgb5(x5, y5_depth)
        y4_depth = self.gr_depth4(d4, _resize(y5_rgb, x4))  # @H/8
        y4_rgb = self.gr_rgb4(x4, y4_depth)
        y3_depth = self.gr_depth3(d3, _resize(y4_rgb, x3))  # @H/4
        y3_rgb = self.gr_rgb3(x3, y3_depth)
        y2 = self.gr_rgb2(x2, _resize(y3_rgb, x2))  # @H/2
        y2_full = _resize(y2, x1)
        out = self.gr_rgb1(x1, y2_full)[..., :h, :w]  # (B,out_channels,H,W)
        if not self.return_side_outputs:
            return out
        maps = {"y6": y6, "y5_depth": y5_depth, "y5_rgb": y5_rgb, "y4_depth": y4_depth, "y4_rgb": y4_rgb,
                "y3_depth": y3_depth, "y3_rgb": y3_rgb, "y2": y2_full}
        sides = {name: _resize(m, x1)[..., :h, :w] for name, m in maps.items()}
        return out, sides


@register_model("pgar", capabilities=Capabilities(pretrained=True))
def pgar(pretrained: Pretrained = False) -> nn.Module:
    """PGAR (ECCV 2020): VGG16 + light depth stream, MSR, alternate guided refinement; 3-channel final score conv.

    ``pretrained`` (auto | true | false | path, see :mod:`models.weights`) loads ImageNet
    VGG16 weights into the RGB backbone, as the authors did; the light depth stream and
    the decoder stay randomly initialised.  What was loaded is in ``model.pretrained_info``.
    """
    model = PGAR()
    choice = resolve_weights("vgg16", pretrained, key="weights.backbone")
    if choice.path is not None:
        load_into(model.rgb_backbone, load_state_dict(choice.path), source=str(choice.path))
    model.pretrained_info = [choice.describe()]
    return model
