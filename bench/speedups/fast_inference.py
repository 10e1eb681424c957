"""``prepare_for_inference``: every inference-only optimisation, in one public entry point.

``bench.create_model`` returns the plain trainable module; evaluation and timing call
:func:`prepare_for_inference` on a copy, which

* switches to eval mode and freezes parameters,
* folds each BatchNorm into the convolution before it (``Sequential(conv, bn, ...)``, torchvision
  ResNet blocks' ``convN``/``bnN`` pairs, and the pairs given as ``fold_pairs``, which the harness takes from
  the adapter's declared capabilities; 2-D and 3-D), replacing the BatchNorm with ``Identity``,
* converts conv weights to ``channels_last`` (``channels_last_3d`` for 3-D convs), which selects the
  NHWC kernels on CPU and CUDA,
* on CPU, computes 3x3 convolutions with many channels by Winograd F(4x4,3x3)
  (:mod:`bench.speedups.winograd`: a quarter of the multiplications; MBNet's fusion layers),
* optionally (off by default) runs under CUDA bf16/fp16 autocast and/or ``torch.compile``.

Inputs should then be passed in ``channels_last`` too (evaluation and timing do).  Outputs equal the
plain module's within float rounding (tested: 1e-4 relative).
"""

from __future__ import annotations

import copy
import logging
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from bench.speedups.winograd import convert_winograd

log = logging.getLogger(__name__)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    """A 2-D conv then a 2-D BatchNorm, or 3-D then 3-D, with running statistics to fold."""
    pairs = ((nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d))
    return any(isinstance(conv, c) and isinstance(bn, b) for c, b in pairs) and bn.track_running_stats \
        and bn.running_mean is not None and conv.out_channels == bn.num_features


def _fold_sequential(seq: nn.Sequential) -> int:
    folded = 0
    names = list(seq._modules)
    for first, second in zip(names, names[1:]):
        conv, bn = seq._modules[first], seq._modules[second]
        if _foldable(conv, bn):
            seq._modules[first] = fuse_conv_bn_eval(conv, bn)
            seq._modules[second] = nn.Identity()
            folded += 1
    return folded


FoldPairs = Mapping[type, Sequence[tuple[str, str]]]


def _named_pairs(module: nn.Module, fold_pairs: FoldPairs) -> tuple[tuple[str, str], ...]:
    """The (conv, bn) attribute pairs of ``module`` whose BatchNorm is applied directly to the conv's output.

    Those ``fold_pairs`` gives for the module's class, else for torchvision ResNets and their blocks
    (``conv1``/``bn1`` .. ``conv3``/``bn3``).
    """
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    declared = fold_pairs.get(type(module), ())
    if declared:
        return tuple(declared)
    if isinstance(module, (ResNet, Bottleneck, BasicBlock)):
        return tuple((f"conv{i}", f"bn{i}") for i in (1, 2, 3))
    return ()


def _fold_named_pairs(module: nn.Module, fold_pairs: FoldPairs) -> int:
    folded = 0
    for conv_name, bn_name in _named_pairs(module, fold_pairs):
        conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
        if conv is not None and bn is not None and _foldable(conv, bn):
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())
            folded += 1
    return folded


def fold_batchnorm(model: nn.Module, fold_pairs: FoldPairs | None = None) -> int:
    """Fold BatchNorm layers into the convolutions before them, in place (eval mode). Returns how many.

    ``fold_pairs``: ``{module class: ((conv attribute, bn attribute), ...)}`` beyond the pairs found without it.
    """
    model.eval()
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            folded += _fold_sequential(module)
        folded += _fold_named_pairs(module, fold_pairs or {})
    return folded


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class ChannelsLastOutput(nn.Module):
    """A convolution over a single input channel whose output is made channels_last.

    With one input channel the input and weight layouts are both "contiguous" and "channels_last",
    so the convolution returns NCHW and every layer after it (pooling, the next convolution) pays
    for the layout change; converting once here keeps the whole stream in channels_last.
    forward: (B,1,H,W) -> (B,C_out,H',W') channels_last.
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).contiguous(memory_format=torch.channels_last)


def _channels_last_single_channel_convs(model: nn.Module) -> int:
    wrapped = 0
    for parent in list(model.modules()):
        if isinstance(parent, ChannelsLastOutput):
            continue
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv2d and child.in_channels == 1:
                setattr(parent, name, ChannelsLastOutput(child))
                wrapped += 1
    return wrapped


class AutocastInference(nn.Module):
    """Runs ``model`` under CUDA autocast and returns float32: forward(rgb, depth) -> (B,3,H,W) float32."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=self.dtype):
            return self.model(rgb, depth).float()


def prepare_for_inference(
    model: nn.Module,
    *,
    channels_last: bool = True,
    fold_bn: bool = True,
    fold_pairs: FoldPairs | None = None,
    winograd: bool | None = None,
    autocast: str = "off",
    compile: bool = False,
) -> nn.Module:
    """A copy of ``model`` with every inference-only optimisation applied (the original is untouched).

    ``fold_pairs``: conv/BatchNorm attribute pairs to fold per module class, beyond the ones found without it
    (an adapter's declared ``Capabilities.fold_pairs``).

    ``winograd`` replaces 3x3 convolutions with many channels (``in * out >= 256 * 256``) by
    :class:`bench.speedups.winograd.WinogradConv2d`; ``None`` (default) does so on CPU, where it pays
    (``benchmarks/conv_speed.py``), and not on CUDA, whose libraries choose their own algorithms.

    ``autocast`` ("off", "bf16", "fp16") runs the forward pass in CUDA mixed precision (outputs are
    float32 but no longer equal the plain module's to 1e-4); it needs the model on a CUDA device.
    ``compile`` wraps the result in ``torch.compile`` (the first calls compile, which takes a while).
    """
    if autocast not in ("off", *AUTOCAST_DTYPES):
        raise ValueError(f"autocast must be 'off', 'bf16' or 'fp16', got {autocast!r}")
    fast = copy.deepcopy(model).eval()
    for p in fast.parameters():
        p.requires_grad_(False)
    if fold_bn:
        count = fold_batchnorm(fast, fold_pairs)
        log.debug("folded %d BatchNorm layers", count)
    if channels_last:
        fast._apply(_to_channels_last)
        _channels_last_single_channel_convs(fast)
    device = next(fast.parameters(), torch.empty(0)).device
    if winograd or (winograd is None and device.type == "cpu"):
        count = convert_winograd(fast)
        log.debug("%d convolutions in Winograd F(4x4,3x3) form", count)
    if autocast != "off":
        if device.type != "cuda":
            raise ValueError(f"autocast={autocast!r} is a CUDA switch; the model is on {device}")
        fast = AutocastInference(fast, AUTOCAST_DTYPES[autocast])
    if compile:
        fast = torch.compile(fast)
    return fast


def _to_channels_last(t: torch.Tensor) -> torch.Tensor:
    """4-D weights to channels_last, 5-D (3-D convs) to channels_last_3d, everything else unchanged."""
    if t.ndim == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if t.ndim == 5:
        return t.contiguous(memory_format=torch.channels_last_3d)
    return t
