"""Resuming from a checkpoint continues training exactly, even for a network that draws random numbers.

The network here uses dropout, so every training step draws from torch's global generator: a resumed run
matches an uninterrupted one only if the checkpoint restored that generator's state (and the others).
The SIGKILL test in tests/test_resume.py does the same through real processes (slow set).
Checkpoints hold tensors and plain values only: tests/test_checkpoint_safety.py shows what that buys.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from bench.harness import checkpoint as ckpt
from bench.harness.config import parse_config
from bench.harness.distributed import DistContext
from bench.harness.train import seed_everything, train_model

STEPS, EVERY = 6, 3


class _DropoutNet(nn.Module):
    """RGB + depth -> RGB through a hidden layer with dropout (p 0.5): each training forward draws a mask."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.5), nn.Conv2d(8, 3, 1))

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([rgb, depth], dim=1))


class _Pairs(torch.utils.data.Dataset):
    """Four fixed 16x16 samples (the same on every call)."""

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(1)
        self.items = [{"rgb": torch.rand(3, 16, 16, generator=gen), "depth": torch.rand(1, 16, 16, generator=gen),
                       "target": torch.rand(3, 16, 16, generator=gen), "scene_id": f"Image{i:03d}",
                       "origin": "baseline", "index": i} for i in range(4)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def tiny_train_config(steps: int = STEPS, schedule: str = "constant", every: int = EVERY):
    """The training settings of these tests: ``steps`` steps of batch 2 under ``schedule``, a checkpoint every
    ``every`` steps (``step`` divides the lr by 10 from the third step on: inside every run here)."""
    return parse_config("experiments: [{name: a, model: identity}]\nloss: {perceptual: 0}\n"
                        f"train: {{steps: {steps}, batch_size: 2, lr: 0.01, schedule: {schedule}, lr_decay_step: 2, "
                        f"checkpoint_every: {every}, keep_checkpoints: 5}}\n")


def _train(folder, steps: int = STEPS, schedule: str = "constant", init_seed: int = 0,
           every: int = EVERY) -> dict[str, torch.Tensor]:
    """Train a net seeded with ``init_seed`` up to step ``steps`` with a checkpoint in ``folder`` every ``every``
    steps; return its final weights.  A run that resumes ends alike whatever ``init_seed``: the checkpoint's
    weights and RNG states replace those; one that starts afresh from another ``init_seed`` ends elsewhere."""
    seed_everything(init_seed)
    model = _DropoutNet()
    train_model(model, _Pairs(), tiny_train_config(steps, schedule, every), seed=0, ctx=DistContext(), progress=False,
                checkpoint_dir=folder, fingerprint="f")
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step"])
def test_a_resumed_run_equals_an_uninterrupted_one_with_dropout(tmp_path, schedule):
    uninterrupted = _train(tmp_path / "whole", schedule=schedule)
    folder = tmp_path / "interrupted"
    _train(folder, schedule=schedule)  # leaves its step-3 checkpoint (none is written at the last step)
    assert [p.name for p in ckpt.checkpoints(folder)] == [f"step_{EVERY:08d}.pt"]
    resumed = _train(folder, schedule=schedule, init_seed=1)  # resumes from step 3 and trains to step 6
    assert uninterrupted.keys() == resumed.keys()
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted), "resumed weights differ"
    fresh = _train(tmp_path / "fresh", schedule=schedule, init_seed=1)
    assert not all(torch.equal(uninterrupted[k], fresh[k]) for k in uninterrupted), "init_seed changes nothing"


def test_the_dropout_net_really_draws_random_numbers():
    """Guards the test above: without the restored generator state the weights would differ."""
    net = _DropoutNet().train()
    rgb, depth = torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8)
    torch.manual_seed(0)
    first = net(rgb, depth)
    assert not torch.equal(first, net(rgb, depth))


def _draws() -> tuple:
    """A few draws from each global generator training uses (NumPy's normal uses its cached Gaussian)."""
    return random.random(), np.random.standard_normal(3).tolist(), np.random.randint(0, 2**31, 2).tolist(), \
        torch.rand(3).tolist()


def test_rng_states_survive_a_weights_only_round_trip_bitwise(tmp_path):
    """rng_state() through torch.save and torch.load(weights_only=True): the draws after set_rng_state are the
    draws of the uninterrupted generators (NumPy's key as an int64 tensor, its cached Gaussian included)."""
    seed_everything(3)
    np.random.standard_normal()  # an odd number of normals: NumPy now holds a cached Gaussian
    torch.save(ckpt.rng_state(), tmp_path / "rng.pt")
    expected = _draws()
    seed_everything(99)
    state = torch.load(tmp_path / "rng.pt", weights_only=True)
    assert state["numpy"]["has_gauss"] == 1 and state["numpy"]["state"]["key"].dtype == torch.int64
    ckpt.set_rng_state(state)
    assert _draws() == expected
