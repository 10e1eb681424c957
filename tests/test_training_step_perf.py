"""``bench perf``'s training-step section: the phases, the floor formula, the bytes rule, the rows and the target.

No test asserts a speed: the floor and the bytes are checked against hand computations, the breakdown's
arithmetic against injected times, and a real run of the section on a one-convolution model for its shape.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import bench
from bench.cli import main
from bench.harness.modeling import RelightingModel
from bench.perf.sections import training_step as ts
from bench.perf.suite import PerfOptions, run_perf, summarise_targets
from models import registry
from relight_base.errors import BenchError

TINY = "train_step_test_conv"


class _OneConv(nn.Module):
    """One 3x3 convolution on RGB + depth: 4*3*9 weights + 3 biases = 111 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([rgb, depth], dim=1))


@pytest.fixture
def tiny_model():
    """``TINY`` registered for the test only."""
    bench.register_model(TINY)(_OneConv)
    yield TINY
    registry._REGISTRY.pop(TINY, None)


def test_floor_is_three_forward_passes_at_the_matmul_rate_plus_adam():
    # 3 images x 3 passes x 2 GFLOP = 18 GFLOP at 120 GFLOP/s = 0.15 s, plus a 0.05 s Adam step
    assert ts.step_floor(gflops_per_image=2.0, batch=3, matmul_gflops=120.0, adam_seconds=0.05) == pytest.approx(0.2)
    assert ts.step_floor(0.5, 1, 100.0, 0.0) == pytest.approx(0.015)
    with pytest.raises(ValueError, match="matmul rate"):
        ts.step_floor(1.0, 3, 0.0, 0.1)


def test_bytes_rule_counts_a_tiny_model_by_hand():
    model = nn.Sequential(nn.Linear(10, 5), nn.Conv2d(2, 3, 1))  # 55 trainable + 9 frozen parameters, 4 bytes each
    for p in model[1].parameters():
        p.requires_grad_(False)
    moved = ts.step_bytes(model)
    assert moved.forward == 64 * 4  # every parameter read once
    assert moved.backward == 2 * 55 * 4  # trainable ones read again, their gradients written
    assert moved.optimizer == 7 * 55 * 4  # Adam: 4 tensors read, 3 written, per trainable parameter
    assert moved.total == (64 + 9 * 55) * 4
    assert ts.step_bytes(nn.Linear(10, 5).double()).total == 10 * 55 * 8


def test_bytes_rule_matches_what_fused_adam_keeps():
    """The optimizer term against Adam's own state after a step: it reads param, grad and its state, writes
    param and state."""
    model = nn.Linear(6, 4)
    opt = torch.optim.Adam(model.parameters(), fused=True)
    model(torch.randn(2, 6)).sum().backward()
    opt.step()
    state = sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if t.dim() > 0)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
    assert ts.step_bytes(model).optimizer == (params + grads + state) + (params + state)


