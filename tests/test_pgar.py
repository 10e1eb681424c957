"""PGAR adapter: size and cost against the official figures, shapes, padding, gradients, ImageNet VGG16 loading."""

from __future__ import annotations

import pytest
import torch

import bench
from tests.adapter_checks import check_pads_to_32_and_crops
from bench.harness.timing import count_flops
from models.pgar import PGAR, GRModule, GuidedResidualBlock, VGG16Backbone, interleave_guidance

OFFICIAL_PARAMS = 16_203_897  # official PGAR() (all used in its forward), 16.20 M in peer_networks.md
OUR_PARAMS = 16_204_187  # recorded in the module docstring: official + the 290 of the 16->3 score conv
OUR_FLOPS_256 = 47_150_071_808  # recorded in the module docstring (47.15 G)
OFFICIAL_FLOPS_352 = 89.07e9  # 44.5 G MACs in peer_networks.md
ADAPTER = PGAR  # what the shared fixtures `model` and `meta_model` build (tests/conftest.py)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_matches_official():
    n = bench.count_parameters("pgar")
    assert abs(n - OFFICIAL_PARAMS) / OFFICIAL_PARAMS < 0.02
    assert n == OUR_PARAMS
    with torch.device("meta"):
        assert _count(PGAR(out_channels=1)) == OFFICIAL_PARAMS  # the saliency network itself
        parts = PGAR()
    assert _count(parts.rgb_backbone) == 14_714_688
    assert _count(parts.depth_stream) == 111_424
    assert _count(parts.convert) == 87_280
    assert _count(parts.msr) == 313_729


def test_flops_recorded(meta_model):
    assert count_flops(meta_model, (256, 256)) == OUR_FLOPS_256
    f352 = count_flops(meta_model, (352, 352))
    assert abs(f352 - OFFICIAL_FLOPS_352) / OFFICIAL_FLOPS_352 < 0.01


def test_backbone_uses_torchvision_vgg16_keys():
    from torchvision.models import vgg16

    with torch.device("meta"):
        reference = {k: v for k, v in vgg16(weights=None).state_dict().items() if k.startswith("features.")}
        ours = VGG16Backbone().state_dict()
    assert set(ours) == set(reference)
    assert all(ours[k].shape == reference[k].shape for k in ours)


def test_padding_to_multiple_of_32_then_crop(model):
    check_pads_to_32_and_crops(model)


def test_output_can_be_negative_and_depth_matters(model):
    """No final activation (the harness adds rgb and the relu); the depth stream reaches the output."""
    model.eval()
    torch.manual_seed(4)
    rgb, depth = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        out = model(rgb, depth)
        other = model(rgb, torch.rand(1, 1, 32, 32))
    assert (out < 0).any()
    assert not torch.allclose(out, other)


def test_side_outputs_behind_switch(model):
    """Off by default; on, the relit image is unchanged and eight 1-channel side maps come cropped to the input."""
    model.eval()
    assert not model.return_side_outputs
    torch.manual_seed(8)
    rgb, depth = torch.rand(2, 3, 40, 24), torch.rand(2, 1, 40, 24)
    try:
        model.return_side_outputs = True
        with torch.no_grad():
            out, sides = model(rgb, depth)
    finally:
        model.return_side_outputs = False
    with torch.no_grad():
        plain = model(rgb, depth)
    torch.testing.assert_close(out, plain)
    assert list(sides) == ["y6", "y5_depth", "y5_rgb", "y4_depth", "y4_rgb", "y3_depth", "y3_rgb", "y2"]
    assert all(s.shape == (2, 1, 40, 24) for s in sides.values())
    assert not torch.allclose(sides["y2"], sides["y6"]), "distinct side maps"


def test_interleave_guidance_order():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    y = torch.tensor([-1.0]).view(1, 1, 1, 1)
    got = interleave_guidance(x, y, 4).flatten().tolist()
    assert got == [0, 1, -1, 2, 3, -1, 4, 5, -1, 6, 7, -1]
    y3 = torch.tensor([-1.0, -2.0, -3.0]).view(1, 3, 1, 1)
    assert interleave_guidance(x, y3, 1).flatten().tolist() == [*range(8), -1, -2, -3]


def test_progressive_guidance_groups():
    module = GRModule(64)
    assert (module.weak.groups, module.medium.groups, module.strong.groups) == (1, 8, 64)
    assert module.strong.conv.in_channels == 64 + 64
    head = GRModule(16, out_ch=3)
    assert (head.weak.groups, head.medium.groups, head.strong.groups) == (1, 2, 16)
    x, y = torch.randn(2, 16, 8, 8), torch.randn(2, 1, 8, 8)
    assert head(x, y).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError):
        GuidedResidualBlock(64, 8, guide_ch=3, score_ch=1)


def test_three_channel_guidance_option():
    with torch.device("meta"):
        net = PGAR(guidance_channels=3)
    assert _count(net) == 16_767_851  # the figure in the module docstring
    assert net.gr_rgb3.strong.conv.in_channels == 64 + 3 * 64
    with torch.device("meta"), torch.no_grad():
        assert net(torch.rand(2, 3, 40, 72), torch.rand(2, 1, 40, 72)).shape == (2, 3, 40, 72)


def test_pretrained_vgg16_loads_from_torch_home():
    """The real loading path: torchvision's file name in $TORCH_HOME/hub/checkpoints (random values here)."""
    from models.weights import torch_hub_checkpoints

    hub = torch_hub_checkpoints()
    hub.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(7)
    source = {f"features.{k}": v for k, v in VGG16Backbone().features.state_dict().items()}
    torch.save(source, hub / "vgg16-397923af.pth")
    model = bench.create_model("pgar", pretrained="auto")
    assert torch.equal(model.rgb_backbone.features[0].weight, source["features.0.weight"])
    assert torch.equal(model.rgb_backbone.features[28].bias, source["features.28.bias"])
    assert "vgg16-397923af.pth" in model.pretrained_info[0]
    fresh = bench.create_model("pgar", pretrained=False)
    assert not torch.equal(fresh.rgb_backbone.features[0].weight, source["features.0.weight"])
    assert "random init" in fresh.pretrained_info[0]
