"""Losses and metrics against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.models import alexnet
from torchvision.models.vgg import cfgs, make_layers

from bench.harness.config import LossConfig
from bench.harness.evaluate import evaluate
from bench.harness.losses import RelightingLoss, charbonnier_loss, ssim_loss
from bench.harness.metrics import (SSIM_KINDS, LPIPSMetric, check_ssim_kind, conventions, mps, psnr, score_batch, ssim,
                                   ssim_uniform7)
from datasets.conditions import Condition
from datasets.dataset import RelightingDataset
from datasets.layout import scan_track1
from datasets.pairs import build_pairs
from models.weights import torch_hub_checkpoints
from relight_base.errors import ConfigError
from tests.data_helpers import FOLDERS, make_tree


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


def lpips_package_on_saved_trunk(monkeypatch) -> nn.Module:
    """The lpips package's own v0.1 network (its linear heads) on the AlexNet trunk saved by :func:`save_random_trunk`."""
    import lpips

    saved = torch.load(torch_hub_checkpoints() / "alexnet-owt-7be5be79.pth")
    trunk = alexnet(weights=None)
    trunk.features.load_state_dict({k.removeprefix("features."): v for k, v in saved.items()})
    monkeypatch.setattr(lpips.pretrained_networks.tv, "alexnet", lambda *args, **kwargs: trunk)
    return lpips.LPIPS(net="alex", verbose=False).eval()


def test_lpips_missing_weights_reports_nan():
    metric = LPIPSMetric("auto")
    assert not metric.available and "not computed" in metric.status
    x = torch.rand(2, 3, 16, 16)
    assert torch.isnan(metric(x, x)).all()
    scores = score_batch(x, x, metric)
    assert torch.isnan(scores["mps"]).all() and torch.isfinite(scores["ssim"]).all()


def test_lpips_with_a_test_trunk_from_torch_home_equals_the_lpips_package(monkeypatch):
    """Our LPIPS, its trunk read from TORCH_HOME, against the lpips package's own network built on the same trunk."""
    save_random_trunk("alexnet")
    metric = LPIPSMetric("auto")
    assert metric.available and "alexnet-owt-7be5be79.pth" in metric.status
    reference = lpips_package_on_saved_trunk(monkeypatch)
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


# --- The SSIM convention switch: uniform7 against scikit-image, gaussian against pytorch-msssim ---------------


