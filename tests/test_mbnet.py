"""MBNet adapter: size and cost against the official figures, shapes, gradients, KTU formulations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet50

import bench
from tests.adapter_checks import check_pads_to_32_and_crops
from bench.harness.timing import count_flops
from models.mbnet import (
    DDPM,
    KernelTransformationUnit,
    MBNet,
    convert_official_state_dict,
    dynamic_filter_shifted,
    dynamic_filter_unfold,
)

OFFICIAL_PARAMS = 153.19e6
OFFICIAL_FLOPS_1024 = 912.5e9
OFFICIAL_FLOPS_256 = 57.0e9
ADAPTER = MBNet  # what the shared fixtures `model` and `meta_model` build (tests/conftest.py)


def test_parameter_count_matches_official():
    n = bench.count_parameters("mbnet")
    assert abs(n - OFFICIAL_PARAMS) / OFFICIAL_PARAMS < 0.01
    assert n == 153_192_067  # the figure recorded in the module docstring


def test_no_classifier_parameters(meta_model):
    names = [name for name, _ in meta_model.named_parameters()]
    assert not any(".fc." in name for name in names)


def test_flops_match_official(meta_model):
    f1024 = count_flops(meta_model, (1024, 1024))
    f256 = count_flops(meta_model, (256, 256))
    assert abs(f1024 - OFFICIAL_FLOPS_1024) / OFFICIAL_FLOPS_1024 < 0.02
    assert abs(f256 - OFFICIAL_FLOPS_256) / OFFICIAL_FLOPS_256 < 0.02
    assert round(f1024 / 1e9, 2) == 912.48 and round(f256 / 1e9, 2) == 57.03  # the docstring figures


def test_encoders_use_torchvision_resnet50_keys(meta_model):
    with torch.device("meta"):
        reference = resnet50(weights=None).state_dict()
    expected = {k for k in reference if not k.startswith("fc.")}
    assert set(meta_model.rgb_encoder.state_dict()) == expected
    assert set(meta_model.depth_encoder.state_dict()) == expected
    for key, value in meta_model.rgb_encoder.state_dict().items():
        assert value.shape == reference[key].shape, key
    assert meta_model.depth_encoder.conv1.weight.shape == (64, 1, 7, 7)
    # ImageNet-style weights load into the RGB trunk as they are (fc dropped)
    src = {k: v for k, v in reference.items() if not k.startswith("fc.")}
    with torch.device("meta"):
        trunk = type(meta_model.rgb_encoder)(in_channels=3)
    trunk.load_state_dict(src, strict=True)


def test_padding_to_multiple_of_32_then_crop(model):
    check_pads_to_32_and_crops(model)


@pytest.mark.parametrize("dilation", [1, 3, 5])
def test_dynamic_filter_formulations_agree(dilation):
    torch.manual_seed(4)
    x = torch.randn(2, 16, 13, 17)
    kernels = torch.randn(2, 16 * 9, 13, 17)
    ref = dynamic_filter_unfold(x, kernels, dilation)
    fast = dynamic_filter_shifted(x, kernels, dilation)
    assert fast.shape == (2, 16, 13, 17)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)


def test_dynamic_filter_semantics():
    """A kernel that is 1 at one tap and 0 elsewhere shifts the input by that tap's offset (zero padded)."""
    x = torch.arange(2 * 7 * 9, dtype=torch.float32).view(1, 2, 7, 9)
    d, tap = 3, 5  # tap 5 = row 1, column 2: offset (0, +d)
    kernels = torch.zeros(1, 2, 9, 7, 9)
    kernels[:, :, tap] = 1
    expected = F.pad(x, (0, d))[..., d:]
    for fn in (dynamic_filter_unfold, dynamic_filter_shifted):
        torch.testing.assert_close(fn(x, kernels.view(1, 18, 7, 9), d), expected)


