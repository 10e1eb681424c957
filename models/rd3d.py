"""RD3D: RGB-D salient-object detection with 3-D convolutions, as a relighting baseline.

Chen, Liu, Zhang, Fu, Zhao and Du, "RGB-D Salient Object Detection via 3D
Convolutional Neural Networks", AAAI 2021.  One of the four RGB-D SOD peers the
MBNet paper (section 4.3, Table 2) retrained for relighting after "replacing the
final convolutional layers so their output is three-channel tensors".  This is a
re-implementation from a reading of the authors' repository (``PPOLYpubki/RD3D``,
MIT, commit 801e194: ``model/rd3d.py`` for the decoder and head,
``model/resnet3d.py`` and ``model/inflate.py`` for the I3D inflation of
torchvision's ResNet-50); no code is taken from it.

RD3D treats the RGB image and the depth map as the two frames of a short clip
and runs 3-D convolutions over it: *pre-fusion* happens in an I3D-inflated
ResNet-50 encoder whose temporal (here: modality) taps mix RGB and depth in
every block; *in-depth fusion* happens in a 3-D decoder with *rich
back-projection paths* (RBPP) that stacks, along the modality axis, the
upsampled decoder state, the same-scale encoder feature and every shallower
feature strided down to that scale.

Structure (shapes for an ``H x W`` input, ``H`` and ``W`` multiples of 32;
features are ``(B, C, T, h, w)`` with ``T`` the modality/frame axis)::

    clip = stack([imagenet_norm(rgb), depth x3], dim=2)             (B,3,2,H,W)
    InflatedResNet50 (pre-fusion encoder, T stays 2, no temporal stride):
        x0 64@H/2 (conv1+bn+relu)  x1 256@H/4  x2 512@H/8  x3 1024@H/16  x4 2048@H/32
    reductions[i] = Reduction3d(C_i -> 32): 1x1x1, 3x3x3, 3x3x3 (conv+BN3d+ReLU each)
    RichBackProjectionDecoder (in-depth fusion, width 32):
        back-projection paths (1x3x3 conv, stride (1,2,2), +BN3d+ReLU, chains computed once):
            x0 -> 1/4 -> 1/8 -> 1/16,   x1 -> 1/8 -> 1/16,   x2 -> 1/16
        step16: [up(x4) (T=2), x3, bp(x2), bp^2(x1), bp^3(x0)]  T=10 -> collapse [10,1,1] -> T=1
        step8:  [up(s16) (T=1), x2, bp(x1), bp^2(x0)]           T=7  -> collapse [7,1,1]
        step4:  [up(s8), x1, bp(x0)]                            T=5  -> collapse [5,1,1]
        step2:  [x0, up(s4)]      (note the order)              T=3  -> collapse [3,1,1]
        each step: up = Conv3x3x3(bilinear x2 of the state); stack = concat along T;
                   stack + SE(Conv1x1x1(Conv3x3x3(stack))) -> temporal collapse conv
        head (1/2 res, T squeezed): 1x1 conv 32->64 + BN, 1x1 conv 64->32 + BN,
                                    1x1 conv 32->3 (bias)                  (B,3,H/2,W/2)
    map = bilinear x2 (align_corners=True) of the head output                (B,3,H,W)

Three-channel head (the only change to the network)
---------------------------------------------------
* The final 1x1 conv ``32 -> 1`` (a saliency logit) becomes ``32 -> 3``; nothing
  else in the head changes (the two 1x1 conv + BN layers before it keep the
  official form, with no activation between them).  This adds 66 parameters.
* No activation after it: the output is a plain conv output, so it can be
  negative.  The official sigmoid is applied outside the model (in the loss and
  at test time) and is dropped for relighting.  With ``residual: true`` the
  harness outputs ``relu(rgb + map)``; without it the map is the prediction.
* Full resolution: the official prediction is made at 1/2 resolution and
  bilinearly upsampled x2 (``align_corners=True``) to the input size inside the
  model.  This adapter keeps exactly that: the 3-channel map is predicted at
  H/2 x W/2 and upsampled bilinearly.  It is faithful to "replacing the final
  convolutional layers" but caps fine detail at half resolution; no learnable
  full-resolution stage is added.
* Side outputs: the official model has none (a single BCE on the final map), so
  there is nothing to switch on.

Where depth enters, and input normalisation
-------------------------------------------
* ``rgb`` (B,3,H,W) in [0,1] is ImageNet-normalised inside the adapter (mean
  0.485/0.456/0.406, std 0.229/0.224/0.225), as the official data loader does.
* ``depth`` (B,1,H,W) is used as given (the official loader feeds ``ToTensor``
  depth in [0,1], not normalised; VIDIT normalised depth is roughly [0,1]) and
  replicated to 3 channels.
* Depth enters only at the input, as frame 1 of the 2-frame clip (RGB is frame
  0).  From there on the modality axis is the 3-D convolutions' temporal axis:
  every 3x3x3 conv of the encoder (conv1 and each bottleneck's middle conv, with
  temporal padding 1) and of the decoder mixes the two modalities.

Padding
-------
The official network needs ``H`` and ``W`` to be multiples of 32 (it fails
otherwise).  Here both inputs are padded on the bottom/right with ``replicate``
to the next multiple of 32, and the output is cropped back to ``H x W``; any
size works.  Inputs already a multiple of 32 are not touched.

ImageNet initialisation (I3D inflation, "centre" rule)
------------------------------------------------------
The encoder's state-dict keys are torchvision's ``resnet50`` keys (no ``fc``).
A 2-D kernel ``w`` (O,I,kh,kw) becomes a 3-D kernel (O,I,t,kh,kw) that is zero
everywhere except the middle temporal tap ``t // 2``, which equals ``w``
(``t = 3`` for conv1 and the bottlenecks' 3x3 convs, ``t = 1`` otherwise).
BatchNorm parameters and statistics carry over unchanged.  At initialisation
the encoder is therefore a shared 2-D ResNet-50 applied to each frame
separately; cross-modal mixing is learned in the (zero-initialised) outer taps.
Without ImageNet weights the encoder is initialised the same way from a random
torchvision-style ResNet-50 (Kaiming-normal, fan-out on the 2-D shape, in the
middle tap; zeros elsewhere), which is what the official constructor does when
given an untrained ResNet-50.  The decoder uses PyTorch's default init, as the
official code does.

Measured figures (this implementation)
--------------------------------------
* parameters: **46,900,291**: the official ``RD3D(32, resnet50)`` uses
  46,900,225 in its forward pass (47,303,073 built; the 402,848 difference is
  the five ``reductione*`` reductions the forward never calls, left out here),
  plus 66 for the 3-channel head.  Encoder 46,161,344; reductions 402,848;
  decoder 336,099 (of which the head 4,387).
* FLOPs per image, counted with ``torch.utils.flop_counter.FlopCounterMode``
  (convolutions and matrix products): **53.45 G at 256x256**
  (53,449,635,584); the official model counts 53,447,538,432 at 256x256, the
  difference (2,097,152) being the two extra output channels of the last conv.
* Equivalence: with the official weights mapped onto this module (and the
  head's first output channel set to the official 1-channel conv),
  channel 0 of ``RD3D()(rgb, depth)`` matched the official
  ``RD3D(32, resnet50)`` output on the same clip exactly (maximum difference
  0.0; random weights and BN statistics, eval and train mode, batch 2,
  64x96 input), checked during development.

Module names follow the paper and the official structure:
:class:`InflatedResNet50` / :class:`InflatedBottleneck` (the I3D encoder),
:class:`Reduction3d`, :class:`RichBackProjectionDecoder` with its
``back_projection`` paths and :class:`DecoderStep` s (``step16`` .. ``step2``,
each with ``up_conv``, ``fuse``, ``se`` (:class:`FlatSqueezeExcitation`) and
``collapse``), ``head``, and :class:`RD3D`.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from models.normalization import IMAGENET_MEAN, IMAGENET_STD, normalize
from models.padding import pad_to_multiple
from models.capabilities import Capabilities
from models.registry import register_model
from models.weights import Pretrained, load_into, load_state_dict, resolve_weights

__all__ = [
    "ConvBNReLU3d",
    "ConvBN2d",
    "InflatedBottleneck",
    "InflatedResNet50",
    "inflate_conv_weight",
    "inflate_resnet50_state_dict",
    "Reduction3d",
    "FlatSqueezeExcitation",
    "DecoderStep",
    "RichBackProjectionDecoder",
    "RD3D",
    "rd3d",
]


# ---------------------------------------------------------------------------
# I3D inflation
# ---------------------------------------------------------------------------


def inflate_conv_weight(weight_2d: torch.Tensor, time_dim: int) -> torch.Tensor:
    """Centre-inflate a 2-D kernel (O,I,kh,kw) to (O,I,time_dim,kh,kw).

    Only the middle temporal tap (``time_dim // 2``) carries ``weight_2d``; the others are 0.
    """
    out = weight_2d.new_zeros(weight_2d.shape[0], weight_2d.shape[1], time_dim, *weight_2d.shape[2:])
    out[:, :, time_dim // 2] = weight_2d
    return out


def _centre_kaiming_(conv: nn.Conv3d) -> None:
    """torchvision's ResNet conv init (Kaiming normal, fan-out, ReLU) on the 2-D kernel, centre-inflated."""
    with torch.no_grad():
        t = conv.weight.shape[2]
        w2d = torch.empty_like(conv.weight[:, :, 0])
        nn.init.kaiming_normal_(w2d, mode="fan_out", nonlinearity="relu")
        conv.weight.copy_(inflate_conv_weight(w2d, t))


def inflate_resnet50_state_dict(
    state_2d: Mapping[str, torch.Tensor], encoder: "InflatedResNet50"
) -> dict[str, torch.Tensor]:
    """A torchvision ResNet-50 state dict with every conv kernel centre-inflated to ``encoder``'s 3-D shapes.

    Keys the encoder does not have (``fc.*``) are dropped; missing keys are left for
    :func:`models.weights.load_into` to report.  Non-conv entries (BatchNorm) pass through.
    """
    own = encoder.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, target in own.items():
        if key not in state_2d:
            continue
        value = state_2d[key]
        if target.dim() == 5 and value.dim() == 4:
            value = inflate_conv_weight(value, target.shape[2])
        out[key] = value
    return out


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------


class ConvBNReLU3d(nn.Sequential):
    """Conv3d (with bias) -> BatchNorm3d -> ReLU: the decoder's basic 3-D unit.

    (B,in_ch,T,h,w) -> (B,out_ch,T',h',w') for the given kernel/stride/padding.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: tuple[int, int, int],
        stride: tuple[int, int, int] = (1, 1, 1),
        padding: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        super().__init__(
            nn.Conv3d(in_ch, out_ch, kernel_size, stride=stride, padding=padding),
            nn.BatchNorm3d(out_ch),
            nn.ReLU(inplace=True),
        )


class ConvBN2d(nn.Sequential):
    """1x1 Conv2d (no bias) -> BatchNorm2d, no activation (the head's inner layers)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))


# ---------------------------------------------------------------------------
# the inflated 3-D ResNet-50 encoder ("pre-fusion")
# ---------------------------------------------------------------------------


class InflatedBottleneck(nn.Module):
    """ResNet-50 bottleneck inflated to 3-D (torchvision v1.5 layout: the stride sits on the 3x3 conv).

    conv1 1x1x1 -> BN -> ReLU -> conv2 3x3x3 (temporal padding 1, stride (1,s,s)) -> BN -> ReLU
    -> conv3 1x1x1 -> BN, plus the identity or ``downsample`` (1x1x1 conv stride (1,s,s) + BN),
    then ReLU.  No temporal stride.  (B,in_ch,T,h,w) -> (B,4*width,T,h/s,w/s).
    """

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv3d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(width, width, 3, stride=(1, stride, stride), padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_ch, out_ch, 1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(out_ch),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,in_ch,T,h,w) -> (B,4*width,T,h/s,w/s)."""
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


class InflatedResNet50(nn.Module):
    """I3D-inflated ResNet-50 (no avgpool/fc), returning five feature levels; keys = torchvision's ``resnet50``.

    Stem: conv1 3x7x7 (stride (1,2,2), padding (1,3,3)) -> BN -> ReLU -> max-pool 1x3x3
    (stride (1,2,2), padding (0,1,1)).  Stages layer1..layer4 of 3/4/6/3 inflated bottlenecks
    (widths 64/128/256/512, spatial strides 1/2/2/2).  Conv kernels are centre-initialised
    from a random 2-D ResNet-50 init (see the module docstring); ImageNet weights are loaded
    with :func:`inflate_resnet50_state_dict`.

    forward: (B,3,T,H,W) -> [x0 64@H/2 (before the max-pool), x1 256@H/4, x2 512@H/8,
    x3 1024@H/16, x4 2048@H/32], all with the input's T.
    """

    layers = (3, 4, 6, 3)
    widths = (64, 128, 256, 512)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        in_ch = 64
        for index, (blocks, width) in enumerate(zip(self.layers, self.widths)):
            stage = []
            for b in range(blocks):
                stride = 2 if (b == 0 and index > 0) else 1
                stage.append(InflatedBottleneck(in_ch, width, stride))
                in_ch = width * InflatedBottleneck.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                _centre_kaiming_(module)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B,3,T,H,W) -> the five levels listed in the class docstring."""
        x0 = self.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1(self.maxpool(x0))
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)
        return [x0, x1, x2, x3, x4]


# ---------------------------------------------------------------------------
# reductions and the rich back-projection 3-D decoder ("in-depth fusion")
# ---------------------------------------------------------------------------


class Reduction3d(nn.Sequential):
    """Encoder level -> decoder width: ConvBNReLU3d 1x1x1 ``in_ch -> ch``, then two 3x3x3 ``ch -> ch`` (padding 1).

    (B,in_ch,T,h,w) -> (B,ch,T,h,w).
    """

    def __init__(self, in_ch: int, ch: int = 32) -> None:
        super().__init__(
            ConvBNReLU3d(in_ch, ch, (1, 1, 1)),
            ConvBNReLU3d(ch, ch, (3, 3, 3), padding=(1, 1, 1)),
            ConvBNReLU3d(ch, ch, (3, 3, 3), padding=(1, 1, 1)),
        )


class FlatSqueezeExcitation(nn.Module):
    """Squeeze-and-excitation over the channel x frame axis of a 3-D feature.

    The (B,C,T,h,w) feature is viewed as (B,C*T,h,w) (channel-major); global average pool,
    Linear ``C*T -> C*T // reduction`` (no bias), ReLU, Linear back (no bias), sigmoid;
    the feature is scaled by the gates.  (B,C,T,h,w) -> same shape.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channels = channels
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,C,T,h,w) with C*T == channels -> (B,C,T,h,w)."""
        b, c, t = x.shape[:3]
        gates = self.fc(x.mean(dim=(-2, -1)).reshape(b, c * t))
        return x * gates.view(b, c, t, 1, 1)


def _upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 (align_corners=True) of every (channel, frame) slice of a (B,C,T,h,w) feature."""
    b, c, t, h, w = x.shape
    flat = F.interpolate(x.reshape(b, c * t, h, w), scale_factor=2, mode="bilinear", align_corners=True)
    return flat.view(b, c, t, 2 * h, 2 * w)


class DecoderStep(nn.Module):
    """One decoder step of the rich back-projection decoder.

    ``up = up_conv(bilinear_x2(state))`` (3x3x3 ConvBNReLU3d); ``stack`` = concat along the
    frame axis of ``up`` and the same-scale members (``up`` first, or last with
    ``up_last=True``), ``frames`` frames in all; ``stack + se(fuse(stack))`` where ``fuse`` is a
    3x3x3 then a 1x1x1 ConvBNReLU3d and ``se`` a :class:`FlatSqueezeExcitation` over
    ``ch * frames`` channels; then ``collapse``: ConvBNReLU3d with kernel ``[frames,1,1]`` and
    no padding, bringing the frame axis to 1.

    Shapes: state (B,ch,T_s,h/2,w/2), members (B,ch,T_i,h,w) -> (B,ch,1,h,w).
    """

    def __init__(self, ch: int, frames: int, up_last: bool = False) -> None:
        super().__init__()
        self.frames = frames
        self.up_last = up_last
        self.up_conv = ConvBNReLU3d(ch, ch, (3, 3, 3), padding=(1, 1, 1))
        self.fuse = nn.Sequential(
            ConvBNReLU3d(ch, ch, (3, 3, 3), padding=(1, 1, 1)),
            ConvBNReLU3d(ch, ch, (1, 1, 1)),
        )
        self.se = FlatSqueezeExcitation(ch * frames)
        self.collapse = ConvBNReLU3d(ch, ch, (frames, 1, 1))

    def forward(self, state: torch.Tensor, members: list[torch.Tensor]) -> torch.Tensor:
        """state: (B,ch,T_s,h/2,w/2); members: same-scale features -> (B,ch,1,h,w)."""
        up = self.up_conv(_upsample2x(state))
        stack = torch.cat([*members, up] if self.up_last else [up, *members], dim=2)
        if stack.shape[2] != self.frames:
            raise ValueError(f"DecoderStep: expected {self.frames} frames, got {stack.shape[2]}")
        return self.collapse(stack + self.se(self.fuse(stack)))

    def extra_repr(self) -> str:
        return f"frames={self.frames}, up_last={self.up_last}"


class RichBackProjectionDecoder(nn.Module):
    """The 3-D decoder with rich back-projection paths, ending in the (3-channel) prediction head.

    ``back_projection[f"x{i}_{s}"]`` strides reduced level ``x_i`` down to scale ``1/s``
    (ConvBNReLU3d 1x3x3, stride (1,2,2), padding (0,1,1)); chains reuse the previous link.
    Steps ``step16``, ``step8``, ``step4``, ``step2`` (see :class:`DecoderStep`) run at 1/16 .. 1/2
    with 10, 7, 5 and 3 frames.  ``head``: 1x1 ConvBN2d 32->64, ConvBN2d 64->32, Conv2d 32->out_ch.

    forward(x0..x4, each (B,ch,2,h_i,w_i) at 1/2 .. 1/32) -> (B,out_ch,H/2,W/2).
    """

    paths = (("x2_16",), ("x1_8", "x1_16"), ("x0_4", "x0_8", "x0_16"))

    def __init__(self, ch: int = 32, out_ch: int = 3) -> None:
        super().__init__()
        self.back_projection = nn.ModuleDict(
            {
                name: ConvBNReLU3d(ch, ch, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
                for chain in self.paths
                for name in chain
            }
        )
        self.step16 = DecoderStep(ch, frames=10)
        self.step8 = DecoderStep(ch, frames=7)
        self.step4 = DecoderStep(ch, frames=5)
        self.step2 = DecoderStep(ch, frames=3, up_last=True)
        self.head = nn.Sequential(ConvBN2d(ch, 2 * ch), ConvBN2d(2 * ch, ch), nn.Conv2d(ch, out_ch, 1))

    def forward(
        self, x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor, x4: torch.Tensor
    ) -> torch.Tensor:
        """Reduced encoder levels (B,ch,2,h,w) at 1/2, 1/4, 1/8, 1/16, 1/32 -> map (B,out_ch,H/2,W/2)."""
        bp = self.back_projection
        x2_16 = bp["x2_16"](x2)
        x1_8 = bp["x1_8"](x1)
        x1_16 = bp["x1_16"](x1_8)
        x0_4 = bp["x0_4"](x0)
        x0_8 = bp["x0_8"](x0_4)
        x0_16 = bp["x0_16"](x0_8)

        s16 = self.step16(x4, [x3, x2_16, x1_16, x0_16])  # (B,ch,1,H/16,W/16)
        s8 = self.step8(s16, [x2, x1_8, x0_8])  # (B,ch,1,H/8,W/8)
        s4 = self.step4(s8, [x1, x0_4])  # (B,ch,1,H/4,W/4)
        s2 = self.step2(s4, [x0])  # (B,ch,1,H/2,W/2)
        return self.head(s2.squeeze(2))


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------


class RD3D(nn.Module):
    """RD3D with a 3-channel head.

    forward(rgb (B,3,H,W) in [0,1], depth (B,1,H,W)) -> map (B,3,H,W); see the module
    docstring for the input handling, the padding and the head.
    """

    stage_channels = (64, 256, 512, 1024, 2048)

    def __init__(self, width: int = 32, out_ch: int = 3) -> None:
        super().__init__()
        self.encoder = InflatedResNet50()
        self.reductions = nn.ModuleList(Reduction3d(c, width) for c in self.stage_channels)
        self.decoder = RichBackProjectionDecoder(width, out_ch)

    @staticmethod
    def make_clip(rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """The 2-frame input: frame 0 the ImageNet-normalised RGB, frame 1 depth replicated to 3 channels.

        rgb (B,3,H,W), depth (B,1,H,W) -> (B,3,2,H,W).
        """
        depth3 = depth.to(rgb.dtype).expand(-1, 3, -1, -1)
        return torch.stack([normalize(rgb, IMAGENET_MEAN, IMAGENET_STD), depth3], dim=2)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """rgb (B,3,H,W) in [0,1], depth (B,1,H,W) -> map (B,3,H,W) (no final activation)."""
        if rgb.shape[-2:] != depth.shape[-2:]:
            raise ValueError(f"RD3D: rgb {tuple(rgb.shape)} and depth {tuple(depth.shape)} differ in size")
        h, w = rgb.shape[-2:]
        ph, pw = -h % 32, -w % 32
        clip = self.make_clip(rgb, depth)
        clip = pad_to_multiple(clip, 32)  # (B,3,2,H+ph,W+pw)
        features = self.encoder(clip)
        reduced = [reduce(f) for reduce, f in zip(self.reductions, features)]
        half = self.decoder(*reduced)  # (B,3,H_pad/2,W_pad/2)
        out = F.interpolate(half, size=(h + ph, w + pw), mode="bilinear", align_corners=True)
        return out[..., :h, :w]


@register_model("rd3d", capabilities=Capabilities(pretrained=True, fold_pairs={  # each BN follows its conv
    InflatedBottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")), InflatedResNet50: (("conv1", "bn1"),)}))
def rd3d(pretrained: Pretrained = False) -> nn.Module:
    """RD3D (AAAI 2021): RGB and depth as two frames of an I3D ResNet-50, 3-D back-projection decoder; 3-channel map.

    ``pretrained`` (auto | true | false | path, see :mod:`models.weights`) loads ImageNet
    ResNet-50 weights into the encoder, centre-inflated to 3-D as the official code does.
    What was loaded is listed in ``model.pretrained_info``.
    """
    model = RD3D()
    choice = resolve_weights("resnet50", pretrained, key="weights.backbone")
    if choice.path is not None:
        state = load_state_dict(choice.path)
        load_into(model.encoder, inflate_resnet50_state_dict(state, model.encoder), source=str(choice.path))
    model.pretrained_info = [choice.describe()]
    return model