def _uint8_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two ``(H,W,3) uint8`` images: random, structured, flat, saturated; several non-square."""
    rng = np.random.default_rng(sum(map(ord, name)))

    def noisy(a: np.ndarray, scale: int) -> np.ndarray:
        return np.clip(a.astype(np.int64) + rng.integers(-scale, scale + 1, a.shape), 0, 255).astype(np.uint8)

    if name == "random_square":
        return rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    if name == "noisy_copy_wide":
        a = rng.integers(0, 256, (23, 41, 3), dtype=np.uint8)
        return a, noisy(a, 40)
    if name == "gradient_vs_brighter_tall":
        ramp = np.linspace(0, 200, 37)[:, None, None] + np.linspace(0, 50, 12)[None, :, None] * np.ones((1, 1, 3))
        a = ramp.round().astype(np.uint8)
        return a, np.clip(a.astype(np.int64) + 30, 0, 255).astype(np.uint8)
    if name == "checkerboard_vs_blurred":
        a = ((np.indices((24, 32)).sum(axis=0) // 1) % 2 * 255).astype(np.uint8)
        a = np.repeat(a[..., None], 3, axis=2)
        blurred = F.avg_pool2d(torch.from_numpy(a).permute(2, 0, 1)[None].double(), 3, stride=1, padding=1)
        return a, blurred[0].permute(1, 2, 0).round().byte().numpy()
    if name == "stripes_vs_noisy":  # 8-pixel stripes: a scale the 7x7 and 11-tap windows weigh differently
        a = np.repeat(((np.indices((32, 40))[1] // 8) % 2 * 255).astype(np.uint8)[..., None], 3, axis=2)
        return a, noisy(a, 60)
    if name == "flat_vs_flat":
        return np.full((9, 12, 3), 10, np.uint8), np.full((9, 12, 3), 200, np.uint8)
    if name == "saturated_smallest":
        a = rng.choice(np.array([0, 255], np.uint8), size=(7, 7, 3))
        return a, noisy(a, 60)
    raise KeyError(name)


PAIRS = ["random_square", "noisy_copy_wide", "gradient_vs_brighter_tall", "checkerboard_vs_blurred", "stripes_vs_noisy",
         "flat_vs_flat", "saturated_smallest"]


def _as_batch(*images: np.ndarray) -> torch.Tensor:
    """``(H,W,3) uint8`` arrays -> ``(B,3,H,W)`` float32 ``level / 255`` (as a run and ``bench score`` score them)."""
    return torch.stack([torch.from_numpy(image).permute(2, 0, 1) for image in images]).float() / 255


@pytest.mark.parametrize("name", PAIRS)
def test_uniform7_ssim_equals_scikit_image(name):
    from skimage.metrics import structural_similarity

    a, b = _uint8_pair(name)
    expected = structural_similarity(a, b, channel_axis=-1)  # uint8: data_range 255, 7x7 uniform window
    ours = float(ssim_uniform7(_as_batch(a), _as_batch(b))[0])
    assert ours == pytest.approx(expected, abs=1e-6)
    assert float(score_batch(_as_batch(a), _as_batch(b), ssim_kind="uniform7")["ssim"][0]) == pytest.approx(expected,
                                                                                                           abs=1e-6)


def test_uniform7_ssim_scores_each_image_of_a_batch_on_its_own():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(7)
    first = [rng.integers(0, 256, (20, 13, 3), dtype=np.uint8) for _ in range(3)]
    second = [np.clip(a.astype(np.int64) + rng.integers(-25 * k, 25 * k + 1, a.shape), 0, 255).astype(np.uint8)
              for k, a in enumerate(first, start=1)]
    expected = [structural_similarity(a, b, channel_axis=-1) for a, b in zip(first, second)]
    assert len(set(np.round(expected, 3))) == 3, "three different scores, so a mix-up would show"
    ours = ssim_uniform7(_as_batch(*first), _as_batch(*second)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


def test_the_two_ssim_conventions_differ():
    from pytorch_msssim import ssim as reference

    a, b = _uint8_pair("stripes_vs_noisy")
    x, y = _as_batch(a), _as_batch(b)
    gaussian = float(score_batch(x, y, ssim_kind="gaussian")["ssim"][0])
    assert gaussian == pytest.approx(float(reference(x, y, data_range=1.0)), abs=1e-6)
    assert abs(gaussian - float(score_batch(x, y, ssim_kind="uniform7")["ssim"][0])) > 0.05


def test_uniform7_refuses_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="7x7"):
        ssim_uniform7(torch.rand(1, 3, 6, 40), torch.rand(1, 3, 6, 40))


def test_unknown_ssim_convention_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"eval\.ssim: unknown SSIM convention 'box'.*gaussian, uniform7"):
        check_ssim_kind("box")
    with pytest.raises(ConfigError, match="eval.ssim"):
        score_batch(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), ssim_kind="box")


def test_conventions_name_the_chosen_ssim_and_rounding():
    gaussian, uniform = conventions(True, "gaussian"), conventions(False, "uniform7")
    assert "11-tap Gaussian" in gaussian["ssim"] and "7x7 uniform" in uniform["ssim"]
    assert "uniform7" in uniform["mps"] and "gaussian" in gaussian["mps"]
    assert "rounded to 8 bits" in gaussian["quantize"] and "not rounded" in uniform["quantize"]


@pytest.mark.parametrize("ssim_kind", SSIM_KINDS)
def test_score_batch_mps_uses_the_chosen_ssim(ssim_kind):
    """MPS = 0.5 * (SSIM + 1 - LPIPS) with the SSIM of the chosen convention, each checked against its reference."""
    from pytorch_msssim import ssim as gaussian_reference
    from skimage.metrics import structural_similarity

    save_random_trunk("alexnet")
    metric = LPIPSMetric("auto")
    a, b = _uint8_pair("noisy_copy_wide")
    a, b = np.tile(a, (2, 1, 1)), np.tile(b, (2, 1, 1))  # 46x41: large enough for AlexNet's pools
    x, y = _as_batch(a), _as_batch(b)
    expected_ssim = (structural_similarity(a, b, channel_axis=-1) if ssim_kind == "uniform7"
                     else float(gaussian_reference(x, y, data_range=1.0)))
    scores = score_batch(x, y, metric, ssim_kind=ssim_kind)
    assert float(scores["ssim"][0]) == pytest.approx(expected_ssim, abs=1e-6)
    lp = float(scores["lpips"][0])
    assert math.isfinite(lp) and lp > 0
    assert float(scores["mps"][0]) == pytest.approx(0.5 * (expected_ssim + 1 - lp), abs=1e-6)


# --- Scoring as the challenge scored: the 8-bit PNGs written to predictions/ ----------------------------------

N, E = Condition(6500, "N"), Condition(4500, "E")
OFFSET = 0.6 / 255  # between 8-bit levels: rounding moves every pixel by 0.4 / 255


class FixedImage(nn.Module):
    """A stand-in model: the same float image ``(3,H,W)`` for every input (rgb and depth ignored)."""

    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.register_buffer("image", image)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.image.expand(rgb.shape[0], -1, -1, -1)


@pytest.fixture
def val_split(tmp_path):
    """Three 32x40 (height x width) validation scenes of a fake VIDIT tree, the dataset over them, and the tree."""
    tree = make_tree(tmp_path / "vidit", train=1, val=3, test=0, hw=(32, 40), full=False)
    scenes = scan_track1(tree.root / FOLDERS["val_input"], tree.root / FOLDERS["val_target"], N, E, require_target=True)
    return RelightingDataset(build_pairs(scenes, N, E), size=None, split="val"), tree


def _fixed_prediction(tree, out_of_range: bool = True) -> torch.Tensor:
    """Scene Image100's target plus 0.6 / 255 (off the 8-bit grid); with a patch above 1 and one below 0 (clamped)."""
    image = torch.from_numpy(tree.rgb[("Image100", "4500_E")]).permute(2, 0, 1).double() / 255 + OFFSET
    if out_of_range:
        image[:, :4, :5] = 1.3
        image[:, -3:, -6:] = -0.2
    return image.float()


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _score_pngs_by_hand(pred: np.ndarray, truth: np.ndarray, ssim_kind: str, reference_lpips: nn.Module) -> dict:
    """PSNR in float64, SSIM by scikit-image or pytorch-msssim, LPIPS by the lpips package, MPS from them."""
    from pytorch_msssim import ssim as gaussian_reference
    from skimage.metrics import structural_similarity

    x, y = pred.astype(np.float64) / 255, truth.astype(np.float64) / 255
    tx, ty = (torch.from_numpy(v).permute(2, 0, 1)[None].float() for v in (x, y))
    value = (structural_similarity(pred, truth, channel_axis=-1) if ssim_kind == "uniform7"
             else float(gaussian_reference(tx, ty, data_range=1.0)))
    with torch.no_grad():
        lp = float(reference_lpips(tx, ty, normalize=True))
    return {"psnr": 10 * math.log10(1 / np.mean((x - y) ** 2)), "ssim": value, "lpips": lp,
            "mps": 0.5 * (value + 1 - lp)}


