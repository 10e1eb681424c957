"""The adapter contract, checked for every registered model (the timm pattern: a new adapter is covered
the moment it is registered).

``forward(rgb (B,3,H,W) in [0,1], depth (B,1,H,W)) -> (B,3,H,W)`` at any size, gradients reaching every
trainable parameter, deterministic in eval mode, state dicts that round-trip, finite output for an
all-zero depth map, and the harness's residual switch on and off.  Then every capability a model declares
(:class:`models.capabilities.Capabilities`): its declaration matches its module, and each declared capability
does what it promises.
"""

from __future__ import annotations

import pytest
import torch

import bench
from relight_base.errors import ConfigError
from bench.harness.capabilities import adapter_terms, check_residual_switch
from bench.harness.config import ExperimentConfig, WeightsConfig, parse_config
from bench.harness.modeling import RelightingModel, backbone_weights, build_model, inference_model
from models.capabilities import KNOWN_TAGS, check_adapter
from models.registry import get_entry

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


# --------------------------------------------------------------------------- declared capabilities
# Every capability an adapter declares (models/capabilities.py) is exercised here, for every model declaring it:
# a new adapter is covered the moment it registers, with no test file of its own.


def _declaring(flag) -> list:
    """The models whose declaration passes ``flag``, heavy ones in the slow set."""
    chosen = [m for m in MODELS if flag(get_entry(m).capabilities)]
    return [pytest.param(m, marks=pytest.mark.slow) if m in HEAVY else m for m in chosen]


def _built(name: str, **kwargs):
    torch.manual_seed(0)
    return bench.create_model(name, **kwargs)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_is_described_and_its_declaration_matches_its_module(name):
    entry = get_entry(name)
    assert entry.explicit, f"{name}: built-in adapters declare their capabilities (register_model(capabilities=...))"
    first_line = (entry.factory.__doc__ or "").strip().splitlines()[0]
    assert entry.description == first_line and entry.description
    with torch.device("meta"):
        adapter = bench.create_model(name)
    check_adapter(name, entry.capabilities, adapter)  # raises when a method is declared but missing, or the reverse
    assert set(entry.tags) <= set(KNOWN_TAGS)


@pytest.mark.parametrize("name", _declaring(lambda c: c.pretrained))
def test_declared_pretrained_lists_what_was_loaded(name):
    """``pretrained``: the factory takes it, and the module says what it loaded (nothing on disk: random init)."""
    with torch.device("meta"):
        off = bench.create_model(name, pretrained=False)
        missing = bench.create_model(name, pretrained="auto")  # the tests' weight caches are empty
    for model in (off, missing):
        assert isinstance(model.pretrained_info, list) and model.pretrained_info
        assert all(isinstance(line, str) for line in model.pretrained_info)
        assert "random init" in " ".join(model.pretrained_info)
    with torch.device("meta"):
        wrapped = build_model(ExperimentConfig(name="x", model=name), WeightsConfig(backbone=False))
    assert backbone_weights(wrapped) == "; ".join(off.pretrained_info)


@pytest.mark.parametrize("name", _declaring(lambda c: c.auxiliary_terms))
def test_declared_auxiliary_terms_are_finite_differentiable_scalars(name):
    """After a training forward: named scalar terms with a gradient path; none outside training."""
    model = RelightingModel(_built(name), capabilities=get_entry(name).capabilities)
    rgb, depth = _inputs(2, 32, 32, seed=7)
    target = _inputs(2, 32, 32, seed=8)[0]
    if model.capabilities.guide is not None:
        model.adapter.set_guide(target[0], depth[0], "6500_N", "4500_E")
    model.train()
    model(rgb, depth)
    terms = adapter_terms(model, target)
    assert terms, f"{name}: no auxiliary terms after a training forward"
    for term_name, value in terms.items():
        assert value.dim() == 0 and torch.isfinite(value) and value.requires_grad, term_name
    sum(terms.values()).backward()
    assert any(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        model(rgb, depth)
    assert adapter_terms(model, target) == {}, f"{name}: terms kept outside training"


@pytest.mark.parametrize("name", _declaring(lambda c: c.guide is not None))
def test_declared_guide_changes_the_output_and_survives_a_state_dict_at_another_size(name):
    model = _built(name).eval()
    rgb, depth = _inputs(1, 32, 32, seed=9)
    with torch.no_grad():
        before = model(rgb, depth)
        guide_rgb, guide_depth = _inputs(1, 48, 40, seed=10)
        model.set_guide(guide_rgb[0], guide_depth[0], "6500_N", "4500_E")
        after = model(rgb, depth)
        assert not torch.equal(before, after), f"{name}: the guide does not reach the output"
        fresh = _built(name).eval()
        fresh.load_state_dict(model.state_dict())
        assert torch.equal(fresh(rgb, depth), after), f"{name}: the guide is not restored from the state dict"


@pytest.mark.parametrize("name", _declaring(lambda c: bool(c.fold_pairs)))
def test_declared_fold_pairs_fold_batchnorm_and_keep_the_output(name):
    """With its declared pairs, inference folds BatchNorms it would otherwise keep; the output stays the same."""
    model = _built(name).eval()
    pairs = get_entry(name).capabilities.fold_pairs
    wrapped = RelightingModel(model, capabilities=get_entry(name).capabilities).eval()

    def batchnorms(module):
        return sum(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)) for m in module.modules())

    declared, undeclared = inference_model(wrapped), bench.prepare_for_inference(wrapped)
    expected = sum(len(p) for cls, p in pairs.items() for m in model.modules() if type(m) is cls)
    assert batchnorms(undeclared) - batchnorms(declared) == expected
    rgb, depth = _inputs(1, 32, 32, seed=11)
    with torch.inference_mode():
        plain, fast = wrapped(rgb, depth), declared(rgb, depth)
    assert (plain - fast).abs().max() / plain.abs().max().clamp_min(1e-6) <= 1e-4


@pytest.mark.parametrize("name", _declaring(lambda c: bool(c.time_breakdown)))
def test_declared_time_breakdown_names_the_parts_bench_perf_times(name):
    from bench.perf.breakdown import OTHER, part_times

    groups = get_entry(name).capabilities.time_breakdown
    with torch.device("meta"):
        model = bench.create_model(name).eval()
    times = part_times(model, lambda: model(*(t.to("meta") for t in _inputs(1, 64, 64))), groups)
    assert set(groups.values()) <= set(times) and OTHER in times


@pytest.mark.parametrize("name", _declaring(lambda c: c.adds_input_back))
def test_a_global_residual_model_refuses_the_residual_switch(name):
    cfg = parse_config(f"experiments:\n  - {{name: twice, model: {name}, residual: true}}\n")
    with pytest.raises(ConfigError, match="already adds its input back"):
        check_residual_switch(0, cfg.experiments[0])
