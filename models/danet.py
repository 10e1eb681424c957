"""DANet: the single-stream RGB-D saliency network, with a three-channel relighting head.

Zhao, Zhang, Pang, Lu and Zhang, "A Single Stream Network for Robust and
Real-time RGB-D Salient Object Detection", ECCV 2020.  One of the four RGB-D
salient-object networks the MBNet paper (section 4.3, Table 2, "DANET") turned
into relighting networks by replacing their final convolutions with ones that
output three channels.  This is a re-implementation from the paper's abstract
and a reading of the authors' released code (``RGBD_sal`` in ``DANet.py`` and
``PAFEM`` in ``multi_scale_module.py`` of ``Xiaoqi-Zhao-DLUT/DANet-RGBD-Saliency``,
HEAD ee9baac, MIT).

Structure (shapes for an ``H x W`` input after padding, see below)::

    x = cat(normalise(rgb), depth)                          (B,4,H,W)    early fusion
    VGG16-bn encoder (4-channel conv1_1, no pool5):
        c1 64@H   c2 128@H/2   c3 256@H/4   c4 512@H/8   c5 512@H/16
    F1 = PAFEM(c5)                                          512@H/16
    F2..F5 = lateral 3x3 conv+BN+PReLU:  c4->256, c3->128, c2->64, c1->32
    DEDA decoder, level i = 1..5, D_i = depth resized to level i (1 channel, broadcast):
        a_i  = sigmoid(g_i(F_i [+ up(O_{i-1})] + D_i))                 spatial attention, 1 channel
        O_i  = fg_i([up(O_{i-1}) +] F_i * a_i * (D_i + a_i))           foreground branch
        Ob_i = bg_i([up(Ob_{i-1}) +] F_i * (1 - a_i) * (D_i + 1 - a_i)) background branch
        widths 512 -> 256 -> 128 -> 64 -> 32 -> 3 (the last fg/bg are plain 3x3 convs 32->3)
    dual-branch fuse: out = -Ob_5 + PReLU(Conv3x3_6->3(cat(O_5, -Ob_5)))   (B,3,H,W)

Modules, named after the paper: :class:`VGG16BNEncoder` (``encoder``),
:class:`PAFEM` (pyramidally attended feature extraction, ``pafem``) with its
:class:`PositionAttention` blocks, ``lateral`` (:class:`ConvBNPReLU` x 4),
:class:`DEDALevel` x 5 (depth-enhanced dual attention, ``deda``; each holds the
attention generator ``attention`` and the ``foreground``/``background`` branch
convs) and :class:`DualBranchFuse` (``dual_fuse``).

PAFEM: 3x3 conv+BN+PReLU 512->512, then five 256-channel branches - a 1x1 conv;
three 3x3 convs dilated 2, 4 and 6, each followed by a position self-attention
(1x1 query/key 256->32, 1x1 value 256->256, softmax over all positions without
scaling, ``gamma * attended + input`` with a learnable ``gamma`` starting at 0);
and a global-average-pool branch (1x1 conv+BN+PReLU, broadcast back) - then a
1x1 conv+BN+PReLU 1280->512.  The attention generators ``g_i`` are 1x1 conv
C->C/2 + BN + PReLU + 3x3 conv C/2->1 (C = 512, 256, 128, 64, 32).  All
activations are single-parameter PReLUs and all convolutions have biases, as
in the official code.

Adapter contract (see :mod:`models.registry`)
--------------------------------------------
* ``forward(rgb, depth)``: ``rgb`` (B,3,H,W) float in [0,1] is ImageNet-normalised
  inside the adapter (mean 0.485/0.456/0.406, std 0.229/0.224/0.225, as the
  official ``Normalize`` transform); ``depth`` (B,1,H,W) is used as it comes
  (the official code feeds ``ToTensor`` depth in [0,1], unnormalised; VIDIT's
  normalised depth is roughly [0,1] too).
* **Where depth enters**: (1) as the fourth input channel of the first conv
  (early fusion; there is no depth encoder); (2) in every DEDA level, bilinearly
  resized (``align_corners=False``) to the level's size, added to the attention
  generator's input and multiplied in through ``(D_i + a_i)`` and
  ``(D_i + 1 - a_i)``.  Its scale and polarity therefore matter.
* **Padding**: when ``H`` or ``W`` is not a multiple of 32, the normalised rgb and
  the depth are padded on the bottom/right with ``replicate`` to the next
  multiple of 32 and the output is cropped back to ``H x W``; it never fails on
  size.  (The network itself needs only multiples of 16 - four pools - and the
  official code runs any size by resizing to each level; 32 is the harness
  convention.)
* Output: the 3-channel map at full input resolution, no final sigmoid/clamp,
  so it can be negative; the harness's ``residual`` switch may turn it into
  ``relu(rgb + map)``.

The three-channel head (choices made here)
------------------------------------------
* The official net ends in 1-channel foreground/background logits (``output5``
  and ``output5_rev``, 3x3 convs 32->1) fused as ``-S_b + PReLU(conv3x3_2->1(cat(S_f, -S_b)))``
  and a sigmoid at eval.  Here both level-5 branch convs are 3x3 **32->3**, the
  fuse conv is 3x3 **6->3** (+ its single-parameter PReLU, kept), and the same
  ``-S_b + phi(cat(S_f, -S_b))`` form is kept.  The sigmoid is dropped.
* The **background branch is kept**: it lies on the main output path (through
  ``-S_b``), so it is trained end-to-end by the image loss.  Without saliency
  ground truth its official "1 - GT" target has no counterpart; by the sign
  convention, ``-S_b`` is a second estimate of the image-space map.
* The five attention maps stay **1-channel spatial maps** (their generators are
  unchanged) and are **unsupervised**: the official code trains them with BCE
  against the resized saliency mask, which relighting lacks, so they are learned
  end-to-end only.
* Side outputs: with ``DANet(return_side=True)`` (or ``model.return_side = True``)
  ``forward`` returns :class:`DANetOutputs` ``(relit, foreground, background,
  attentions)`` - the official training-mode outputs ``output, output5,
  output5_rev, dem1..dem5_attention`` - for anyone wanting auxiliary losses; by
  default (off) it returns the map alone.  Every parameter is on the main output
  path, so none is unused either way.
* Added parameters against the official 1-channel head: 2 x 578 (level-5 convs)
  + 146 (fuse conv) = 1,302.

Deviations from the official code
---------------------------------
* **conv1_1** follows the official code: a fresh 4-channel first conv (PyTorch
  default init); ImageNet's conv1_1 is *not* reused, the rest of the encoder
  (BN statistics included) is ImageNet VGG16-bn.  ``load_backbone_weights(...,
  reuse_stem=True)`` instead copies ImageNet conv1_1's RGB weights and bias into
  channels 0-2 (the depth channel keeping its default init); it is not the default.
* PAFEM's pooled branch applies BatchNorm to a 1x1 map, which the official code
  notes fails in training with batch size 1.  Here, in training with a batch of
  one, that single BatchNorm normalises with its running statistics (and does
  not update them) instead of failing; with larger batches and in eval it is
  the usual BatchNorm.
* The position attention uses ``scaled_dot_product_attention`` with scale 1,
  the same function as the official explicit ``bmm``/softmax/``bmm`` (checked in
  the tests) without materialising the HW x HW matrix on GPUs.
* Upsampling of a level to the same size (level 5 is full resolution) is skipped
  (bilinear at scale 1 is the identity), as is the official final resize.

Measured figures (this implementation)
--------------------------------------
* parameters: **26,680,044** (official ``RGBD_sal``, counted with its own
  constructors: 26,678,742 = 26.68 M; the difference is the 1,302 head
  parameters above).  Encoder 14,723,712 (VGG16-bn features without pool5,
  conv1_1 with 4 inputs), PAFEM 7,069,386, laterals 1,568,164, DEDA 3,318,616
  (incl. the 3-channel level-5 convs), dual-branch fuse 166.
* FLOPs per image, ``torch.utils.flop_counter.FlopCounterMode`` on the ``meta``
  device: **58.94 G at 256x256** (58,941,898,752: convolutions 58,828,652,544,
  attention matrix products 113,246,208) and 132.94 G at 384x384 (convolutions
  132.36 G = 66.18 G MACs, official 66.0 G MACs for the 1-channel head).
  Element-wise work (attention gating, BN, PReLU, softmax, resizing) is not counted.
* Equivalence: built with ``out_channels=1`` and the official state dict renamed
  by :func:`convert_official_state_dict` (strict load), ``sigmoid`` of this
  network's output matched the official ``RGBD_sal`` in eval mode to float
  rounding (max difference 6e-8; random weights and BN statistics, 96x128 and
  64x64), and in training mode all eight official outputs (final, S_f, S_b,
  a1..a5) matched to 1.5e-6 at 96x128 and 64x96, checked during development.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.checkpoint_keys import Replacement, rename_keys
from models.normalization import IMAGENET_MEAN, IMAGENET_STD, normalize
from models.padding import pad_to_multiple
from models.capabilities import Capabilities
from models.registry import register_model
from models.weights import Pretrained, load_into, load_state_dict, resolve_weights

__all__ = [
    "ConvBNPReLU",
    "VGG16BNEncoder",
    "PositionAttention",
    "DilatedAttentionBranch",
    "GlobalContextBranch",
    "PAFEM",
    "DEDALevel",
    "DualBranchFuse",
    "DANetOutputs",
    "DANet",
    "load_backbone_weights",
    "convert_official_state_dict",
    "danet",
]

# torchvision vgg16_bn ``features`` layout (44 modules; cfg D with BN): index of the last module of each stage.
# conv1 = features[0:6] (0 is conv1_1), conv2 = [6:13], conv3 = [13:23], conv4 = [23:33], conv5 = [33:43]; 43 = pool5.
_VGG16BN_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_STAGE_ENDS = (5, 12, 22, 32, 42)


def _resize_to(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``) to ``size``; the identity when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------


class ConvBNPReLU(nn.Sequential):
    """Conv (with bias) -> BatchNorm -> PReLU (one slope).  (B,in_ch,H,W) -> (B,out_ch,H,W)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation),
            nn.BatchNorm2d(out_ch),
            nn.PReLU(),
        )


