"""DANet adapter: size and cost against the official figures, shapes, gradients, ImageNet loading."""

from __future__ import annotations

import torch
from torchvision.models import vgg16_bn

import bench
from tests.adapter_checks import check_pads_to_32_and_crops
from bench.harness.timing import count_flops
from models.weights import torch_hub_checkpoints
from models.danet import DANet, DANetOutputs, PositionAttention, convert_official_state_dict

OFFICIAL_PARAMS = 26.68e6  # official RGBD_sal (1-channel head), all parameters used in forward
HEAD_EXTRA = 1_302  # 3-channel level-5 convs (2 x 578) and 6->3 fuse conv (146)
ADAPTER = DANet  # what the shared fixtures `model` and `meta_model` build (tests/conftest.py)


def test_parameter_count_matches_official():
    n = bench.count_parameters("danet")
    assert abs(n - OFFICIAL_PARAMS) / OFFICIAL_PARAMS < 0.02
    assert n == 26_680_044  # the figure recorded in the module docstring
    with torch.device("meta"):
        official_head = DANet(out_channels=1)
    assert n - sum(p.numel() for p in official_head.parameters()) == HEAD_EXTRA
    assert n - HEAD_EXTRA == 26_678_742  # the official constructors' count


def test_flops_at_256(meta_model):
    flops = count_flops(meta_model, (256, 256))
    assert flops == 58_941_898_752  # the figure recorded in the module docstring
    assert round(flops / 1e9, 2) == 58.94


def test_encoder_uses_torchvision_vgg16_bn_keys(meta_model):
    with torch.device("meta"):
        reference = vgg16_bn(weights=None).features.state_dict()
    ours = meta_model.encoder.features.state_dict()
    # pool5 (index 43) has no parameters, so the key sets are equal
    assert set(ours) == set(reference)
    for key, value in ours.items():
        expected = (64, 4, 3, 3) if key == "0.weight" else tuple(reference[key].shape)
        assert tuple(value.shape) == expected, key


def test_padding_to_multiple_of_32_then_crop(model):
    check_pads_to_32_and_crops(model)


def test_output_can_be_negative():
    torch.manual_seed(4)
    net = DANet().eval()
    with torch.no_grad():
        net.dual_fuse.conv.bias.fill_(-5.0)  # push the fused term negative
        out = net(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32))
    assert (out < 0).any()


def test_side_outputs_behind_switch(model):
    model.eval()
    assert model.return_side is False
    torch.manual_seed(5)
    rgb, depth = torch.rand(1, 3, 32, 48), torch.rand(1, 1, 32, 48)  # padded to 32 x 64
    try:
        model.return_side = True
        with torch.no_grad():
            side = model(rgb, depth)
    finally:
        model.return_side = False
    with torch.no_grad():
        plain = model(rgb, depth)
    net = model
    assert isinstance(side, DANetOutputs)
    torch.testing.assert_close(side.relit, plain)
    assert side.foreground.shape == side.background.shape == (1, 3, 32, 48)
    assert [tuple(a.shape[-2:]) for a in side.attentions] == [(2, 3), (4, 6), (8, 12), (16, 24), (32, 48)]
    # away from the bottom/right crop edge (the fuse conv saw the padded map there)
    refused = -side.background + net.dual_fuse.act(net.dual_fuse.conv(torch.cat([side.foreground, -side.background], 1)))
    torch.testing.assert_close(side.relit[..., :-1, :-1], refused[..., :-1, :-1])


