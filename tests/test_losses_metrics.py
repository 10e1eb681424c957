"""Losses and metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import alexnet
from torchvision.models.vgg import cfgs, make_layers

from bench.harness.config import LossConfig
from bench.harness.losses import RelightingLoss, charbonnier_loss, ssim_loss
from bench.harness.metrics import LPIPSMetric, mps, psnr, score_batch, ssim
from models.weights import torch_hub_checkpoints


def test_charbonnier_by_hand():
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.full((1, 3, 2, 2), 0.3)
    eps = 0.4
    assert float(charbonnier_loss(pred, target, eps)) == pytest.approx(math.sqrt(0.09 + 0.16))
    assert float(charbonnier_loss(target, target, 1e-3)) == pytest.approx(1e-3)


def test_psnr_of_known_error():
    target = torch.full((2, 3, 8, 8), 0.5)
    pred = target.clone()
    pred[0] += 0.1  # MSE 0.01 -> 20 dB
    pred[1, :, :4] += 0.2  # half the pixels off by 0.2: MSE 0.02 -> 16.99 dB
    values = psnr(pred, target)
    assert values[0].item() == pytest.approx(20.0, abs=1e-4)
    assert values[1].item() == pytest.approx(10 * math.log10(1 / 0.02), abs=1e-4)


def test_ssim_identity_and_drop():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-6)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert (ssim(noisy, x) < 0.9).all()
    assert float(ssim_loss(x, x, "neg")) == pytest.approx(-1.0, abs=1e-6)
    assert float(ssim_loss(x, x, "one_minus")) == pytest.approx(0.0, abs=1e-6)


def test_mps_formula():
    assert mps(0.6931, 0.1605) == pytest.approx(0.7663, abs=1e-4)  # MBNet's official test row


def save_random_trunk(kind: str) -> None:
    """A torchvision-format checkpoint of random values; only ``features.*`` (what LPIPS and the loss use)."""
    hub = torch_hub_checkpoints()
    hub.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    features = alexnet(weights=None).features if kind == "alexnet" else make_layers(cfgs["E"])
    filename = {"alexnet": "alexnet-owt-7be5be79.pth", "vgg19": "vgg19-dcbb9e9d.pth"}[kind]
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, hub / filename)


def test_lpips_missing_weights_reports_nan():
    metric = LPIPSMetric("auto")
    assert not metric.available and "not computed" in metric.status
    x = torch.rand(2, 3, 16, 16)
    assert torch.isnan(metric(x, x)).all()
    scores = score_batch(x, x, metric)
    assert torch.isnan(scores["mps"]).all() and torch.isfinite(scores["ssim"]).all()


def test_lpips_with_a_test_trunk_from_torch_home_equals_the_lpips_package(monkeypatch):
    """Our LPIPS, its trunk read from TORCH_HOME, against the lpips package's own network built on the same trunk."""
    import lpips

    save_random_trunk("alexnet")
    metric = LPIPSMetric("auto")
    assert metric.available and "alexnet-owt-7be5be79.pth" in metric.status
    saved = torch.load(torch_hub_checkpoints() / "alexnet-owt-7be5be79.pth")
    trunk = alexnet(weights=None)
    trunk.features.load_state_dict({k.removeprefix("features."): v for k, v in saved.items()})
    monkeypatch.setattr(lpips.pretrained_networks.tv, "alexnet", lambda *args, **kwargs: trunk)
    reference = lpips.LPIPS(net="alex", verbose=False).eval()  # its v0.1 linear layers, our trunk
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 32, 32, generator=gen), torch.rand(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        expected = reference(x, y, normalize=True).flatten()  # normalize: [0,1] inputs
    assert (expected > 0.01).all()
    torch.testing.assert_close(metric(x, y), expected, atol=1e-6, rtol=1e-4)
    assert torch.allclose(metric(x, x), torch.zeros(2), atol=1e-6)


def test_score_batch_clamps_predictions():
    target = torch.ones(1, 3, 16, 16)
    scores = score_batch(torch.full_like(target, 2.0), target)
    assert math.isinf(scores["psnr"][0].item())


def _charbonnier_by_hand(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.sqrt((x.double() - y.double()) ** 2 + 1e-3**2).mean())


def _neg_ssim_by_hand(x: torch.Tensor, y: torch.Tensor) -> float:
    from pytorch_msssim import ssim as reference

    return -float(reference(x, y, data_range=1.0, size_average=True))


def _vgg19_conv3_3_l1_by_hand(x: torch.Tensor, y: torch.Tensor) -> float:
    """The saved VGG19 checkpoint's conv1_1 ... conv3_3 (+ ReLU) written out with F.conv2d; L1 of the activations."""
    state = torch.load(torch_hub_checkpoints() / "vgg19-dcbb9e9d.pth")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def features(image: torch.Tensor) -> torch.Tensor:
        h = ((image - mean) / std).double()
        for stage in ((0, 2), (5, 7), (10, 12, 14)):  # torchvision indices of the convolutions; 2x2 pools between
            if stage[0] != 0:
                h = F.max_pool2d(h, 2)
            for i in stage:
                h = F.relu(F.conv2d(h, state[f"features.{i}.weight"].double(), state[f"features.{i}.bias"].double(),
                                    padding=1))
        return h

    return float((features(x) - features(y)).abs().mean())


def test_default_loss_weights_are_the_papers():
    """1 * Charbonnier + 1.1 * (-SSIM) + 0.1 * perceptual (paper eq. 4), in the loss and in the config."""
    from bench.harness.config import parse_config

    weights = RelightingLoss(vgg_pretrained=False).w
    assert (weights.charbonnier, weights.ssim, weights.perceptual) == (1.0, 1.1, 0.1)
    assert (weights.charbonnier_eps, weights.ssim_form) == (1e-3, "neg")
    loss = parse_config("experiments: [{name: a, model: identity}]").loss
    assert (loss.charbonnier, loss.ssim, loss.perceptual, loss.charbonnier_eps, loss.ssim_form) == (1.0, 1.1, 0.1, 1e-3, "neg")


def test_relighting_loss_drops_perceptual_without_vgg():
    loss = RelightingLoss(LossConfig(), vgg_pretrained="auto")
    assert loss.perceptual is None and loss.perceptual_status.startswith("dropped")
    gen = torch.Generator().manual_seed(4)
    x, y = torch.rand(1, 3, 16, 16, generator=gen), torch.rand(1, 3, 16, 16, generator=gen)
    total, terms = loss(x, y)
    assert set(terms) == {"charbonnier", "ssim"}
    cha, neg_ssim = _charbonnier_by_hand(x, y), _neg_ssim_by_hand(x, y)
    assert terms["charbonnier"] == pytest.approx(cha, rel=1e-5) and terms["ssim"] == pytest.approx(neg_ssim, rel=1e-5)
    assert float(total) == pytest.approx(1.0 * cha + 1.1 * neg_ssim, rel=1e-5)


def test_relighting_loss_with_vgg_from_torch_home_weighs_each_term():
    """Default weights, a random VGG19 saved in TORCH_HOME: the total is the by-hand weighted sum of by-hand terms."""
    save_random_trunk("vgg19")
    path = torch_hub_checkpoints() / "vgg19-dcbb9e9d.pth"
    trunk = torch.load(path)
    torch.save({k: v * 3 if k.endswith("weight") else v for k, v in trunk.items()}, path)  # larger activations
    loss = RelightingLoss(LossConfig(), vgg_pretrained="auto")
    assert loss.perceptual is not None and "vgg19-dcbb9e9d.pth" in loss.perceptual_status
    gen = torch.Generator().manual_seed(2)
    x, y = torch.rand(1, 3, 16, 16, generator=gen), torch.rand(1, 3, 16, 16, generator=gen)
    _, same = loss(x, x)
    assert same["perceptual"] == pytest.approx(0.0, abs=1e-7)
    pred = x.clone().requires_grad_(True)
    total, terms = loss(pred, y)
    total.backward()
    assert pred.grad is not None and all(p.grad is None for p in loss.perceptual.parameters())
    total = float(total.detach())
    cha, neg_ssim, perceptual = _charbonnier_by_hand(x, y), _neg_ssim_by_hand(x, y), _vgg19_conv3_3_l1_by_hand(x, y)
    assert perceptual > 0.1, "a perceptual term large enough for its weight to show in the total"
    assert terms == pytest.approx({"charbonnier": cha, "ssim": neg_ssim, "perceptual": perceptual}, rel=1e-4)
    assert total == pytest.approx(1.0 * cha + 1.1 * neg_ssim + 0.1 * perceptual, rel=1e-5)
    assert (total - cha - 1.1 * neg_ssim) / perceptual == pytest.approx(0.1, rel=1e-3)


@pytest.mark.parametrize("shape", [(1, 3, 11, 11), (2, 3, 37, 50), (3, 1, 64, 20)])
def test_ssim_equals_pytorch_msssim(shape):
    """bench.harness.metrics.ssim is pytorch-msssim's SSIM computed faster: same values to float rounding."""
    from pytorch_msssim import ssim as reference

    gen = torch.Generator().manual_seed(3)
    x = torch.rand(shape, generator=gen)
    y = (x + 0.3 * torch.randn(shape, generator=gen)).clamp(0, 1)
    torch.testing.assert_close(ssim(x, y), reference(x, y, data_range=1.0, size_average=False), rtol=0, atol=1e-6)


def test_ssim_refuses_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.rand(1, 3, 10, 40), torch.rand(1, 3, 10, 40))
