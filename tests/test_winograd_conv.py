"""Winograd F(4x4,3x3) convolution: equal to F.conv2d, refuses what it cannot compute, converts by rule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.speedups.winograd import WinogradConv2d, convert_winograd, is_winograd_candidate


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize(
    "batch,cin,cout,h,w,bias,channels_last",
    [(1, 8, 16, 8, 8, True, False), (2, 16, 8, 13, 7, False, False), (1, 24, 24, 5, 19, True, True),
     (3, 4, 4, 1, 1, True, True), (1, 32, 16, 16, 12, False, True)],
)
def test_equals_conv2d(batch, cin, cout, h, w, bias, channels_last, monkeypatch):
    monkeypatch.setattr("bench.speedups.winograd.MIN_PIXELS", 1)  # these small maps take the Winograd path too
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=bias)
    x = torch.randn(batch, cin, h, w)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    fast = WinogradConv2d.from_conv(conv)
    with torch.inference_mode():
        out, ref = fast(x), F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert out.shape == ref.shape == (batch, cout, h, w)
    assert _relative_error(out, ref) < 1e-4
    if h * w > 1:  # a 1x1 map is contiguous in both formats
        assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize("conv", [
    nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=2, dilation=2),
    nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, padding=0),
    nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
])
def test_refuses_other_convolutions(conv):
    assert not is_winograd_candidate(conv)
    with pytest.raises(ValueError, match="3x3 convolution with stride 1"):
        WinogradConv2d.from_conv(conv)


def test_holds_no_trainable_3x3_weight_and_refuses_autograd():
    fast = WinogradConv2d.from_conv(nn.Conv2d(4, 6, 3, padding=1))
    assert not list(fast.parameters())
    assert fast.u.shape == (36, 6, 4)
    with pytest.raises(RuntimeError, match="inference-only"):
        fast(torch.randn(1, 4, 20, 20, requires_grad=True))


def test_the_transformed_weight_is_made_only_when_a_map_needs_it():
    """U holds four times the weight's memory: a model run only on small maps (MBNet's deep layers at 64 px)
    never makes it; the first large map does, once, and it is G g G^T computed here by loops."""
    conv = nn.Conv2d(3, 2, 3, padding=1)
    fast = WinogradConv2d.from_conv(conv)
    with torch.inference_mode():
        fast(torch.randn(1, 3, 8, 8))
    assert fast._u is None
    with torch.inference_mode():
        fast(torch.randn(1, 3, 20, 20))
    made = fast._u
    assert made is not None and fast.u is made  # kept, not made again
    g = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
         [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
    w = conv.weight.detach().double()
    for o in range(2):
        for i in range(3):
            for a in range(6):
                for b in range(6):
                    value = sum(g[a][p] * float(w[o, i, p, q]) * g[b][q] for p in range(3) for q in range(3))
                    assert float(made[a * 6 + b, o, i]) == pytest.approx(value, abs=1e-6)


def test_small_maps_take_the_direct_convolution(monkeypatch):
    """Below MIN_PIXELS the Winograd path is skipped (and would give the same result)."""
    conv = nn.Conv2d(8, 8, 3, padding=1)
    fast = WinogradConv2d.from_conv(conv)
    calls = []
    original = WinogradConv2d._one
    monkeypatch.setattr(WinogradConv2d, "_one", lambda self, *a: calls.append(a) or original(self, *a))
    x_small, x_big = torch.randn(1, 8, 8, 8), torch.randn(1, 8, 16, 16)
    with torch.inference_mode():
        small = fast(x_small)
        assert not calls
        fast(x_big)
        assert calls
    torch.testing.assert_close(small, F.conv2d(x_small, conv.weight, conv.bias, padding=1))


def test_convert_by_channel_rule():
    model = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 4, 3, padding=1), nn.Conv2d(4, 4, 1))
    x = torch.randn(1, 16, 20, 20)  # above MIN_PIXELS: the Winograd path
    with torch.inference_mode():
        ref = model(x)
        assert convert_winograd(model, min_channel_product=16 * 16) == 1
        assert isinstance(model[0], WinogradConv2d) and isinstance(model[2], nn.Conv2d)
        assert _relative_error(model(x), ref) < 1e-4