class VGG16BNEncoder(nn.Module):
    """VGG16-bn conv stack with a 4-channel (RGB + depth) conv1_1 and without pool5.

    ``features`` uses torchvision's ``vgg16_bn().features`` indices (0..42), so ImageNet
    state-dict keys (``features.N.*``) load directly; ``features.0`` is the (64,4,3,3) conv1_1.
    Pools are 2x2/2 max-pools (floor).

    Shapes: (B,4,H,W) -> [c1 (B,64,H,W), c2 (B,128,H/2,W/2), c3 (B,256,H/4,W/4),
    c4 (B,512,H/8,W/8), c5 (B,512,H/16,W/16)].
    """

    def __init__(self, in_channels: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for v in _VGG16BN_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(ch, int(v), kernel_size=3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
                ch = int(v)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B,4,H,W) -> [c1, c2, c3, c4, c5] (see the class docstring)."""
        feats: list[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _STAGE_ENDS:
                feats.append(x)
        return feats


# ---------------------------------------------------------------------------
# PAFEM
# ---------------------------------------------------------------------------


class PositionAttention(nn.Module):
    """Position self-attention over all ``h*w`` positions, residual with a zero-initialised gain.

    ``q = query(x)``, ``k = key(x)`` (1x1 convs C -> C/8), ``v = value(x)`` (1x1 C -> C);
    ``out[:, :, p] = sum_j softmax_j(q_p . k_j) v_j`` (no 1/sqrt(d) scaling);
    returns ``gamma * out + x``.  Shapes: (B,C,h,w) -> (B,C,h,w).
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.key = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.value = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """The attended features before the residual: (B,C,h,w) -> (B,C,h,w)."""
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2).unsqueeze(1)  # (B,1,hw,C/8)
        k = self.key(x).flatten(2).transpose(1, 2).unsqueeze(1)  # (B,1,hw,C/8)
        v = self.value(x).flatten(2).transpose(1, 2).unsqueeze(1)  # (B,1,hw,C)
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (B,1,hw,C)
        return out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,C,h,w) -> gamma * attend(x) + x."""
        return self.gamma * self.attend(x) + x


class DilatedAttentionBranch(nn.Module):
    """PAFEM branch: 3x3 conv (dilation d) + BN + PReLU, ``in_ch -> out_ch``, then :class:`PositionAttention`."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int) -> None:
        super().__init__()
        self.conv = ConvBNPReLU(in_ch, out_ch, kernel_size=3, dilation=dilation)
        self.attention = PositionAttention(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,in_ch,h,w) -> (B,out_ch,h,w)."""
        return self.attention(self.conv(x))


class GlobalContextBranch(nn.Module):
    """PAFEM image-level branch: global average pool -> 1x1 conv + BN + PReLU -> broadcast to ``h x w``.

    A batch of one in training cannot be batch-normalised over a 1x1 map; then the BN uses its
    running statistics (without updating them) instead of failing.  Shapes: (B,in_ch,h,w) -> (B,out_ch,h,w).
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,in_ch,h,w) -> (B,out_ch,h,w), constant over positions."""
        y = self.conv(F.adaptive_avg_pool2d(x, 1))
        if self.training and y.shape[0] == 1:
            bn = self.bn
            y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps)
        else:
            y = self.bn(y)
        return self.act(y).expand(-1, -1, *x.shape[-2:])


class PAFEM(nn.Module):
    """Pyramidally attended feature extraction module, on the last encoder feature.

    ``stem``: 3x3 conv+BN+PReLU ``in_ch -> ch``; five ``ch/2`` branches on it: ``branch1`` (1x1
    conv+BN+PReLU), ``branch2/3/4`` (:class:`DilatedAttentionBranch`, dilation 2/4/6) and
    ``pooled`` (:class:`GlobalContextBranch`); ``fuse``: 1x1 conv+BN+PReLU ``5*ch/2 -> ch``
    over their concatenation.  Shapes: (B,in_ch,h,w) -> (B,ch,h,w).
    """

    def __init__(self, in_ch: int = 512, ch: int = 512, dilations: tuple[int, int, int] = (2, 4, 6)) -> None:
        super().__init__()
        mid = ch // 2
        self.stem = ConvBNPReLU(in_ch, ch, kernel_size=3)
        self.branch1 = ConvBNPReLU(ch, mid, kernel_size=1)
        self.branch2 = DilatedAttentionBranch(ch, mid, dilations[0])
        self.branch3 = DilatedAttentionBranch(ch, mid, dilations[1])
        self.branch4 = DilatedAttentionBranch(ch, mid, dilations[2])
        self.pooled = GlobalContextBranch(ch, mid)
        self.fuse = ConvBNPReLU(5 * mid, ch, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,in_ch,h,w) -> (B,ch,h,w)."""
        x = self.stem(x)
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x), self.pooled(x)]
        return self.fuse(torch.cat(branches, dim=1))


