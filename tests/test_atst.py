"""ATSA/ATST adapter: size and cost against the official figures, shapes, padding, depth use, ImageNet loading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import vgg19_bn

import bench
from bench.harness.timing import count_flops
from models.weights import torch_hub_checkpoints
from models.atst import ATSA, DepthAttentionModule, LadderLayer

OFFICIAL_USED_PARAMS = 25_956_422  # official BaselineNet + DepthNet + LadderNet, parameters reached in forward
OUR_PARAMS = 25_928_451  # recorded in the module docstring
OUR_FLOPS_256 = 82_040_659_968  # recorded in the module docstring (82.04 G)
ADAPTER = ATSA  # what the shared fixtures `model` and `meta_model` build (tests/conftest.py)


@pytest.fixture(scope="module")
def model() -> ATSA:
    """Random weights, BatchNorm statistics measured on two random images, eval mode.

    With the fresh statistics (mean 0, variance 1) the eval-mode output of the random network vanishes
    (about 1e-13 after the 16-layer VGG), which would let any comparison of two outputs pass.
    """
    torch.manual_seed(0)
    net = ATSA()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average: after one batch, that batch's statistics
    with torch.no_grad():
        net.train()(torch.rand(2, 3, 64, 32), torch.rand(2, 1, 64, 32))
    return net.eval()


def test_parameter_count_matches_official():
    n = bench.count_parameters("atst")
    assert abs(n - OFFICIAL_USED_PARAMS) / OFFICIAL_USED_PARAMS < 0.02
    assert n == OUR_PARAMS


def test_part_sizes(meta_model):
    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(meta_model.rgb_stream) == 20_035_392
    assert count(meta_model.depth_stream) == 1_665_152
    assert count(meta_model.flm) == 4_177_216
    assert count(meta_model.head) == 50_691
    # the newest branch of each ladder layer has no block stack
    assert [len(layer.blocks) for layer in (meta_model.flm.layer1, meta_model.flm.layer2, meta_model.flm.layer3)] == [1, 2, 3]


def test_flops_at_256(meta_model):
    assert count_flops(meta_model, (256, 256)) == OUR_FLOPS_256


def test_rgb_stream_has_torchvision_keys(meta_model):
    with torch.device("meta"):
        reference = vgg19_bn(weights=None).state_dict()
    expected = {k: v.shape for k, v in reference.items() if k.startswith("features.")}
    own = {k: v.shape for k, v in meta_model.rgb_stream.state_dict().items()}
    assert own == expected


def test_dam_formula():
    torch.manual_seed(6)
    dam = DepthAttentionModule(8)
    torch.nn.init.normal_(dam.transform[3].weight)
    x, d = torch.randn(2, 8, 5, 7), torch.randn(2, 8, 5, 7)
    attn = dam.mask_conv(d).flatten(2).softmax(-1)  # (2,1,35)
    context = (d.flatten(2) * attn).sum(-1).view(2, 8, 1, 1)
    w = torch.sigmoid(dam.transform(context))
    expected = torch.sigmoid(x * torch.sigmoid(d * w))
    torch.testing.assert_close(dam(x, d), expected)


def test_ladder_layer_fusion_by_hand():
    """Sum layer: one output per branch at its size. Concat layer: chunk 0 is relu(blocks(x_0)) (identity link);
    the newest branch skips its blocks and reaches the 1/4 output through a 1x1 conv, a fresh BatchNorm (eval:
    divide by sqrt(1 + eps)) and nearest 8x upsampling, written out here with einsum."""
    sum_layer = LadderLayer((32, 64, 128))
    outs = sum_layer([torch.randn(1, 32, 16, 16), torch.randn(1, 64, 8, 8), torch.randn(1, 128, 4, 4)])
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4)]
    torch.manual_seed(9)
    widths = (32, 64, 128, 256)
    cat_layer = LadderLayer(widths, concat_output=True).eval()
    xs = [torch.randn(1, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate(widths)]
    with torch.no_grad():
        (out,) = cat_layer(xs)
        first = torch.relu(cat_layer.blocks[0](xs[0]))
        conv = cat_layer.fuse[0][3][0].weight[:, :, 0, 0]  # (32, 256)
        newest = torch.relu(torch.einsum("oc,bchw->bohw", conv, xs[3]) / (1 + 1e-5) ** 0.5)
    assert out.shape == (1, 128, 16, 16) and cat_layer.out_channels == [128]
    torch.testing.assert_close(out[:, :32], first)
    torch.testing.assert_close(out[:, 96:], newest.repeat_interleave(8, 2).repeat_interleave(8, 3), atol=1e-5, rtol=1e-5)


def test_pretrained_auto_loads_torchvision_checkpoint():
    hub = torch_hub_checkpoints()
    hub.mkdir(parents=True, exist_ok=True)
    path = hub / "vgg19_bn-c79401a0.pth"
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in vgg19_bn(weights=None).state_dict().items() if k.startswith("features.")}
    torch.manual_seed(7)
    # torchvision's layout and file name; the 123 M-parameter classifier is left out to keep the test small
    state = {k: (torch.randn(s) if s else torch.tensor(0)) for k, s in shapes.items()}
    torch.save(state, path)

    model = bench.create_model("atst", pretrained="auto")
    assert torch.equal(model.rgb_stream.features[0].weight, state["features.0.weight"])
    assert torch.equal(model.rgb_stream.features[49].weight, state["features.49.weight"])
    assert torch.equal(model.rgb_stream.features[50].running_mean, state["features.50.running_mean"])
    assert len(model.pretrained_info) == 1 and path.name in model.pretrained_info[0]

    random_model = bench.create_model("atst", pretrained=False)
    assert not torch.equal(random_model.rgb_stream.features[0].weight, state["features.0.weight"])
    assert "random init" in random_model.pretrained_info[0]


def test_padding_crop_and_depth_reaches_output(model):
    """40x24 is padded (replicate) to 64x32 inside and cropped back; depth reaches the output."""
    torch.manual_seed(1)
    rgb, depth = torch.rand(1, 3, 40, 24), torch.rand(1, 1, 40, 24)
    with torch.no_grad():
        out = model(rgb, depth)
        padded = model(F.pad(rgb, (0, 8, 0, 24), mode="replicate"), F.pad(depth, (0, 8, 0, 24), mode="replicate"))
        other_depth = model(rgb, torch.rand(1, 1, 40, 24))
    assert out.abs().max() > 1e-3, "a non-vanishing output, so the comparisons below mean something"
    torch.testing.assert_close(out, padded[..., :40, :24], atol=1e-6, rtol=1e-4)
    assert (out - other_depth).abs().max() > 1e-3, "the depth map does not reach the output"
