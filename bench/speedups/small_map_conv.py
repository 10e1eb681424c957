"""Training-time convolutions on tiny feature maps as one matrix product.

Deep encoders end in wide 3x3 convolutions on 2x2 to 4x4 maps (MBNet: 2048 channels at 1/32 of a 64 px input).
There a convolution is a product of its weight matrix with a handful of columns, and the backend's training
convolution (forward, grad-input, grad-weight) makes several passes over weights that dominate the work.
Computing it as ``weight (out, in*k*k) @ unfold(x) (B, in*k*k, H*W)`` lets autograd do the backward with two
matrix products instead.  ``benchmarks/training_step.py`` measured MBNet's step at 64 px, batch 3, at
0.78-0.89x the plain step (docs/performance.md); results match ``nn.Conv2d`` to float rounding.

Only the class of each eligible ``nn.Conv2d`` changes (same parameters, same ``state_dict``), and only while
:func:`small_map_convs` is active, so saved weights, inference and FLOP counting never see it.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

MIN_WEIGHTS = 512 * 512  # in_channels * out_channels of a convolution worth it (smaller ones gained nothing)


class SmallMapConv2d(nn.Conv2d):
    """A square-kernel convolution (stride 1, "same" zero padding, one group, no dilation) that computes inputs of
    at most ``max_pixels`` pixels as ``weight @ unfold(x)``; larger inputs take ``nn.Conv2d``'s path.

    ``x``: (B, in, H, W) -> (B, out, H, W).
    """

    max_pixels = 16  # maps of at most this many pixels (4x4) take the matrix product

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if h * w > self.max_pixels:
            return super().forward(x)
        k = self.kernel_size[0]
        columns = F.unfold(x, k, padding=k // 2)  # (B, in*k*k, H*W)
        out = torch.matmul(self.weight.flatten(1), columns).view(b, self.out_channels, h, w)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


def eligible(module: nn.Module, min_weights: int = MIN_WEIGHTS, kernels: tuple[int, ...] = (3,)) -> bool:
    """Whether ``module`` is a plain ``nn.Conv2d`` with a ``kernels`` square kernel, stride 1, "same" zero padding,
    one group, no dilation and at least ``min_weights`` = in x out channels (what :class:`SmallMapConv2d` computes).
    """
    if type(module) is not nn.Conv2d:
        return False
    k = module.kernel_size
    return (k[0] == k[1] and k[0] in kernels and module.padding == (k[0] // 2, k[0] // 2) and module.stride == (1, 1)
            and module.dilation == (1, 1) and module.groups == 1 and module.padding_mode == "zeros"
            and module.in_channels * module.out_channels >= min_weights)


@contextlib.contextmanager
def small_map_convs(model: nn.Module, min_weights: int = MIN_WEIGHTS, kernels: tuple[int, ...] = (3,)) -> Iterator[int]:
    """Within the block, every :func:`eligible` convolution of ``model`` is a :class:`SmallMapConv2d`.

    Yields how many were switched; they are plain ``nn.Conv2d`` again afterwards, however the block ends.
    """
    switched = [m for m in model.modules() if eligible(m, min_weights, kernels)]
    for conv in switched:
        conv.__class__ = SmallMapConv2d
    try:
        yield len(switched)
    finally:
        for conv in switched:
            conv.__class__ = nn.Conv2d
