"""Section ``training``: the harness's training throughput against a bare loop, optimizer step, peak memory.

:func:`bench.harness.train.train_model` and :func:`bare_training_loop` train copies of one model with
the same loss, optimizer, batches and steps, data in memory, in rounds that alternate which goes first.
"""

from __future__ import annotations

import copy
import logging
import statistics

import torch
from torch import nn

from bench.harness.config import parse_config
from bench.harness.distributed import DistContext
from bench.harness.losses import RelightingLoss
from bench.harness.modeling import RelightingModel
from bench.harness.timing import synchronize
from bench.harness.optim import make_optimizer, make_scheduler
from bench.harness.train import train_model
from bench.perf.measure import interleaved, timed
from bench.perf.memory import track_peak
from bench.perf.report import PerfOptions, PerfReport
from models.registry import create_model

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # rgb (B,3,H,W), depth (B,1,H,W), target (B,3,H,W)


def measure(report: PerfReport) -> None:
    """Add throughput rows (bare loop, harness, their ratio), Adam step times and each model's peak memory."""
    o = report.options
    dataset = memory_dataset(max(o.train_batch * o.train_steps, o.train_batch), o.train_size)
    _throughput(report, dataset)
    _optimizer_step(report)
    _training_memory(report, dataset)


def memory_dataset(n: int, size: int, seed: int = 0) -> list[dict]:
    """``n`` random training samples held in memory, shaped like the dataset's.

    Each is ``{"rgb": (3,size,size), "depth": (1,size,size), "target": (3,size,size)}`` float in [0,1)
    plus a ``scene_id``.
    """
    gen = torch.Generator().manual_seed(seed)
    return [
        {"rgb": torch.rand(3, size, size, generator=gen), "depth": torch.rand(1, size, size, generator=gen),
         "target": torch.rand(3, size, size, generator=gen), "scene_id": f"mem{i:03d}"}
        for i in range(n)
    ]


def _train_config(o: PerfOptions, steps: int):
    """A harness config training for ``steps`` at the suite's size and batch (:func:`train_config`)."""
    return train_config(steps, o.train_batch, o.train_size)


def train_config(steps: int, batch: int, size: int):
    """A harness config training for ``steps`` of ``batch`` images at ``size`` px, logging every step, 0 loader
    workers, without downloaded weights."""
    return parse_config(
        "experiments: [{name: perf, model: identity}]\n", "<perf>",
        overrides=[f"train.steps={steps}", f"train.batch_size={batch}", "train.log_every=1",
                   "data.workers=0", f"data.size={size}", "weights.perceptual=false", "weights.backbone=false"],
    )


def bare_training_loop(model: nn.Module, batches: list[Batch], cfg, device: torch.device) -> None:
    """The minimal loop: forward, the harness's loss, backward, the harness's optimizer and schedule."""
    criterion = RelightingLoss(cfg.loss, vgg_pretrained=False).to(device)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(batches))
    model.train()
    for rgb, depth, target in batches:
        loss, _ = criterion(model(rgb.to(device), depth.to(device)), target.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    synchronize(device)


def _harness_training(model: nn.Module, dataset: list[dict], cfg, device: torch.device) -> None:
    """Train ``model`` on ``dataset`` with :func:`bench.harness.train.train_model`, single process."""
    train_model(model, dataset, cfg, seed=0, ctx=DistContext(device=device), progress=False, desc="perf")
    synchronize(device)


def _batches(dataset: list[dict], batch: int, steps: int) -> list[Batch]:
    """The first ``steps`` consecutive batches of ``dataset``, stacked."""
    return [tuple(torch.stack([s[k] for s in dataset[i * batch:(i + 1) * batch]]) for k in ("rgb", "depth", "target"))
            for i in range(steps)]


def _throughput(report: PerfReport, dataset: list[dict]) -> None:
    """Images/s of the bare loop and of the harness, in rounds alternating which goes first."""
    o, device = report.options, report.device
    cfg = _train_config(o, o.train_steps)
    batches = _batches(dataset, o.train_batch, o.train_steps)
    torch.manual_seed(0)
    initial = RelightingModel(create_model(o.train_model), residual=False).to(device)
    images = o.train_steps * o.train_batch

    def run_bare() -> float:
        return images / timed(lambda: bare_training_loop(copy.deepcopy(initial), batches, cfg, device), device)

    def run_harness() -> float:
        return images / timed(lambda: _harness_training(copy.deepcopy(initial), dataset, cfg, device), device)

    bare, harness = [], []
    for i in range(o.train_rounds):  # alternate which goes first, so a drifting machine favours neither
        if i % 2 == 0:
            bare.append(run_bare())
            harness.append(run_harness())
        else:
            harness.append(run_harness())
            bare.append(run_bare())
    ratios = [h / b for h, b in zip(harness, bare)]
    what = f"{o.train_model}, {o.train_size}px, batch {o.train_batch}, {o.train_steps} steps x {o.train_rounds} rounds"
    report.train_images_per_s = statistics.median(harness)
    report.add("training", "bare loop", o.train_size, "throughput", statistics.median(bare), "images/s", what)
    report.add("training", "harness train_model", o.train_size, "throughput", statistics.median(harness), "images/s", what)
    report.add("training", "harness / bare", o.train_size, "throughput ratio", statistics.median(ratios), "x",
               "median of per-round ratios")


def _optimizer_step(report: PerfReport) -> None:
    """Adam step time over a model's parameters (MBNet's by default): the per-parameter loop against the fused kernel."""
    device, name = report.device, report.options.optimizer_model
    params = list(create_model(name).to(device).parameters())
    gen = torch.Generator().manual_seed(0)
    for p in params:
        p.grad = (torch.randn(p.shape, generator=gen) * 1e-3).to(device)
    optimizers = {
        "for-loop": torch.optim.Adam(params, lr=1e-4, betas=(0.5, 0.999), foreach=False),
        "fused": torch.optim.Adam(params, lr=1e-4, betas=(0.5, 0.999), fused=True),
    }
    times = interleaved({k: opt.step for k, opt in optimizers.items()}, 3, 1, device)
    loop_s, fused_s = statistics.median(times["for-loop"]), statistics.median(times["fused"])
    item = f"Adam step ({name} params)"
    report.add("training", item, None, "for-loop", loop_s, "s", "torch.optim.Adam(foreach=False)")
    report.add("training", item, None, "fused", fused_s, "s", "what bench.harness.optim.make_optimizer uses")
    report.add("training", item, None, "fused / for-loop", fused_s / loop_s, "x")


def _training_memory(report: PerfReport, dataset: list[dict]) -> None:
    """Peak memory of a few harness training steps per model (models without trainable parameters skipped)."""
    o, device = report.options, report.device
    steps_cfg = _train_config(o, o.memory_train_steps)
    for name in o.models:
        model = RelightingModel(create_model(name), residual=False).to(device)
        if not any(p.requires_grad for p in model.parameters()):
            continue  # nothing to train (e.g. identity)
        log.info("perf: training memory, %s", name)
        with track_peak(device) as peak:
            _harness_training(model, dataset, steps_cfg, device)
        report.add_peak("training", name, o.train_size, peak.peak)
        del model
