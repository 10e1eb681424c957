"""MBNet: the multi-modal bifurcated network for depth-guided image relighting.

Yang, Chen, Luo and Kuo, "Multi-modal Bifurcated Network for Depth Guided Image
Relighting", NTIRE 2021 workshop (winner of Track 1, one-to-one relighting).
MBNet is HDFNet-R50 (Pang et al., ECCV 2020, an RGB-D salient-object network,
``lartpang/HDFNet``) with a three-channel head and a global residual.  This is a
re-implementation from the paper (sections 3.1-3.2) and the authors' released
inference code, ``weitingchen83/NTIRE2021-Depth-Guided-Image-Relighting-MBNet``
(``HDFNet_Res50`` in ``code/hdfnet.py``, the DDPM and its parts in
``code/MyModules.py``); the repository has no training code.

Structure (shapes for an ``H x W`` input, ``H`` and ``W`` multiples of 32)::

    rgb (B,3,H,W) --ResNet-50-->  r2 64@H/2  r4 256@H/4  r8 512@H/8  r16 1024@H/16  r32 2048@H/32
    depth (B,1,H,W) --ResNet-50 (1-channel stem)--> d2 .. d32, same shapes
    lateral 1x1 convs:  l_s = Conv1x1(r_s -> 64)             for s in 2, 4, 8, 16, 32
    guidance:           g_s = DenseTransLayer(C_s, 64)(r_s, d_s)   for s in 8, 16, 32
    decoder:            u32 = BasicConv(l32)
                        u16 = BasicConv(up(DDPM(u32, g32)) + l16)
                        u8  = BasicConv(up(DDPM(u16, g16)) + l8)
                        u4  = BasicConv(up(DDPM(u8,  g8))  + l4)
                        u2  = BasicConv_64->32(up(u4) + l2)
                        map = Conv1x1_32->3(BasicConv_32->32(up2x(u2)))     (B,3,H,W)

Adapter contract (see :mod:`models.registry`)
--------------------------------------------
* ``forward(rgb, depth) -> map``: ``rgb`` (B,3,H,W) float in [0,1] exactly as
  the official demo feeds it (``ToTensor``, **no ImageNet normalisation**);
  ``depth`` (B,1,H,W) the raw depth map (the dataset's ``normalized_depth``),
  unscaled.
* The output is the 3-channel head output, the **residual map**, without the
  official final ``relu(rgb + map)``.  The harness applies residual learning as
  a switch: with ``residual: true`` (MBNet's setting, paper section 3.1) it
  outputs ``relu(rgb + map)``, which is exactly the official network's output;
  without it, the map itself is the prediction.
* Any input size: when ``H`` or ``W`` is not a multiple of 32, both inputs are
  padded on the bottom/right (``replicate`` by default, ``reflect`` optional) to
  the next multiple of 32 and the output is cropped back to ``H x W``.
  The official code has no padding (its inputs are 1024x1024).

Measured figures (this implementation, against the official network's)
----------------------------------------------------------------------
* parameters: **153,192,067**, identical to the official ``HDFNet_Res50``
  (153.19 M): RGB trunk 23,508,032 (torchvision ResNet-50 without fc), depth
  trunk 23,501,760 (1-channel stem), DenseTransLayers 78,365,376 (2048) +
  20,492,992 (1024) + 5,712,576 (512), DDPMs 3 x 395,104, laterals and
  decoder the rest.
* FLOPs per image, counted with ``torch.utils.flop_counter.FlopCounterMode``
  (convolutions and matrix products only, as for the official figure):
  **57.03 G at 256x256** (57,030,115,328; official 57.0 G) and **912.48 G at
  1024x1024** (912,481,845,248; official 912.5 G).  The dynamic filter (KTU)
  is element-wise work the counter does not see, in the official code and here
  alike.
* Equivalence: with the official weights renamed by
  :func:`convert_official_state_dict` (strict load), ``relu(rgb + MBNet()(rgb, depth))``
  matched the official ``HDFNet_Res50`` output to 1.2e-7 (random weights and BN
  statistics, eval mode, 128x160 and 96x224 inputs), checked during development.

Details taken from the official code where the paper is silent or loose
-----------------------------------------------------------------------
* Skips are *added*, not concatenated (the paper's section 3.1 says
  "concatenate"); the upsampling before each add is bilinear with
  ``align_corners=False`` to the skip's size, the final x2 is bilinear with
  ``align_corners=True``.
* The DDPM's ``x`` (the paper's ``(f_RGB)_D``, "from encoders") is the running
  decoder feature; at 1/32 that is ``BasicConv(lateral(r32))``.
* The KGU has no normalisation or activation between its 3x3 conv and the
  DenseLayer's 1x1 reduction, and the generated kernels are not normalised.
* The residual is ``relu(rgb + map)`` (the paper: "the difference between the
  original image and the relighted image").

Dynamic filter formulations: ``MBNet(ktu_mode="shifted")`` (default) sums 9
shifted views of the zero-padded input times the kernel taps;
``ktu_mode="unfold"`` is the ``F.unfold`` reference (9 copies of the input).
They agree to float rounding; the shifted form was about 5x faster on CPU.

Module names follow the paper's Figure 3: :class:`DDPM`,
:class:`KernelGenerationUnit` (KGU), :class:`KernelTransformationUnit` (KTU),
:class:`DenseTransLayer`, :class:`DenseLayer`, :class:`BasicConv`,
:class:`MBNet`.  The two trunks are ``model.rgb_encoder`` and
``model.depth_encoder``; their state-dict keys are torchvision's ``resnet50``
keys (``conv1``, ``bn1``, ``layer1`` .. ``layer4``; no ``fc``), so ImageNet
weights can be loaded into them (for the depth trunk, all but ``conv1.weight``).
"""