def test_ddpm_modes_agree_with_gradients():
    torch.manual_seed(5)
    ddpm = DDPM().eval()
    x, y = torch.randn(2, 64, 12, 10), torch.randn(2, 64, 12, 10)
    out = {}
    for mode in ("unfold", "shifted"):
        for m in ddpm.modules():
            if isinstance(m, KernelTransformationUnit):
                m.mode = mode
        ddpm.zero_grad(set_to_none=True)
        out[mode] = ddpm(x, y)
        out[mode].sum().backward()
        out[mode + "_grad"] = ddpm.branches[2].kgu.conv.weight.grad.clone()
    assert out["shifted"].shape == (2, 64, 12, 10)
    torch.testing.assert_close(out["shifted"], out["unfold"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["shifted_grad"], out["unfold_grad"], atol=1e-4, rtol=1e-4)


def test_whole_model_ktu_modes_agree(model):
    model.eval()
    torch.manual_seed(6)
    rgb, depth = torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        model.set_ktu_mode("unfold")
        ref = model(rgb, depth)
        model.set_ktu_mode("shifted")
        fast = model(rgb, depth)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        model.set_ktu_mode("im2col")


def test_official_checkpoint_keys_convert(meta_model):
    """Representative keys of the authors' HDFNet_Res50 checkpoint map onto this model's keys."""
    official = [
        "module.encoder2.0.weight",
        "module.depth_encoder2.0.weight",
        "module.encoder4.1.2.conv3.weight",
        "module.depth_encoder32.0.downsample.1.running_var",
        "module.trans2.bias",
        "module.trans32.weight",
        "module.depth_trans32.fuse_down_mul.basicconv.0.weight",
        "module.depth_trans8.res_main.down.bias",
        "module.depth_trans16.res_main.denseblock.3.basicconv.1.weight",
        "module.depth_trans16.res_main.fuse.basicconv.0.weight",
        "module.depth_trans8.fuse_main.basicconv.1.bias",
        "module.upconv1.basicconv.0.weight",
        "module.selfdc_32.down_input.weight",
        "module.selfdc_16.branch_3.fuse.bias",
        "module.selfdc_8.branch_5.gernerate_kernel.0.weight",
        "module.selfdc_8.branch_1.gernerate_kernel.1.denseblock.2.basicconv.0.weight",
        "module.selfdc_8.branch_1.gernerate_kernel.1.fuse.basicconv.1.running_mean",
        "module.selfdc_32.branch_5.gernerate_kernel.2.weight",
        "module.selfdc_16.fuse.basicconv.0.weight",
        "module.classifier.weight",
    ]
    ours = meta_model.state_dict()
    converted = convert_official_state_dict({"state_dict": {k: torch.zeros(1) for k in official}})
    assert len(converted) == len(official)
    unknown = [k for k in converted if k not in ours]
    assert not unknown, unknown
    assert ours["head.weight"].shape == (3, 32, 1, 1)


def test_pretrained_resnet50_loads_from_torch_home_into_both_trunks():
    """The real loading path: torchvision's file name in $TORCH_HOME/hub/checkpoints (random values here)."""
    from torchvision.models import resnet50

    from models.weights import torch_hub_checkpoints

    hub = torch_hub_checkpoints()
    hub.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(3)
    source = resnet50(weights=None).state_dict()
    torch.save(source, hub / "resnet50-0676ba61.pth")
    model = bench.create_model("mbnet", pretrained="auto")
    assert torch.equal(model.rgb_encoder.conv1.weight, source["conv1.weight"])
    assert torch.equal(model.rgb_encoder.layer4[2].conv3.weight, source["layer4.2.conv3.weight"])
    assert torch.equal(model.depth_encoder.layer1[0].conv1.weight, source["layer1.0.conv1.weight"])
    assert model.depth_encoder.conv1.weight.shape[1] == 1, "the depth stem stays a fresh 1-channel conv"
    assert "resnet50-0676ba61.pth" in model.pretrained_info[0]
    fresh = bench.create_model("mbnet", pretrained=False)
    assert not torch.equal(fresh.rgb_encoder.conv1.weight, source["conv1.weight"])
    assert "random init" in fresh.pretrained_info[0]
