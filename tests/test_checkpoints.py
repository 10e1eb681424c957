"""Resuming from a checkpoint continues training exactly, even for a network that draws random numbers.

The network here uses dropout, so every training step draws from torch's global generator: a resumed run
matches an uninterrupted one only if the checkpoint restored that generator's state (and the others).
The SIGKILL test in tests/test_resume.py does the same through real processes (slow set).
"""

from __future__ import annotations

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


def _train(folder, steps: int = STEPS) -> dict[str, torch.Tensor]:
    """Train a fresh seeded net up to step ``steps`` with checkpoints in ``folder``; return its final weights."""
    cfg = parse_config("experiments: [{name: a, model: identity}]\nloss: {perceptual: 0}\n"
                       f"train: {{steps: {steps}, batch_size: 2, lr: 0.01, schedule: constant, "
                       f"checkpoint_every: {EVERY}, keep_checkpoints: 5}}\n")
    seed_everything(0)
    model = _DropoutNet()
    train_model(model, _Pairs(), cfg, seed=0, ctx=DistContext(), progress=False, checkpoint_dir=folder,
                fingerprint="f")
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_resumed_run_equals_an_uninterrupted_one_with_dropout(tmp_path):
    uninterrupted = _train(tmp_path / "whole")
    folder = tmp_path / "interrupted"
    _train(folder, steps=EVERY + 1)  # stopped after step 4; its newest checkpoint is step 3
    assert [p.name for p in ckpt.checkpoints(folder)] == [f"step_{EVERY:08d}.pt"]
    torch.manual_seed(12345)  # the generator is elsewhere now, as in a new process
    resumed = _train(folder)  # resumes from step 3 and trains to step 6
    assert uninterrupted.keys() == resumed.keys()
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted), "resumed weights differ"


def test_the_dropout_net_really_draws_random_numbers():
    """Guards the test above: without the restored generator state the weights would differ."""
    net = _DropoutNet().train()
    rgb, depth = torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8)
    torch.manual_seed(0)
    first = net(rgb, depth)
    assert not torch.equal(first, net(rgb, depth))