def test_phases_are_assigned_between_the_right_marks():
    """With a clock that advances 1, 2, 3, 4, 5 between marks: data 1, forward 2, optimizer 3 + 5 (zero_grad and
    step), backward 4."""
    ticks = itertools.accumulate([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    model = RelightingModel(_OneConv())
    batch = {"rgb": torch.rand(2, 3, 16, 16), "depth": torch.rand(2, 1, 16, 16), "target": torch.rand(2, 3, 16, 16)}
    step = ts.TrainingStep(model, lambda pred, target: ((pred - target).abs().mean(), {}),
                           torch.optim.Adam(model.parameters()), iter([batch]), torch.device("cpu"))
    before = model.adapter.conv.weight.detach().clone()
    times = ts.time_phases(step, clock=lambda: next(ticks))
    assert times == {"data": 1.0, "forward": 2.0, "backward": 4.0, "optimizer": 8.0}
    assert not torch.equal(before, model.adapter.conv.weight)  # the step did update the weights


def test_bookkeeping_is_the_harness_step_minus_the_phases():
    phases = [{"data": 0.01, "forward": 0.2, "backward": 0.4, "optimizer": 0.1},
              {"data": 0.03, "forward": 0.4, "backward": 0.6, "optimizer": 0.3},
              {"data": 0.02, "forward": 0.3, "backward": 0.5, "optimizer": 0.2}]
    b = ts.combine(phases, [1.2, 1.0, 1.1])  # medians: 0.02 + 0.3 + 0.5 + 0.2 = 1.02; harness 1.1
    assert b.bookkeeping == pytest.approx(0.08) and b.total == pytest.approx(1.1)
    noisy = ts.combine(phases, [0.9])  # the phases timed apart sum to more than the harness step: no negative part
    assert noisy.bookkeeping == 0 and noisy.total == pytest.approx(1.02)
    with pytest.raises(ValueError):
        ts.combine([], [1.0])


def test_breakdown_of_a_real_training_step():
    torch.manual_seed(0)
    model = RelightingModel(_OneConv())
    b, optimizer = ts.measure_breakdown(model, size=16, batch=2, steps=2, rounds=2, warmup=1, device=torch.device("cpu"))
    parts = [*b.phases.values(), b.bookkeeping]
    assert all(p >= 0 for p in parts) and b.forward > 0 and b.backward > 0 and b.optimizer > 0
    assert sum(parts) <= b.total + 1e-12 and b.total >= b.harness
    assert optimizer.state  # the phased steps' Adam has built its state


def test_section_rows_floor_and_target(tiny_model):
    report = run_perf(PerfOptions(models=["pgar"], train_model="pgar", step_model=tiny_model, step_size=16, step_batch=2,
                                  step_steps=1, step_rounds=2, step_warmup=1, bandwidth_mib=4, matmul_size=64,
                                  device="cpu", sections=["train_step"]))
    frame = report.frame()
    step = frame[frame.section == "train_step"]
    value = dict(zip(step.quantity, step.value))
    assert set(ts.PHASES) | {"bookkeeping", "step total", "floor", "step / floor", "bytes moved"} <= set(value)
    assert sum(value[q] for q in [*ts.PHASES, "bookkeeping"]) == pytest.approx(value["step total"])
    rate = value["matmul rate of the floor"]  # the run's faster matmul rate, or one measured between the rounds
    assert rate >= frame[frame.quantity.str.startswith("GFLOP/s (")].value.max()
    assert value["forward GFLOPs per image"] == pytest.approx(2 * 3 * 36 * 16 * 16 / 1e9)  # 3 outputs x 36 MACs/pixel
    assert value["floor"] == pytest.approx(2 * 3 * value["forward GFLOPs per image"] / rate + value["Adam step alone"])
    assert value["step / floor"] == pytest.approx(value["step total"] / value["floor"])
    assert value["bytes moved"] == pytest.approx(10 * 111 * 4 / 1e9)
    assert value["bytes / bandwidth"] == pytest.approx(value["bytes moved"] / value["memory bandwidth"])
    assert step[step.quantity == "step / floor"].note.item() == "target <= 3.50"
    assert any(line.startswith(f"training step / floor ({tiny_model})") for line in summarise_targets(frame))


def test_a_model_without_parameters_and_bad_flags_are_input_errors(capsys):
    with pytest.raises(BenchError, match="--step-model: identity has no trainable parameters"):
        run_perf(PerfOptions(step_model="identity", matmul_size=64, device="cpu", sections=["train_step"]))
    assert main(["perf", "--sections", "train_step", "--step-size", "0"]) == 2
    assert "--step-size" in capsys.readouterr().err
    assert main(["perf", "--sections", "train_step", "--step-model", "mbnte"]) == 2
    assert "mbnet" in capsys.readouterr().err


def test_stream_probe_adds_in_place_and_counts_three_tensors():
    torch.manual_seed(0)
    stream, nbytes = ts.stream_probe(torch.device("cpu"), mib=1)
    assert nbytes == 3 * 2**20  # a and b read, a written: 1 MiB each
    before = stream().clone()  # a, after a += b
    added = stream() - before  # b: uniform in [0, 1), a 1 MiB float tensor
    assert added.numel() * 4 == 2**20 and 0.45 < added.mean().item() < 0.55 and added.min() >= -1e-6