def test_position_attention_matches_explicit_softmax():
    torch.manual_seed(6)
    att = PositionAttention(16)
    x = torch.randn(2, 16, 5, 7)
    b, c, h, w = x.shape
    q = att.query(x).view(b, -1, h * w).permute(0, 2, 1)
    k = att.key(x).view(b, -1, h * w)
    attn = torch.softmax(torch.bmm(q, k), dim=-1)
    ref = torch.bmm(att.value(x).view(b, c, h * w), attn.permute(0, 2, 1)).view(b, c, h, w)
    torch.testing.assert_close(att.attend(x), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(att(x), x)  # gamma starts at 0


_CONV, _BN, _PRELU = ("weight", "bias"), ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"), ("weight",)


def _official_keys() -> list[str]:
    """The state-dict keys of the official RGBD_sal (VGG16-bn), written from its module structure."""
    keys = [f"conv0.{p}" for p in _CONV]
    for stage, (first, last) in {1: (1, 5), 2: (6, 12), 3: (13, 22), 4: (23, 32), 5: (33, 42)}.items():
        for i in range(first, last + 1):  # torchvision vgg16_bn.features index i; conv/BN/ReLU/pool cycle
            kind = _VGG_KINDS[i]
            keys += [f"conv{stage}.{i - first}.{p}" for p in {"conv": _CONV, "bn": _BN}.get(kind, ())]

    def cbp(prefix: str) -> list[str]:  # conv, BN, PReLU as Sequential 0, 1, 2
        return [f"{prefix}.0.{p}" for p in _CONV] + [f"{prefix}.1.{p}" for p in _BN] + [f"{prefix}.2.{p}" for p in _PRELU]

    keys += cbp("dem1.down_conv") + cbp("dem1.fuse") + [k for n in range(1, 6) for k in cbp(f"dem1.conv{n}")]
    for n in (2, 3, 4):
        keys += [f"dem1.{kind}_conv{n}.{p}" for kind in ("query", "key", "value") for p in _CONV] + [f"dem1.gamma{n}"]
    keys += [k for n in range(2, 6) for k in cbp(f"dem{n}")]
    keys += [k for n in range(1, 6) for k in cbp(f"fuse_{n}") + [f"fuse_{n}.3.{p}" for p in _CONV]]
    keys += [k for n in range(1, 5) for r in ("", "_rev") for k in cbp(f"output{n}{r}")]
    keys += [f"output5{r}.0.{p}" for r in ("", "_rev") for p in _CONV]
    keys += [f"fuseout.0.{p}" for p in _CONV] + [f"fuseout.1.{p}" for p in _PRELU]
    return keys


# kind of each torchvision vgg16_bn.features module 0..42 (43 is pool5)
_VGG_KINDS = [
    kind
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
    for kind in (("pool",) if v == "M" else ("conv", "bn", "relu"))
]


def test_official_state_dict_conversion_covers_every_key():
    with torch.device("meta"):
        ours = DANet(out_channels=1).state_dict()
    official = _official_keys()
    assert len(official) == len(set(official)) == len(ours)
    converted = convert_official_state_dict({f"module.{k}": torch.zeros(1) for k in official})
    assert set(converted) == set(ours)
    assert "encoder.features.0.weight" in converted and "deda.4.background.weight" in converted


def _fake_vgg16_bn_checkpoint() -> dict[str, torch.Tensor]:
    """A random state dict with torchvision vgg16_bn's ``features.*`` keys and shapes.

    The classifier (``classifier.*``, 120 M parameters, ignored by the loader) is left out to keep
    the test fast; the loader takes ``features.*`` only.
    """
    with torch.device("meta"):
        shapes = {k: (v.shape, v.dtype) for k, v in vgg16_bn(weights=None).features.state_dict().items()}
    g = torch.Generator().manual_seed(7)
    return {
        f"features.{k}": torch.randn(shape, generator=g) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype)
        for k, (shape, dtype) in shapes.items()
    }


def test_pretrained_auto_loads_torchvision_checkpoint():
    hub = torch_hub_checkpoints()
    hub.mkdir(parents=True)
    state = _fake_vgg16_bn_checkpoint()
    state["features.41.running_var"] = state["features.41.running_var"].abs()
    path = hub / "vgg16_bn-6c64b313.pth"
    torch.save(state, path)

    torch.manual_seed(8)
    model = bench.create_model("danet", pretrained="auto")
    feats = model.encoder.features
    assert torch.equal(feats[3].weight, state["features.3.weight"])  # conv1_2
    assert torch.equal(feats[40].weight, state["features.40.weight"])  # conv5_3
    assert torch.equal(feats[41].running_var, state["features.41.running_var"])
    # conv1_1 stays a fresh 4-channel conv, as in the official code (ImageNet's conv1_1 is not reused)
    assert not torch.equal(feats[0].weight[:, :3], state["features.0.weight"])
    assert feats[0].weight.abs().max() <= 1 / 36**0.5 + 1e-6 and feats[0].weight.std() > 0
    # the optional RGB-stem reuse copies it into channels 0-2
    from models.danet import load_backbone_weights

    load_backbone_weights(model, state, source=str(path), reuse_stem=True)
    assert torch.equal(feats[0].weight[:, :3], state["features.0.weight"])
    assert torch.equal(feats[0].bias, state["features.0.bias"])
    assert len(model.pretrained_info) == 1 and path.name in model.pretrained_info[0]

    # false never loads, even with the checkpoint present
    off = bench.create_model("danet", pretrained=False)
    assert not torch.equal(off.encoder.features[3].weight, state["features.3.weight"])
    assert "random init" in off.pretrained_info[0]


def test_training_with_batch_one():
    """The PAFEM pooled branch applies BatchNorm to a 1x1 map; a batch of 1 must still train."""
    model = bench.create_model("danet").train()
    out = model(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32))
    out.square().mean().backward()
    assert torch.isfinite(out).all()
