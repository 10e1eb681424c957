"""The adapter contract, checked for every registered model (the timm pattern: a new adapter is covered
the moment it is registered).

``forward(rgb (B,3,H,W) in [0,1], depth (B,1,H,W)) -> (B,3,H,W)`` at any size, gradients reaching every
trainable parameter, deterministic in eval mode, state dicts that round-trip, finite output for an
all-zero depth map, and the harness's residual switch on and off.
"""

from __future__ import annotations

import pytest
import torch

import bench
from bench.harness.config import parse_config
from bench.harness.modeling import RelightingModel, build_model

MODELS = bench.list_models()
# The contract of these large backbones takes 5-20 s per model on 2 CPU cores: it runs in the slow set (`-m slow`).
HEAVY = {"mbnet", "atst", "danet"}


def _inputs(batch: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, h, w, generator=gen), torch.rand(batch, 1, h, w, generator=gen)


@pytest.fixture(scope="module",
                params=[pytest.param(m, marks=pytest.mark.slow) if m in HEAVY else m for m in MODELS])
def adapter(request):
    torch.manual_seed(0)
    return request.param, bench.create_model(request.param)


def test_registry_is_not_empty():
    assert {"identity", "mbnet"} <= set(MODELS)


def test_training_forward_and_gradients(adapter):
    name, model = adapter
    model.train()
    rgb, depth = _inputs(2, 32, 32)
    out = model(rgb, depth)
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32, name
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        pytest.skip(f"{name} has no trainable parameters")
    model.zero_grad(set_to_none=True)
    out.float().square().mean().backward()
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"{name}: parameters never reached by the gradient: {missing[:5]}"


def test_eval_any_size_deterministic_and_zero_depth(adapter):
    name, model = adapter
    model.eval()
    rgb, depth = _inputs(2, 40, 24, seed=1)  # neither side a multiple of 32
    with torch.no_grad():
        first = model(rgb, depth)
        second = model(rgb, depth)
        alone = model(rgb[1:], depth[1:])
        zero_depth = model(rgb, torch.zeros_like(depth))
        square = model(*_inputs(1, 32, 32, seed=4))
    assert first.shape == (2, 3, 40, 24) and first.dtype == torch.float32, f"{name}: size not a multiple of 32"
    assert square.shape == (1, 3, 32, 32), name
    assert torch.equal(first, second), f"{name}: eval mode is not deterministic"
    scale = first.abs().max().clamp_min(1e-30)  # relative: a random network's output can be tiny in eval mode
    assert (alone - first[1:]).abs().max() / scale <= 1e-4, f"{name}: images in a batch interact"
    assert torch.isfinite(first).all() and torch.isfinite(zero_depth).all(), f"{name}: NaN/inf output"


def test_state_dict_round_trip(adapter):
    name, model = adapter
    model.eval()
    torch.manual_seed(123)
    fresh = bench.create_model(name).eval()
    fresh.load_state_dict(model.state_dict())
    rgb, depth = _inputs(1, 32, 32, seed=2)
    with torch.no_grad():
        assert torch.equal(model(rgb, depth), fresh(rgb, depth)), name


class _ConstantMap(torch.nn.Module):
    """A hand-made adapter: the map (-0.25, 0.5, -1.0) per channel at every pixel, whatever the input."""

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return torch.tensor([-0.25, 0.5, -1.0]).view(1, 3, 1, 1).expand(rgb.shape[0], 3, *rgb.shape[-2:])


def test_residual_switch_by_hand():
    """Off: the adapter's map as it is (negative values kept). On: relu(rgb + map), worked out on paper."""
    rgb = torch.tensor([[0.1, 0.6], [0.2, 0.0], [0.9, 1.0]]).view(1, 3, 1, 2)  # pixels (0.1,0.2,0.9), (0.6,0,1)
    depth = torch.zeros(1, 1, 1, 2)
    plain = RelightingModel(_ConstantMap(), residual=False)(rgb, depth)
    residual = RelightingModel(_ConstantMap(), residual=True)(rgb, depth)
    assert plain[0, :, 0, 0].tolist() == pytest.approx([-0.25, 0.5, -1.0])
    assert plain[0, :, 0, 1].tolist() == pytest.approx([-0.25, 0.5, -1.0])
    assert residual[0, :, 0, 0].tolist() == pytest.approx([0.0, 0.7, 0.0])  # 0.1-0.25 < 0, 0.2+0.5, 0.9-1 < 0
    assert residual[0, :, 0, 1].tolist() == pytest.approx([0.35, 0.5, 0.0])  # 0.6-0.25, 0+0.5, 1-1


def test_experiment_residual_flag_reaches_the_model():
    """``experiments[].residual: true`` on the identity adapter gives relu(rgb + rgb) = 2 * rgb."""
    cfg = parse_config("experiments:\n  - {name: res, model: identity, residual: true}\n"
                       "  - {name: plain, model: identity}\n")
    rgb = torch.tensor([0.3, 0.0, 0.45]).view(1, 3, 1, 1)
    depth = torch.zeros(1, 1, 1, 1)
    residual, plain = (build_model(exp, cfg.weights)(rgb, depth) for exp in cfg.experiments)
    assert residual.flatten().tolist() == pytest.approx([0.6, 0.0, 0.9])
    assert plain.flatten().tolist() == pytest.approx([0.3, 0.0, 0.45])


def test_prepare_for_inference_equals_the_plain_module(adapter):
    """bench.prepare_for_inference folds BatchNorm and goes channels_last; outputs stay within 1e-4 relative."""
    name, model = adapter
    model.eval()
    torch.manual_seed(5)
    for module in model.modules():  # non-trivial BN statistics, so folding is exercised
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    fast = bench.prepare_for_inference(model)
    rgb, depth = _inputs(1, 40, 24, seed=6)
    with torch.inference_mode():
        plain = model(rgb, depth)
        prepared = fast(rgb.contiguous(memory_format=torch.channels_last), depth.contiguous(memory_format=torch.channels_last))
    scale = plain.abs().max().clamp_min(1e-6)
    assert ((plain - prepared).abs().max() / scale) <= 1e-4, name
    assert all(not p.requires_grad for p in fast.parameters())
    assert any(p.requires_grad for p in model.parameters()) or not list(model.parameters()), "the original is untouched"