# ---------------------------------------------------------------------------
# DEDA decoder
# ---------------------------------------------------------------------------


class DEDALevel(nn.Module):
    """One level of the depth-enhanced dual attention decoder.

    ``attention`` (g): 1x1 conv ``C -> C/2`` + BN + PReLU + 3x3 conv ``C/2 -> 1``;
    ``foreground`` / ``background``: 3x3 conv+BN+PReLU ``C -> out_ch`` (separate weights), or a
    plain 3x3 conv ``C -> out_ch`` at the last level (``final=True``).

    With ``D`` the depth at this level (1 channel), ``F`` the lateral feature and, except at the
    first level, ``P``/``Pb`` the previous foreground/background outputs resized to this level::

        a  = sigmoid(g(F + P + D))
        O  = foreground(P  + F * a * (D + a))
        Ob = background(Pb + F * (1 - a) * (D + 1 - a))

    Shapes: feat (B,C,h,w), depth (B,1,h,w), prev (B,C,h',w') -> O, Ob (B,out_ch,h,w), a (B,1,h,w).
    """

    def __init__(self, in_ch: int, out_ch: int, final: bool = False) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv2d(in_ch, in_ch // 2, kernel_size=1),
            nn.BatchNorm2d(in_ch // 2),
            nn.PReLU(),
            nn.Conv2d(in_ch // 2, 1, kernel_size=3, padding=1),
        )
        if final:
            self.foreground: nn.Module = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
            self.background: nn.Module = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)
        else:
            self.foreground = ConvBNPReLU(in_ch, out_ch)
            self.background = ConvBNPReLU(in_ch, out_ch)

    def forward(
        self,
        feat: torch.Tensor,
        depth: torch.Tensor,
        prev_fg: torch.Tensor | None = None,
        prev_bg: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(O, Ob, a)``; ``prev_fg``/``prev_bg`` are None at the first level (both or neither)."""
        size = feat.shape[-2:]
        d = _resize_to(depth, size)
        if prev_fg is None or prev_bg is None:
            a = torch.sigmoid(self.attention(feat + d))
            fg_in = feat * (a * (d + a))
            bg_in = feat * ((1 - a) * (d + (1 - a)))
        else:
            up_fg, up_bg = _resize_to(prev_fg, size), _resize_to(prev_bg, size)
            a = torch.sigmoid(self.attention(feat + up_fg + d))
            fg_in = up_fg + feat * (a * (d + a))
            bg_in = up_bg + feat * ((1 - a) * (d + (1 - a)))
        return self.foreground(fg_in), self.background(bg_in), a


class DualBranchFuse(nn.Module):
    """``out = -S_b + PReLU(Conv3x3(cat(S_f, -S_b)))``: (B,C,H,W) x 2 -> (B,C,H,W), C = out channels."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, channels, kernel_size=3, padding=1)
        self.act = nn.PReLU()

    def forward(self, fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
        """fg, bg: (B,C,H,W) -> (B,C,H,W)."""
        neg_bg = -bg
        return neg_bg + self.act(self.conv(torch.cat([fg, neg_bg], dim=1)))


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------


class DANetOutputs(NamedTuple):
    """Side outputs (``return_side=True``), the official training-mode outputs."""

    relit: torch.Tensor  # (B,C,H,W) the main output (what forward returns by default)
    foreground: torch.Tensor  # (B,C,H,W) S_f, foreground branch at full resolution
    background: torch.Tensor  # (B,C,H,W) S_b, background branch (enters the output negated)
    attentions: tuple[torch.Tensor, ...]  # a1..a5, (B,1,H/16,W/16) .. (B,1,H,W), after sigmoid


class DANet(nn.Module):
    """DANet with a ``out_channels`` head (3 for relighting; 1 is the official saliency configuration).

    ``forward(rgb, depth)``: rgb (B,3,H,W) in [0,1], depth (B,1,H,W) -> (B,out_ch,H,W), or
    :class:`DANetOutputs` when ``return_side`` is set.  See the module docstring.
    """

    size_multiple = 32

    def __init__(self, out_channels: int = 3, return_side: bool = False) -> None:
        super().__init__()
        self.return_side = return_side
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.encoder = VGG16BNEncoder(in_channels=4)
        self.pafem = PAFEM(512, 512)
        # laterals for levels 2..5: c4 -> 256, c3 -> 128, c2 -> 64, c1 -> 32
        self.lateral = nn.ModuleList(
            [ConvBNPReLU(512, 256), ConvBNPReLU(256, 128), ConvBNPReLU(128, 64), ConvBNPReLU(64, 32)]
        )
        widths = (512, 256, 128, 64, 32)
        self.deda = nn.ModuleList(
            [DEDALevel(c, c // 2) for c in widths[:-1]] + [DEDALevel(widths[-1], out_channels, final=True)]
        )
        self.dual_fuse = DualBranchFuse(out_channels)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor | DANetOutputs:
        """rgb (B,3,H,W) in [0,1], depth (B,1,H,W) -> (B,out_ch,H,W) (or :class:`DANetOutputs`)."""
        h, w = rgb.shape[-2:]
        x = normalize(rgb, self.mean, self.std)
        m = self.size_multiple
        x, depth = pad_to_multiple(x, m), pad_to_multiple(depth, m)

        c1, c2, c3, c4, c5 = self.encoder(torch.cat([x, depth], dim=1))
        feats = [self.pafem(c5)] + [lat(c) for lat, c in zip(self.lateral, (c4, c3, c2, c1))]

        fg = bg = None
        attentions = []
        for level, feat in zip(self.deda, feats):
            fg, bg, a = level(feat, depth, fg, bg)
            attentions.append(a)
        out = self.dual_fuse(fg, bg)  # level 5 is at full (padded) resolution

        out = out[..., :h, :w]
        if not self.return_side:
            return out
        hp, wp = x.shape[-2:]
        # each attention map cropped to the part covering the unpadded image (ceil at coarse levels)
        atts = tuple(a[..., : -(-h * a.shape[-2] // hp), : -(-w * a.shape[-1] // wp)] for a in attentions)
        return DANetOutputs(out, fg[..., :h, :w], bg[..., :h, :w], atts)


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------


def load_backbone_weights(model: DANet, state: dict[str, torch.Tensor], *, source: str, reuse_stem: bool = False) -> None:
    """Load a torchvision ``vgg16_bn`` ImageNet state dict into ``model.encoder``.

    All ``features.*`` layers but conv1_1 load as they are (classifier ignored).  With
    ``reuse_stem`` the (64,3,3,3) conv1_1 weight and its bias go into the RGB input channels
    0-2 of the 4-channel conv1_1, the depth channel 3 keeping its current (default) init; with
    ``reuse_stem=False`` conv1_1 is left entirely as built (the official code's behaviour).
    """
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    load_into(model.encoder.features, feats, source=source, skip=("0.",))
    if reuse_stem:
        conv = model.encoder.features[0]
        weight, bias = feats.get("0.weight"), feats.get("0.bias")
        if weight is None or bias is None or tuple(weight.shape) != (64, 3, 3, 3):
            from relight_base.errors import ConfigError

            raise ConfigError(f"checkpoint {source} does not fit this network: no (64,3,3,3) features.0.weight/bias")
        with torch.no_grad():
            conv.weight[:, :3].copy_(weight)
            conv.bias.copy_(bias)


_OFFICIAL_STAGE_OFFSETS = {"1": 1, "2": 6, "3": 13, "4": 23, "5": 33}
_OFFICIAL_RULES: dict[str, Replacement] = {
    r"^conv0\.": "encoder.features.0.",
    r"^conv([1-5])\.(\d+)\.": lambda m: f"encoder.features.{_OFFICIAL_STAGE_OFFSETS[m[1]] + int(m[2])}.",
    r"^dem1\.down_conv\.": "pafem.stem.",
    r"^dem1\.conv1\.": "pafem.branch1.",
    r"^dem1\.conv([234])\.": r"pafem.branch\1.conv.",
    r"^dem1\.(query|key|value)_conv([234])\.": r"pafem.branch\2.attention.\1.",
    r"^dem1\.gamma([234])$": r"pafem.branch\1.attention.gamma",
    r"^dem1\.conv5\.([012])\.": lambda m: f"pafem.pooled.{('conv', 'bn', 'act')[int(m[1])]}.",
    r"^dem1\.fuse\.": "pafem.fuse.",
    r"^dem([2-5])\.": lambda m: f"lateral.{int(m[1]) - 2}.",
    r"^fuse_([1-5])\.": lambda m: f"deda.{int(m[1]) - 1}.attention.",
    r"^output5(_rev)?\.0\.": lambda m: f"deda.4.{'background' if m[1] else 'foreground'}.",
    r"^output([1-4])(_rev)?\.": lambda m: f"deda.{int(m[1]) - 1}.{'background' if m[2] else 'foreground'}.",
    r"^fuseout\.0\.": "dual_fuse.conv.",
    r"^fuseout\.1\.": "dual_fuse.act.",
}


def convert_official_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of an official ``RGBD_sal`` (DANet, VGG16) state dict to :class:`DANet` keys.

    ``module.`` prefixes are dropped.  The result loads strictly into ``DANet(out_channels=1)``
    (the official saliency head); for the 3-channel head, drop the ``deda.4.foreground``,
    ``deda.4.background`` and ``dual_fuse.conv`` entries and load non-strictly.
    """
    return rename_keys(state_dict, _OFFICIAL_RULES)


@register_model("danet", capabilities=Capabilities(pretrained=True))
def danet(pretrained: Pretrained = False) -> nn.Module:
    """DANet (ECCV 2020 RGB-D saliency): single-stream VGG16-bn, PAFEM, depth-enhanced dual attention; 3-channel head.

    ``pretrained`` (auto | true | false | path, see :mod:`models.weights`) loads ImageNet
    VGG16-bn weights into the encoder, as the official code does; conv1_1's RGB weights go into
    the first three input channels of the 4-channel conv1_1, whose depth channel keeps its
    default init (see the module docstring).  What was loaded is listed in ``model.pretrained_info``.
    """
    model = DANet()
    choice = resolve_weights("vgg16_bn", pretrained, key="weights.backbone")
    if choice.path is not None:
        load_backbone_weights(model, load_state_dict(choice.path), source=str(choice.path))
    model.pretrained_info = [f"VGG16-bn encoder (conv1_1 RGB channels; depth channel default init) {choice.describe()}"]
    return model
