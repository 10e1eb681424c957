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
from bench.harness.modeling import RelightingModel

MODELS = bench.list_models()


def _inputs(batch: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, h, w, generator=gen), torch.rand(batch, 1, h, w, generator=gen)


@pytest.fixture(scope="module", params=MODELS)
def adapter(request):
    torch.manual_seed(0)
    return request.param, bench.create_model(request.param)


def test_registry_is_not_empty():
    assert {"identity", "mbnet"} <= set(MODELS)


def test_training_forward_and_gradients(adapter):
    name, model = adapter
    model.train()
    rgb, depth = _inputs(3, 64, 64)
    out = model(rgb, depth)
    assert out.shape == (3, 3, 64, 64) and out.dtype == torch.float32, name
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        pytest.skip(f"{name} has no trainable parameters")
    model.zero_grad(set_to_none=True)
    out.float().square().mean().backward()
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"{name}: parameters never reached by the gradient: {missing[:5]}"


@pytest.mark.parametrize("batch", [1, 3])
def test_eval_any_size_deterministic_and_zero_depth(adapter, batch):
    name, model = adapter
    model.eval()
    rgb, depth = _inputs(batch, 48, 80, seed=1)
    with torch.no_grad():
        first = model(rgb, depth)
        second = model(rgb, depth)
        zero_depth = model(rgb, torch.zeros_like(depth))
        square = model(*_inputs(1, 64, 64, seed=4))
    assert first.shape == (batch, 3, 48, 80) and first.dtype == torch.float32, f"{name}: size not a multiple of 32"
    assert square.shape == (1, 3, 64, 64), name
    assert torch.equal(first, second), f"{name}: eval mode is not deterministic"
    assert torch.isfinite(first).all() and torch.isfinite(zero_depth).all(), f"{name}: NaN/inf output"


def test_state_dict_round_trip(adapter):
    name, model = adapter
    model.eval()
    torch.manual_seed(123)
    fresh = bench.create_model(name).eval()
    fresh.load_state_dict(model.state_dict())
    rgb, depth = _inputs(1, 64, 64, seed=2)
    with torch.no_grad():
        assert torch.equal(model(rgb, depth), fresh(rgb, depth)), name


def test_residual_switch(adapter):
    name, model = adapter
    model.eval()
    rgb, depth = _inputs(1, 64, 64, seed=3)
    with torch.no_grad():
        plain = RelightingModel(model, residual=False)(rgb, depth)
        residual = RelightingModel(model, residual=True)(rgb, depth)
        raw = model(rgb, depth)
    assert torch.equal(plain, raw)
    assert torch.allclose(residual, torch.relu(rgb + raw)) and (residual >= 0).all(), name


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
    rgb, depth = _inputs(1, 48, 80, seed=6)
    with torch.inference_mode():
        plain = model(rgb, depth)
        prepared = fast(rgb.contiguous(memory_format=torch.channels_last), depth.contiguous(memory_format=torch.channels_last))
    scale = plain.abs().max().clamp_min(1e-6)
    assert ((plain - prepared).abs().max() / scale) <= 1e-4, name
    assert all(not p.requires_grad for p in fast.parameters())
    assert any(p.requires_grad for p in model.parameters()) or not list(model.parameters()), "the original is untouched"
