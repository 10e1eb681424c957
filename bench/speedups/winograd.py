"""Winograd F(4x4, 3x3) convolution for inference: the same 3x3 convolution with 4x fewer multiplications.

A 3x3, stride-1, padding-1 convolution over ``C_in -> C_out`` channels is computed per 6x6 input tile
(producing a 4x4 output tile) as (Lavin and Gray, "Fast Algorithms for Convolutional Neural
Networks", CVPR 2016)::

    Y_tile = A^T [ (G g G^T) * (B^T d B) ] A        summed over input channels

The weight transform ``U = G g G^T`` (36 values per filter, four times the weight's memory) is done once,
in float64, when a feature map first needs it: a model timed or scored only on maps below
:data:`MIN_PIXELS` (MBNet's deep layers at 64 px) never holds it.  Per call: the input transform ``B^T d B`` as
one depthwise convolution (36 fixed 6x6 kernels per channel, stride 4), one batched product of 36
``(C_out x C_in) @ (C_in x tiles)`` GEMMs, and the output transform ``A^T M A`` as one small matrix product.  The GEMMs do 36/(16*9) = 1/4
of the direct convolution's multiply-adds; the transforms are linear in the data size, so the
saving is largest for many channels on small feature maps: MBNet's DenseTransLayer convolutions
(512..2112 channels at 1/8..1/32 resolution), which dominate its run time.

Feature maps under :data:`MIN_PIXELS` pixels take the direct convolution (the module keeps the weight
for them).  Numerics: float32 results differ from ``F.conv2d`` by rounding only, about 1e-5 of the
output's magnitude (tested within 1e-4).  Inference only: the module's tensors are buffers, not
parameters, and it refuses inputs that require grad.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

TILE = 4  # output tile side m of F(m x m, 3 x 3)
_ALPHA = TILE + 2  # input tile side

# F(4, 3) transform matrices (interpolation points 0, +-1, +-2, infinity).
_BT = torch.tensor(
    [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
     [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
_G = torch.tensor(
    [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
     [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
_AT = torch.tensor(
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], dtype=torch.float64)

# Minimum in_channels * out_channels for prepare_for_inference to convert a convolution: below it the
# transforms cost more than the saved multiply-adds on CPU (measured by benchmarks/conv_speed.py).
MIN_CHANNEL_PRODUCT = 256 * 256
# Feature maps smaller than this many pixels (e.g. 8x8: four tiles) run the direct convolution: there the
# padding to whole tiles and the transforms cost more than they save (benchmarks/conv_speed.py, 2048x2048@8).
MIN_PIXELS = 16 * 16


def is_winograd_candidate(conv: nn.Module) -> bool:
    """A plain 2-D 3x3 convolution that :class:`WinogradConv2d` computes exactly (stride 1, padding 1)."""
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.padding == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )


class WinogradConv2d(nn.Module):
    """Inference-only F(4x4,3x3) replacement of a 3x3 ``nn.Conv2d`` (stride 1, padding 1, groups 1).

    forward: (B,C_in,H,W) float -> (B,C_out,H,W), any H and W (padded to whole tiles internally),
    any memory format; equals ``F.conv2d(x, weight, bias, padding=1)`` to float rounding.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        out_ch, in_ch, kh, kw = weight.shape
        if (kh, kw) != (3, 3):
            raise ValueError(f"WinogradConv2d: needs a 3x3 kernel, got {kh}x{kw}")
        self.in_channels, self.out_channels = in_ch, out_ch
        self.register_buffer("weight", weight.detach().clone())  # U is made from it; maps below MIN_PIXELS use it
        self._u: torch.Tensor | None = None  # the transformed weight, (36, C_out, C_in), made on first use
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.register_buffer("bt", torch.kron(_BT, _BT).to(weight.dtype))  # (36, 36): vec(B^T d B) = kron @ vec(d)
        self.register_buffer("at", torch.kron(_AT, _AT).to(weight.dtype))  # (16, 36)
        self._kernels: torch.Tensor | None = None  # input-transform kernels, built on first use

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> "WinogradConv2d":
        """Build from a trained convolution; raises ValueError for anything but 3x3/stride 1/padding 1/groups 1."""
        if not is_winograd_candidate(conv):
            raise ValueError(
                f"WinogradConv2d: {conv} is not a 3x3 convolution with stride 1, padding 1, dilation 1, "
                "groups 1 and zero padding"
            )
        return cls(conv.weight, conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,C_in,H,W) -> (B,C_out,H,W)."""
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError("WinogradConv2d is inference-only; use the original nn.Conv2d for training")
        b, c, h, w = x.shape
        if h * w < MIN_PIXELS:
            return F.conv2d(x, self.weight, self.bias, padding=1)
        th, tw = -(-h // TILE), -(-w // TILE)
        out = torch.empty((b, self.out_channels, h, w), dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last if _is_channels_last(x) else torch.contiguous_format)
        padded = F.pad(x.contiguous(), (1, tw * TILE + 1 - w, 1, th * TILE + 1 - h))  # (B,C,4th+2,4tw+2)
        for i in range(b):
            out[i] = self._one(padded[i], th, tw)[:, :h, :w]
        return out

    def _one(self, padded: torch.Tensor, th: int, tw: int) -> torch.Tensor:
        """padded: (C_in, 4*th+2, 4*tw+2) contiguous -> (C_out, 4*th, 4*tw)."""
        c = padded.shape[0]
        # input transform B^T d B of every 6x6 tile (stride 4) of every channel, as one depthwise conv
        # with 36 fixed 6x6 kernels per channel: (1, C*36, th, tw), channel ch*36 + k
        v = F.conv2d(padded.unsqueeze(0), self.input_kernels(c), stride=TILE, groups=c)
        v = v.view(c, _ALPHA * _ALPHA, th * tw).transpose(0, 1)  # (36, C_in, tiles), a view
        m = torch.bmm(self.u, v)  # (36, C_out, tiles): the element-wise products, summed over channels
        y = (self.at @ m.view(_ALPHA * _ALPHA, -1)).view(TILE, TILE, self.out_channels, th, tw)
        y = y.permute(2, 3, 0, 4, 1).reshape(self.out_channels, th * TILE, tw * TILE)
        return y if self.bias is None else y + self.bias.view(-1, 1, 1)

    @property
    def u(self) -> torch.Tensor:
        """The transformed weight ``G g G^T`` of every filter: (36, C_out, C_in), in the weight's dtype and device.

        Made (in float64, then rounded) the first time a feature map needs it, and again if the weight moved to
        another device or dtype since; never for a model whose maps all stay below :data:`MIN_PIXELS`.
        """
        weight = self.weight
        if self._u is None or self._u.device != weight.device or self._u.dtype != weight.dtype:
            out_ch, in_ch = self.out_channels, self.in_channels
            u = torch.einsum("ai,oij,bj->abo", _G.to(weight.device),
                             weight.detach().double().reshape(out_ch * in_ch, 3, 3), _G.to(weight.device))
            self._u = u.reshape(_ALPHA * _ALPHA, out_ch, in_ch).to(weight.dtype).contiguous()
        return self._u

    def input_kernels(self, channels: int) -> torch.Tensor:
        """(channels*36, 1, 6, 6): for each channel, the 36 kernels whose outputs are one tile's B^T d B."""
        if self._kernels is None or self._kernels.shape[0] != channels * _ALPHA * _ALPHA:
            self._kernels = self.bt.view(_ALPHA * _ALPHA, 1, _ALPHA, _ALPHA).repeat(channels, 1, 1, 1)
        return self._kernels

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size=(3, 3), F(4x4,3x3), bias={self.bias is not None}"


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def convert_winograd(model: nn.Module, min_channel_product: int = MIN_CHANNEL_PRODUCT) -> int:
    """Replace every candidate 3x3 conv with ``in*out >= min_channel_product`` by :class:`WinogradConv2d`, in place.

    Returns how many were replaced.  For inference copies only (see :func:`bench.prepare_for_inference`).
    """
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if is_winograd_candidate(child) and child.in_channels * child.out_channels >= min_channel_product:
                setattr(parent, name, WinogradConv2d.from_conv(child))
                replaced += 1
    return replaced
