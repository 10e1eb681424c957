"""RD3D adapter: size and cost against the official figures, shapes, padding, gradients, I3D weight loading."""

from __future__ import annotations

import torch
from torchvision.models import resnet50

import bench
from tests.adapter_checks import check_pads_to_32_and_crops
from bench.harness.timing import count_flops
from models.weights import torch_hub_checkpoints
from models.rd3d import RD3D, inflate_conv_weight

OFFICIAL_PARAMS_USED = 46.90e6  # official RD3D(32, resnet50), parameters used in forward
OUR_PARAMS = 46_900_291  # recorded in the module docstring (official 46,900,225 + 66 for the 32->3 conv)
OUR_FLOPS_256 = 53_449_635_584  # recorded in the module docstring (53.45 G)
ADAPTER = RD3D  # what the shared fixtures `model` and `meta_model` build (tests/conftest.py)


def test_parameter_count_matches_official():
    n = bench.count_parameters("rd3d")
    assert abs(n - OFFICIAL_PARAMS_USED) / OFFICIAL_PARAMS_USED < 0.02
    assert n == OUR_PARAMS


def test_no_unused_official_modules(meta_model):
    names = [name for name, _ in meta_model.named_parameters()]
    assert not any("fc." in name and name.startswith("encoder") for name in names)
    assert len(meta_model.reductions) == 5  # the second, unused set of reductions is not built


def test_flops_at_256(meta_model):
    flops = count_flops(meta_model, (256, 256))
    assert flops == OUR_FLOPS_256
    assert round(flops / 1e9, 2) == 53.45


def test_encoder_uses_torchvision_resnet50_keys(meta_model):
    with torch.device("meta"):
        reference = resnet50(weights=None).state_dict()
    expected = {k for k in reference if not k.startswith("fc.")}
    own = meta_model.encoder.state_dict()
    assert set(own) == expected
    for key, value in own.items():
        ref = reference[key]
        if ref.dim() == 4:  # conv: inflated with a temporal axis of 3 (conv1, 3x3 convs) or 1
            assert value.shape == (ref.shape[0], ref.shape[1], 3 if ref.shape[-1] > 1 else 1, *ref.shape[2:]), key
        else:
            assert value.shape == ref.shape, key


def test_padding_to_multiple_of_32_then_crop(model):
    check_pads_to_32_and_crops(model)


def test_clip_is_normalised_rgb_then_replicated_depth():
    rgb, depth = torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8)
    clip = RD3D.make_clip(rgb, depth)
    assert clip.shape == (2, 3, 2, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(clip[:, :, 0], (rgb - mean) / std)
    torch.testing.assert_close(clip[:, :, 1], depth.expand(-1, 3, -1, -1))


def test_centre_inflation_keeps_frames_separate_at_init(model):
    """With centre-initialised kernels the encoder is a shared 2-D ResNet per frame: RGB features ignore depth."""
    enc = model.encoder
    assert (enc.conv1.weight[:, :, 0] == 0).all() and (enc.conv1.weight[:, :, 2] == 0).all()
    assert (enc.layer3[2].conv2.weight[:, :, 0] == 0).all()
    enc.eval()
    torch.manual_seed(3)
    rgb = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = enc(RD3D.make_clip(rgb, torch.rand(1, 1, 32, 32)))
        b = enc(RD3D.make_clip(rgb, torch.rand(1, 1, 32, 32)))
    for fa, fb in zip(a, b):
        torch.testing.assert_close(fa[:, :, 0], fb[:, :, 0])
        assert not torch.allclose(fa[:, :, 1], fb[:, :, 1])


def test_inflate_conv_weight_rule():
    w = torch.randn(4, 2, 3, 3)
    w3 = inflate_conv_weight(w, 3)
    assert w3.shape == (4, 2, 3, 3, 3)
    torch.testing.assert_close(w3[:, :, 1], w)
    assert (w3[:, :, 0] == 0).all() and (w3[:, :, 2] == 0).all()
    torch.testing.assert_close(inflate_conv_weight(w, 1)[:, :, 0], w)


def test_imagenet_weights_load_inflated():
    torch.manual_seed(5)
    with torch.device("meta"):
        layout = resnet50(weights=None).state_dict()  # torchvision's keys and shapes, fc included
    source = {
        k: torch.randn(v.shape) if v.is_floating_point() else torch.zeros((), dtype=v.dtype) for k, v in layout.items()
    }
    path = torch_hub_checkpoints() / "resnet50-0676ba61.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(source, path)

    model = bench.create_model("rd3d", pretrained="auto")
    assert model.pretrained_info and "resnet50-0676ba61.pth" in model.pretrained_info[0]
    enc = model.encoder
    # 7x7 stem -> 3x7x7, 2-D kernel in the middle temporal tap, zeros around it
    torch.testing.assert_close(enc.conv1.weight[:, :, 1], source["conv1.weight"])
    assert (enc.conv1.weight[:, :, 0] == 0).all() and (enc.conv1.weight[:, :, 2] == 0).all()
    # bottleneck 3x3 -> 3x3x3 (centre), 1x1 and downsample -> 1x1x1
    torch.testing.assert_close(enc.layer2[0].conv2.weight[:, :, 1], source["layer2.0.conv2.weight"])
    torch.testing.assert_close(enc.layer4[1].conv1.weight[:, :, 0], source["layer4.1.conv1.weight"])
    torch.testing.assert_close(enc.layer3[0].downsample[0].weight[:, :, 0], source["layer3.0.downsample.0.weight"])
    # BatchNorm parameters and statistics carry over unchanged
    torch.testing.assert_close(enc.layer2[0].bn1.running_mean, source["layer2.0.bn1.running_mean"])
