"""The lr schedules of ``train.schedule``, stepped as the training loop steps them, against values by hand."""

from __future__ import annotations

import math

import pytest
import torch

from bench.harness.config import parse_config
from bench.harness.optim import make_scheduler
from relight_base.errors import ConfigError

MINIMAL = "experiments:\n  - name: a\n    model: identity\n"


def lrs(schedule: str, steps: int, *overrides: str, lr: float = 1.0, upto: int | None = None) -> list[float]:
    """The lr each of the first ``upto`` (default ``steps``) steps trains with, as the loop reads it."""
    cfg = parse_config(MINIMAL, overrides=[f"train.schedule={schedule}", f"train.lr={lr}", *overrides])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.train.lr)
    scheduler = make_scheduler(optimizer, cfg, steps)
    seen = []
    for _ in range(steps if upto is None else upto):
        seen.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return seen


def test_step_is_the_papers_divide_by_ten_after_a_quarter():
    assert lrs("step", 8) == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert lrs("step", 8, "train.lr_decay_step=5") == pytest.approx([1] * 5 + [0.1] * 3)


def test_constant_with_and_without_warmup():
    assert lrs("constant", 5) == pytest.approx([1.0] * 5)
    assert lrs("constant", 6, "train.warmup_steps=4", lr=2.0) == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])


def test_cosine_by_hand():
    # warm-up 2 steps (0.5, 1), then cos decay over the 8 steps 2..10: at step 2 + 8 * t the factor is (1 + cos(pi t)) / 2
    seen = lrs("cosine", 10, "train.warmup_steps=2")
    expected = [0.5, 1.0] + [(1 + math.cos(math.pi * k / 8)) / 2 for k in range(8)]
    assert seen == pytest.approx(expected)
    assert seen[6] == pytest.approx(0.5), "half-way through the decay the lr is half"
    assert lrs("cosine", 4, upto=6)[4:] == pytest.approx([0.0, 0.0]), "it stays at 0 past the last step"


def test_a_resumed_cosine_schedule_continues_where_it_stopped():
    cfg = parse_config(MINIMAL, overrides=["train.schedule=cosine", "train.warmup_steps=3", "train.lr=0.1"])

    def fresh():
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.train.lr)
        return optimizer, make_scheduler(optimizer, cfg, 12)

    optimizer, scheduler = fresh()
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    optimizer2, scheduler2 = fresh()
    optimizer2.load_state_dict(optimizer.state_dict())
    scheduler2.load_state_dict(state)
    for _ in range(7):
        assert scheduler2.get_last_lr() == pytest.approx(scheduler.get_last_lr())
        for opt, sched in ((optimizer, scheduler), (optimizer2, scheduler2)):
            opt.step()
            sched.step()


def test_unknown_schedule_names_the_key():
    with pytest.raises(ConfigError, match="train.schedule"):
        parse_config(MINIMAL, overrides=["train.schedule=linear"])
