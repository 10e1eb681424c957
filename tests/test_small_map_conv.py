"""Wide convolutions on tiny maps computed as one matrix product during training: same values and gradients as
``torch.nn.functional.conv2d``, only eligible layers switched, and every layer plain again afterwards."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.speedups.small_map_conv import SmallMapConv2d, small_map_convs


def _pair(conv: nn.Conv2d, x: torch.Tensor):
    """Output and gradients (input, weight, bias) of ``conv`` and of F.conv2d with the same parameters."""
    weight = conv.weight.detach().clone().requires_grad_()
    bias = conv.bias.detach().clone().requires_grad_()
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    mine = conv(x1)
    ref = F.conv2d(x2, weight, bias, padding=conv.padding)
    upstream = torch.randn_like(ref)
    (mine * upstream).sum().backward()
    (ref * upstream).sum().backward()
    return (mine, x1.grad, conv.weight.grad, conv.bias.grad), (ref, x2.grad, weight.grad, bias.grad)


@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (4, 4), (2, 5)])
def test_small_maps_match_conv2d_in_value_and_gradient(hw):
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 40, 3, padding=1)
    x = torch.randn(3, 24, *hw)
    with small_map_convs(conv, min_weights=1) as switched:
        assert switched == 1 and type(conv) is SmallMapConv2d
        mine, ref = _pair(conv, x)
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_larger_maps_keep_the_convolution_path_exactly():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(2, 8, 5, 5)  # 25 pixels > 16
    plain = conv(x)
    with small_map_convs(conv, min_weights=1):
        assert torch.equal(conv(x), plain)


def test_only_eligible_layers_switch_and_all_are_plain_again_even_after_an_error():
    model = nn.Sequential(
        nn.Conv2d(32, 32, 3, padding=1),  # eligible at min_weights 1024
        nn.Conv2d(32, 32, 3, padding=1, stride=2),  # strided
        nn.Conv2d(32, 32, 3, padding=1, groups=2),  # grouped
        nn.Conv2d(32, 32, 1),  # 1x1: not by default
        nn.Conv2d(32, 16, 3, padding=1),  # too few weights (512 < 1024)
        nn.Conv2d(32, 32, 3, padding=0),  # not "same" padding
    )
    keys = list(model.state_dict())
    with pytest.raises(RuntimeError, match="inside"):
        with small_map_convs(model, min_weights=32 * 32) as switched:
            assert switched == 1
            assert [type(m) is SmallMapConv2d for m in model] == [True, False, False, False, False, False]
            raise RuntimeError("inside")
    assert all(type(m) is nn.Conv2d for m in model)
    assert list(model.state_dict()) == keys
    with small_map_convs(model, min_weights=32 * 32, kernels=(1, 3)) as switched:
        assert switched == 2  # the 1x1 joins when asked for