@pytest.mark.parametrize("ssim_kind", SSIM_KINDS)
def test_quantized_metrics_equal_the_scores_of_the_written_pngs(ssim_kind, val_split, tmp_path, monkeypatch):
    dataset, tree = val_split
    save_random_trunk("alexnet")
    reference_lpips = lpips_package_on_saved_trunk(monkeypatch)
    pred_dir = tmp_path / "predictions"
    rows = evaluate(FixedImage(_fixed_prediction(tree)), dataset, device=torch.device("cpu"),
                    lpips_metric=LPIPSMetric("auto"), batch_size=2, pred_dir=pred_dir, quantize=True,
                    ssim_kind=ssim_kind)
    assert list(rows.scene_id) == ["Image100", "Image101", "Image102"]
    assert sorted(p.name for p in pred_dir.iterdir()) == ["Image100.png", "Image101.png", "Image102.png"]
    for row in rows.itertuples():
        truth = _png(tree.root / FOLDERS["val_target"] / f"{row.scene_id}.png")
        expected = _score_pngs_by_hand(_png(pred_dir / f"{row.scene_id}.png"), truth, ssim_kind, reference_lpips)
        assert row.psnr == pytest.approx(expected["psnr"], abs=1e-4)
        for metric in ("ssim", "lpips", "mps"):
            assert getattr(row, metric) == pytest.approx(expected[metric], abs=1e-5), (row.scene_id, metric)


def test_float_scoring_differs_from_the_written_pngs_for_a_prediction_off_the_8bit_grid(val_split, tmp_path):
    dataset, tree = val_split
    image = _fixed_prediction(tree, out_of_range=False)
    model, cpu = FixedImage(image), torch.device("cpu")
    quantized = evaluate(model, dataset, device=cpu, lpips_metric=None, batch_size=2, pred_dir=tmp_path / "p")
    floats = evaluate(model, dataset, device=cpu, lpips_metric=None, batch_size=2, quantize=False)
    prediction = image.double().clamp(0, 1).permute(1, 2, 0).numpy()
    for row in floats.itertuples():
        truth = tree.rgb[(row.scene_id, "4500_E")].astype(np.float64) / 255
        assert row.psnr == pytest.approx(10 * math.log10(1 / np.mean((prediction - truth) ** 2)), abs=1e-4)
    written = _png(tmp_path / "p" / "Image100.png").astype(np.float64) / 255
    truth = tree.rgb[("Image100", "4500_E")].astype(np.float64) / 255
    assert quantized.psnr[0] == pytest.approx(10 * math.log10(1 / np.mean((written - truth) ** 2)), abs=1e-4)
    # off by 0.6/255 as a float, by 1/255 once rounded: 20 log10(1 / 0.6) = 4.4 dB apart
    assert floats.psnr[0] - quantized.psnr[0] == pytest.approx(20 * math.log10(1 / 0.6), abs=0.5)
    assert floats.ssim[0] != quantized.ssim[0]
