"""DistributedDataParallel on CPU with gloo: two processes equal one process over the same global batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset

from bench.harness.config import parse_config
from bench.harness.distributed import DistContext, init_distributed, shutdown
from bench.harness.train import seed_everything, train_model
from bench.harness.validation import Validation

CONFIG = """
train: {steps: 3, batch_size: 4, lr: 0.001}
loss: {perceptual: 0.0}
data: {workers: 0}
experiments: [{name: tiny, model: identity}]
"""


class TinyFusionNet(nn.Module):
    """A BatchNorm-free two-input conv net, so per-process batches see exactly the global computation."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([rgb, depth], dim=1))


class RandomPairs(Dataset):
    """8 fixed random (rgb, depth, target) samples of 16x16."""

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(123)
        self.rgb = torch.rand(8, 3, 16, 16, generator=gen)
        self.depth = torch.rand(8, 1, 16, 16, generator=gen)
        self.target = torch.rand(8, 3, 16, 16, generator=gen)

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return {"rgb": self.rgb[i], "depth": self.depth[i], "target": self.target[i], "scene_id": f"Image{i:03d}",
                "origin": "baseline", "index": i}


def _train_once(ctx: DistContext, best_path: Path, accumulate: int = 1) -> nn.Module:
    """Three steps, validating after each on the same pairs (rank 0 only), best weights to ``best_path``;
    ``accumulate`` micro-batches per step."""
    cfg = parse_config(CONFIG.replace("lr: 0.001", f"lr: 0.001, accumulate: {accumulate}"))
    seed_everything(0)
    model = TinyFusionNet()
    validation = Validation(RandomPairs(), every=1, best_path=best_path, quantize=False)
    train_model(model, RandomPairs(), cfg, seed=0, ctx=ctx, progress=False, validation=validation)
    return model


def _rank_main(rank: int, world: int, port: int, out: str, accumulate: int = 1) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from torch.nn.parallel import DistributedDataParallel

    unsynced = {"n": 0}
    real_no_sync = DistributedDataParallel.no_sync

    def counting_no_sync(self):
        unsynced["n"] += 1
        return real_no_sync(self)

    DistributedDataParallel.no_sync = counting_no_sync  # this spawned process only
    ctx = init_distributed("cpu")
    try:
        model = _train_once(ctx, Path(out) / "ddp_best.pt", accumulate)
        torch.save(model.state_dict(), Path(out) / f"rank{rank}.pt")
        (Path(out) / f"rank{rank}_no_sync.txt").write_text(str(unsynced["n"]))
    finally:
        shutdown(ctx)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_match_single_process(tmp_path, monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    single = _train_once(DistContext(), tmp_path / "single_best.pt").state_dict()
    mp.spawn(_rank_main, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    seed_everything(0)
    initial = TinyFusionNet().state_dict()
    for key, value in single.items():
        assert torch.equal(rank0[key], rank1[key]), f"ranks disagree on {key}"
        assert torch.allclose(rank0[key], value, atol=1e-6, rtol=0), f"DDP differs from one process on {key}"
        assert not torch.equal(value, initial[key]), f"{key} did not train"
    # rank 0 validated (while rank 1 waited in the all-reduce) and kept the same best weights as one process
    single_best, ddp_best = torch.load(tmp_path / "single_best.pt"), torch.load(tmp_path / "ddp_best.pt")
    assert all(torch.allclose(single_best[k], ddp_best[k], atol=1e-6, rtol=0) for k in single_best)


def test_batch_must_split_over_processes():
    from relight_base.errors import ConfigError
    from bench.harness.train import per_rank_batch

    cfg = parse_config(CONFIG.replace("batch_size: 4", "batch_size: 3"))
    with pytest.raises(ConfigError, match="does not split evenly over 2 processes"):
        per_rank_batch(cfg, 2)


@pytest.mark.slow
def test_two_gloo_ranks_with_accumulation_match_one_process_on_the_whole_batch(tmp_path, monkeypatch):
    """Batch 4 over 2 ranks x accumulate 2 (one image per micro-batch) equals one process's batch of 4, and each
    rank skips the gradient sync on the first micro-batch of every step (3 steps: 3 no_sync blocks)."""
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    single = _train_once(DistContext(), tmp_path / "single_best.pt").state_dict()
    mp.spawn(_rank_main, args=(2, _free_port(), str(tmp_path), 2), nprocs=2, join=True)
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for key, value in single.items():
        assert torch.equal(rank0[key], rank1[key]), f"ranks disagree on {key}"
        assert torch.allclose(rank0[key], value, atol=1e-6, rtol=0), f"DDP + accumulation differs on {key}"
    assert [(tmp_path / f"rank{r}_no_sync.txt").read_text() for r in (0, 1)] == ["3", "3"]