from __future__ import annotations

import re
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from models.checkpoint_keys import RenameRule, rename_keys
from models.padding import pad_to_multiple
from models.capabilities import RELIGHTING, Capabilities
from models.registry import register_model
from models.weights import Pretrained, load_into, load_state_dict, resolve_weights

__all__ = [
    "BasicConv",
    "DenseLayer",
    "DenseTransLayer",
    "KernelGenerationUnit",
    "KernelTransformationUnit",
    "DDPMBranch",
    "DDPM",
    "ResNet50Trunk",
    "MBNet",
    "dynamic_filter_unfold",
    "dynamic_filter_shifted",
    "convert_official_state_dict",
    "mbnet",
]

KTUMode = Literal["shifted", "unfold"]


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------


class BasicConv(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> ReLU.  (B,in_ch,H,W) -> (B,out_ch,H,W) for the default 3x3, padding 1."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, padding: int | None = None) -> None:
        pad = kernel_size // 2 if padding is None else padding
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=pad, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class DenseLayer(nn.Module):
    """Densely connected block with a bottleneck and a fusion conv.

    ``reduce``: 1x1 conv (with bias) ``in_ch -> mid`` with ``mid = out_ch // down_factor``;
    then ``k`` BasicConv 3x3 layers, layer ``i`` (1-based) taking the concatenation of the
    ``i - 1`` earlier layer outputs and the reduced input (``mid * i -> mid`` channels);
    finally ``fuse``: BasicConv 3x3 over concat(input, last dense output),
    ``in_ch + mid -> out_ch``.

    Shapes: (B,in_ch,H,W) -> (B,out_ch,H,W).
    """

    def __init__(self, in_ch: int, out_ch: int, down_factor: int = 4, k: int = 4) -> None:
        super().__init__()
        mid = out_ch // down_factor
        self.reduce = nn.Conv2d(in_ch, mid, kernel_size=1)
        self.dense = nn.ModuleList(BasicConv(mid * i, mid) for i in range(1, k + 1))
        self.fuse = BasicConv(in_ch + mid, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,in_ch,H,W) -> (B,out_ch,H,W)."""
        reduced = self.reduce(x)
        outputs: list[torch.Tensor] = []
        for layer in self.dense:
            outputs.append(layer(torch.cat([*outputs, reduced], dim=1)))
        return self.fuse(torch.cat([x, outputs[-1]], dim=1))


class DenseTransLayer(nn.Module):
    """RGB-depth fusion producing the DDPM guidance ``f_E`` at one encoder level.

    ``s = BasicConv3x3(C->C)(rgb + depth)``; ``out = BasicConv3x3(C->out_ch)(DenseLayer(s) + s)``
    where the DenseLayer is ``DenseLayer(C, C, down_factor=C // out_ch)`` (its bottleneck has
    ``out_ch`` channels).

    Shapes: rgb, depth (B,C,h,w) -> (B,out_ch,h,w).
    """

    def __init__(self, in_ch: int, out_ch: int = 64) -> None:
        super().__init__()
        self.merge = BasicConv(in_ch, in_ch)
        self.dense = DenseLayer(in_ch, in_ch, down_factor=in_ch // out_ch)
        self.project = BasicConv(in_ch, out_ch)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """rgb, depth: (B,C,h,w) -> (B,out_ch,h,w)."""
        if rgb.shape != depth.shape:
            raise ValueError(f"DenseTransLayer: rgb {tuple(rgb.shape)} and depth {tuple(depth.shape)} differ")
        s = self.merge(rgb + depth)
        return self.project(self.dense(s) + s)


# ---------------------------------------------------------------------------
# the dynamic filter (inside the KTU): two formulations
# ---------------------------------------------------------------------------


def dynamic_filter_unfold(x: torch.Tensor, kernels: torch.Tensor, dilation: int) -> torch.Tensor:
    """Reference per-pixel, per-channel 3x3 filter at ``dilation`` (zero padding ``dilation``).

    x: (B,C,H,W); kernels: (B,C*9,H,W), channel ``c*9 + t`` holding tap ``t = 3*i + j``
    (row offset ``(i-1)*dilation``, column offset ``(j-1)*dilation``) of channel ``c``.
    Returns (B,C,H,W): ``out[b,c,y,x] = sum_t kernels[b,c*9+t,y,x] * x[b,c,y+dy_t,x+dx_t]``.

    Materialises the 9 neighbourhood copies with ``F.unfold`` (B,C*9,H*W).
    """
    b, c, h, w = x.shape
    patches = F.unfold(x, kernel_size=3, dilation=dilation, padding=dilation).view(b, c, 9, h, w)
    return (patches * kernels.view(b, c, 9, h, w)).sum(dim=2)


def dynamic_filter_shifted(x: torch.Tensor, kernels: torch.Tensor, dilation: int) -> torch.Tensor:
    """Same result as :func:`dynamic_filter_unfold` without the 9 copies of ``x``.

    Accumulates, over the 9 taps, the shifted window (a view into the zero-padded ``x``)
    times the tap's kernel channel.  x: (B,C,H,W); kernels: (B,C*9,H,W) -> (B,C,H,W).
    """
    b, c, h, w = x.shape
    d = dilation
    padded = F.pad(x, (d, d, d, d))
    taps = kernels.view(b, c, 9, h, w)
    out = None
    for t in range(9):
        i, j = divmod(t, 3)
        window = padded[:, :, i * d : i * d + h, j * d : j * d + w]
        term = window * taps[:, :, t]
        out = term if out is None else out + term
    return out


_DYNAMIC_FILTERS = {"unfold": dynamic_filter_unfold, "shifted": dynamic_filter_shifted}


# ---------------------------------------------------------------------------
# DDPM (paper Fig. 3)
# ---------------------------------------------------------------------------


class KernelGenerationUnit(nn.Module):
    """KGU: guidance ``f_E`` -> a 3x3 kernel for every pixel and every one of ``x_ch`` channels.

    3x3 conv (bias) ``g_ch -> g_ch`` -> DenseLayer(g_ch, g_ch, down_factor=4, k=4)
    -> 1x1 conv ``g_ch -> x_ch * 9``.

    Shapes: (B,g_ch,h,w) -> (B,x_ch*9,h,w); channel ``c*9 + t`` is tap ``t`` of channel ``c``.
    """

    def __init__(self, g_ch: int = 64, x_ch: int = 16, dense_layers: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(g_ch, g_ch, 3, padding=1)
        self.dense = DenseLayer(g_ch, g_ch, down_factor=4, k=dense_layers)
        self.to_kernels = nn.Conv2d(g_ch, x_ch * 9, kernel_size=1)

    def forward(self, guidance: torch.Tensor) -> torch.Tensor:
        """guidance: (B,g_ch,h,w) -> kernels (B,x_ch*9,h,w)."""
        return self.to_kernels(self.dense(self.conv(guidance)))


class KernelTransformationUnit(nn.Module):
    """KTU: apply the generated kernels as a dilated dynamic depthwise filter, then a 3x3 conv.

    The 3x3 kernels are placed at ``dilation`` (zeros inserted between taps), giving the
    3x3 / 7x7 / 11x11 neighbourhoods of the paper for dilations 1 / 3 / 5.  No kernel
    normalisation.  ``mode`` picks the filter formulation: ``"shifted"`` (default, no 9x
    copy of the input) or ``"unfold"`` (reference).  Both give the same result.

    Shapes: x (B,ch,h,w), kernels (B,ch*9,h,w) -> (B,ch,h,w).
    """

    def __init__(self, ch: int = 16, dilation: int = 1, mode: KTUMode = "shifted") -> None:
        super().__init__()
        if mode not in _DYNAMIC_FILTERS:
            raise ValueError(f"KernelTransformationUnit: mode must be one of {sorted(_DYNAMIC_FILTERS)}, got {mode!r}")
        self.dilation = dilation
        self.mode: KTUMode = mode
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        """x: (B,ch,h,w); kernels: (B,ch*9,h,w) -> (B,ch,h,w)."""
        filtered = _DYNAMIC_FILTERS[self.mode](x, kernels, self.dilation)
        return self.conv(filtered)

    def extra_repr(self) -> str:
        return f"dilation={self.dilation}, mode={self.mode!r}"


class DDPMBranch(nn.Module):
    """One DDPM branch (``f_K^i`` in the paper): KGU on the guidance, KTU on ``x_0``.

    Shapes: x0 (B,x_ch,h,w), guidance (B,g_ch,h,w) -> (B,x_ch,h,w).
    """

    def __init__(self, x_ch: int = 16, g_ch: int = 64, dilation: int = 1, mode: KTUMode = "shifted") -> None:
        super().__init__()
        self.kgu = KernelGenerationUnit(g_ch, x_ch)
        self.ktu = KernelTransformationUnit(x_ch, dilation, mode)

    def forward(self, x0: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
        """x0: (B,x_ch,h,w); guidance: (B,g_ch,h,w) -> (B,x_ch,h,w)."""
        return self.ktu(x0, self.kgu(guidance))


class DDPM(nn.Module):
    """Dynamic Dilated Pyramid Module.

    ``x_0 = Conv1x1(x_ch -> out_ch/4)(x)``; three branches (dilations 1, 3, 5) each filter
    ``x_0`` with kernels generated from the guidance ``y``; output
    ``BasicConv3x3(out_ch -> out_ch)(concat(x_0, f_K^1, f_K^3, f_K^5))``.

    Shapes: x (B,x_ch,h,w) decoder feature, y (B,g_ch,h,w) guidance -> (B,out_ch,h,w).
    Defaults are MBNet's DDPM(64, 64, 64).
    """

    dilations = (1, 3, 5)

    def __init__(self, x_ch: int = 64, g_ch: int = 64, out_ch: int = 64, mode: KTUMode = "shifted") -> None:
        super().__init__()
        mid = out_ch // 4
        self.reduce = nn.Conv2d(x_ch, mid, kernel_size=1)
        self.branches = nn.ModuleList(DDPMBranch(mid, g_ch, d, mode) for d in self.dilations)
        self.fuse = BasicConv(mid * (1 + len(self.dilations)), out_ch)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x: (B,x_ch,h,w); y: (B,g_ch,h,w) -> (B,out_ch,h,w)."""
        x0 = self.reduce(x)
        return self.fuse(torch.cat([x0, *(branch(x0, y) for branch in self.branches)], dim=1))


# ---------------------------------------------------------------------------
# encoders and the network
# ---------------------------------------------------------------------------


class ResNet50Trunk(ResNet):
    """torchvision ResNet-50 without ``avgpool`` and ``fc``, returning five feature levels.

    State-dict keys are torchvision's ``resnet50`` keys minus ``fc.*``.  With
    ``in_channels != 3`` the stem ``conv1`` is a fresh ``in_channels``-channel 7x7 conv
    (PyTorch's default initialisation, as in the official depth stream).

    forward: (B,in_channels,H,W) -> [64@H/2 (after conv1+bn1+relu), 256@H/4 (maxpool+layer1),
    512@H/8, 1024@H/16, 2048@H/32].
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__(Bottleneck, [3, 4, 6, 3])
        del self.avgpool, self.fc
        if in_channels != 3:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        """x: (B,in_channels,H,W) -> the five levels listed in the class docstring."""
        f2 = self.relu(self.bn1(self.conv1(x)))
        f4 = self.layer1(self.maxpool(f2))
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        f32 = self.layer4(f16)
        return [f2, f4, f8, f16, f32]


def _upsample_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to ``ref``'s spatial size (align_corners=False, as the official skip adds)."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class MBNet(nn.Module):
    """Multi-modal bifurcated network (HDFNet-R50 with a 3-channel head).

    forward(rgb (B,3,H,W) in [0,1], depth (B,1,H,W)) -> residual map (B,3,H,W); see the
    module docstring for the contract, the padding and the residual switch.

    ``ktu_mode`` selects the dynamic-filter formulation of every KTU ("shifted" or
    "unfold"); ``pad_mode`` the padding to a multiple of 32 ("replicate" or "reflect").
    """

    levels = (2, 4, 8, 16, 32)
    stage_channels = (64, 256, 512, 1024, 2048)

    def __init__(
        self,
        width: int = 64,
        ktu_mode: KTUMode = "shifted",
        pad_mode: Literal["replicate", "reflect"] = "replicate",
    ) -> None:
        super().__init__()
        if pad_mode not in ("replicate", "reflect"):
            raise ValueError(f"MBNet: pad_mode must be 'replicate' or 'reflect', got {pad_mode!r}")
        self.pad_mode = pad_mode
        self.rgb_encoder = ResNet50Trunk(in_channels=3)
        self.depth_encoder = ResNet50Trunk(in_channels=1)
        # lateral 1x1 convs (with bias), one per RGB level: lateral[i] is level levels[i]
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, kernel_size=1) for c in self.stage_channels)
        # RGB-depth fusion at conv3 / conv4 / conv5 (1/8, 1/16, 1/32)
        self.fusion8 = DenseTransLayer(512, width)
        self.fusion16 = DenseTransLayer(1024, width)
        self.fusion32 = DenseTransLayer(2048, width)
        self.ddpm32 = DDPM(width, width, width, ktu_mode)
        self.ddpm16 = DDPM(width, width, width, ktu_mode)
        self.ddpm8 = DDPM(width, width, width, ktu_mode)
        # decoder convs, named by the scale they run at
        self.decode32 = BasicConv(width, width)
        self.decode16 = BasicConv(width, width)
        self.decode8 = BasicConv(width, width)
        self.decode4 = BasicConv(width, width)
        self.decode2 = BasicConv(width, width // 2)
        self.decode1 = BasicConv(width // 2, width // 2)
        self.head = nn.Conv2d(width // 2, 3, kernel_size=1)

    def set_ktu_mode(self, mode: KTUMode) -> None:
        """Switch every KTU to the ``"shifted"`` or ``"unfold"`` dynamic filter."""
        if mode not in _DYNAMIC_FILTERS:
            raise ValueError(f"ktu mode must be one of {sorted(_DYNAMIC_FILTERS)}, got {mode!r}")
        for module in self.modules():
            if isinstance(module, KernelTransformationUnit):
                module.mode = mode

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """rgb (B,3,H,W) in [0,1], depth (B,1,H,W) -> residual map (B,3,H,W) (no final relu(rgb + map))."""
        h, w = rgb.shape[-2:]
        rgb_p, depth_p = pad_to_multiple(rgb, 32, self.pad_mode), pad_to_multiple(depth.to(rgb.dtype), 32, self.pad_mode)

        r2, r4, r8, r16, r32 = self.rgb_encoder(rgb_p)
        _, _, d8, d16, d32 = self.depth_encoder(depth_p)

        g8 = self.fusion8(r8, d8)  # (B,64,H/8,W/8)
        g16 = self.fusion16(r16, d16)  # (B,64,H/16,W/16)
        g32 = self.fusion32(r32, d32)  # (B,64,H/32,W/32)
        l2, l4, l8, l16, l32 = (lat(f) for lat, f in zip(self.lateral, (r2, r4, r8, r16, r32)))

        u32 = self.decode32(l32)
        u16 = self.decode16(_upsample_to(self.ddpm32(u32, g32), l16) + l16)
        u8 = self.decode8(_upsample_to(self.ddpm16(u16, g16), l8) + l8)
        u4 = self.decode4(_upsample_to(self.ddpm8(u8, g8), l4) + l4)
        u2 = self.decode2(_upsample_to(u4, l2) + l2)  # (B,32,H/2,W/2)
        u1 = self.decode1(F.interpolate(u2, scale_factor=2, mode="bilinear", align_corners=True))
        out = self.head(u1)  # (B,3,H_pad,W_pad)
        return out[..., :h, :w]


# ---------------------------------------------------------------------------
# the authors' released checkpoint
# ---------------------------------------------------------------------------

_OFFICIAL_LEVELS = {"2": "0", "4": "1", "8": "2", "16": "3", "32": "4"}  # scale -> index in MBNet.lateral
_OFFICIAL_STAGES = {"8": "2", "16": "3", "32": "4"}  # scale -> torchvision layer number
_OFFICIAL_RULES: list[RenameRule] = [
    # encoders: encoder2 = (conv1, bn1, relu), encoder4 = (maxpool, layer1), encoder8/16/32 = layer2/3/4
    (re.compile(r"^(depth_)?encoder2\.0\."), lambda m: f"{'depth' if m[1] else 'rgb'}_encoder.conv1."),
    (re.compile(r"^(depth_)?encoder2\.1\."), lambda m: f"{'depth' if m[1] else 'rgb'}_encoder.bn1."),
    (re.compile(r"^(depth_)?encoder4\.1\."), lambda m: f"{'depth' if m[1] else 'rgb'}_encoder.layer1."),
    (
        re.compile(r"^(depth_)?encoder(8|16|32)\."),
        lambda m: f"{'depth' if m[1] else 'rgb'}_encoder.layer{_OFFICIAL_STAGES[m[2]]}.",
    ),
    (re.compile(r"^trans(\d+)\."), lambda m: f"lateral.{_OFFICIAL_LEVELS[m[1]]}."),
    (re.compile(r"^depth_trans(\d+)\."), lambda m: f"fusion{m[1]}."),
    (re.compile(r"^upconv(\d+)\."), lambda m: f"decode{m[1]}."),
    (re.compile(r"^selfdc_(\d+)\."), lambda m: f"ddpm{m[1]}."),
    (re.compile(r"^classifier\."), lambda m: "head."),
    (re.compile(r"\.branch_([135])\.fuse\."), lambda m: f".branches.{'135'.index(m[1])}.ktu.conv."),
    (re.compile(r"\.branch_([135])\."), lambda m: f".branches.{'135'.index(m[1])}."),
    (re.compile(r"\.gernerate_kernel\.0\."), lambda m: ".kgu.conv."),
    (re.compile(r"\.gernerate_kernel\.1\."), lambda m: ".kgu.dense."),
    (re.compile(r"\.gernerate_kernel\.2\."), lambda m: ".kgu.to_kernels."),
    (re.compile(r"\.fuse_down_mul\."), lambda m: ".merge."),
    (re.compile(r"\.res_main\."), lambda m: ".dense."),
    (re.compile(r"\.fuse_main\."), lambda m: ".project."),
    (re.compile(r"\.down_input\."), lambda m: ".reduce."),
    (re.compile(r"\.down\."), lambda m: ".reduce."),
    (re.compile(r"\.denseblock\."), lambda m: ".dense."),
    (re.compile(r"\.basicconv\."), lambda m: "."),
]


def convert_official_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of an official ``HDFNet_Res50`` state dict to this module's :class:`MBNet` keys.

    Accepts the authors' checkpoint layout (``{"state_dict": ...}`` or the bare dict, with or
    without a ``module.`` prefix).  The renamed dict loads with ``strict=True``; the resulting
    network equals the official one (``relu(rgb + MBNet(...)(rgb, depth))``), checked to 1.2e-7
    on random weights during development.
    """
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    return rename_keys(state_dict, _OFFICIAL_RULES)


# bench perf's grouping of MBNet's children: where a forward pass spends its time (every ddpm* child under "DDPMs")
TIME_BREAKDOWN = {
    "rgb_encoder": "RGB ResNet-50", "depth_encoder": "depth ResNet-50", "fusion": "DenseTransLayers",
    "ddpm": "DDPMs", "decode": "decoder", "head": "decoder", "lateral": "lateral 1x1",
}


@register_model("mbnet", capabilities=Capabilities(tags=(RELIGHTING,), pretrained=True, time_breakdown=TIME_BREAKDOWN))
def mbnet(pretrained: Pretrained = False) -> nn.Module:
    """MBNet (NTIRE 2021 winner): two ResNet-50 streams, dense RGB-D fusion, DDPMs; outputs the residual map.

    ``pretrained`` (auto | true | false | path, see :mod:`models.weights`) loads ImageNet
    ResNet-50 weights into both trunks, as the paper does; the depth trunk keeps its fresh
    1-channel stem.  What was loaded is listed in ``model.pretrained_info``.
    """
    model = MBNet()
    choice = resolve_weights("resnet50", pretrained, key="weights.backbone")
    if choice.path is not None:
        state = load_state_dict(choice.path)
        load_into(model.rgb_encoder, state, source=str(choice.path))
        load_into(model.depth_encoder, state, source=str(choice.path), skip=("conv1.",))
    model.pretrained_info = [f"ResNet-50 x2 (RGB, depth minus stem) {choice.describe()}"]
    return model
