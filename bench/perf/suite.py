"""``python -m bench perf``: how fast the models run and how little the harness adds, measured in one run.

Sections (each row of the printed table and of the CSV names its section):

* ``machine``   fp32 matrix-multiply rate (2048x2048, median), at the start and at the end of the run:
                the yardstick for achieved GFLOP/s, and a check that the machine's speed did not drift.
* ``inference`` per model and size: forward time per image (median, p90; batch 1, the model as
                :func:`bench.prepare_for_inference` returns it, ``inference_mode``, channels_last,
                synchronised), GFLOPs, achieved GFLOP/s and its ratio to the matmul rate, peak RSS
                (and CUDA max allocated) during that size's runs.
* ``reference`` MBNet against the official code's forward pass (built-in formulation, or the authors'
                code from ``--official-code DIR``): same weights, same inputs, runs interleaved; the
                time ratio and the largest output difference.
* ``training``  images/s of the harness's :func:`bench.harness.train.train_model` against a bare loop (same
                model, loss, optimizer, batch, steps, data in memory), rounds interleaved; peak RSS of
                a few training steps per model; the optimizer step (Adam per-parameter loop vs fused).
* ``data``      the data loader's images/s (first epoch decoding PNG/NPY, later epochs from the
                decoded cache) against the images/s training consumes.
* ``metrics``   PSNR, SSIM and LPIPS time per image (batched as in evaluation) and their share of each
                model's inference time at the same size.

Timings on a shared machine drift: ratios are taken between runs interleaved in time, and every
figure is a median.  Nothing here is a unit test; tests only check the suite runs and its output is
well formed.
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import torch
from torch import nn

from bench.perf.memory import track_peak
from bench.harness.timing import device_name, percentile

log = logging.getLogger(__name__)

CSV_COLUMNS = ["section", "item", "size", "quantity", "value", "unit", "note"]


@dataclass
class PerfOptions:
    """What ``bench perf`` measures; defaults are the full suite (under 10 minutes on 2 CPU cores)."""

    models: list[str] = field(default_factory=lambda: ["mbnet", "atst", "danet", "rd3d", "pgar"])
    sizes: list[int] = field(default_factory=lambda: [256, 512, 1024])
    runs: int = 3
    warmup: int = 1
    small_runs: int = 5  # runs at sizes <= 256, where a pass is short and noise is larger
    device: str = "auto"
    official_code: Path | None = None
    reference_size: int = 1024
    reference_runs: int = 3
    train_model: str = "pgar"
    train_size: int = 128
    train_batch: int = 3
    train_steps: int = 5
    train_rounds: int = 5
    memory_train_steps: int = 2
    loader_scenes: int = 12
    loader_epochs: int = 3
    metric_batch: int = 4
    matmul_size: int = 2048
    optimizer_model: str = "mbnet"  # whose parameters the Adam-step comparison updates
    autocast: str = "off"
    compile: bool = False
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))


@dataclass
class PerfRow:
    """One measured figure."""

    section: str
    item: str
    size: int | None
    quantity: str
    value: float
    unit: str
    note: str = ""


class PerfReport:
    """The rows measured so far, and the figures later sections need from earlier ones."""

    def __init__(self, options: PerfOptions, device: torch.device) -> None:
        self.options = options
        self.device = device
        self.rows: list[PerfRow] = []
        self.inference_s: dict[tuple[str, int], float] = {}  # median forward seconds of models that compute
        self.train_images_per_s: float | None = None
        self.matmul_gflops: float = math.nan  # the start-of-run matmul rate (GFLOP/s)

    def add(self, section: str, item: str, size: int | None, quantity: str, value: float, unit: str, note: str = "") -> None:
        self.rows.append(PerfRow(section, item, size, quantity, float(value), unit, note))
        log.debug("%-9s %-24s %5s %-24s %12.4g %s %s", section, item, size or "", quantity, value, unit, note)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.rows], columns=CSV_COLUMNS)


# --------------------------------------------------------------------------- helpers


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU."""
    from relight_base.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device: expected auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device: expected auto, cpu, cuda or cuda:N, got {name!r}")
    return device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of one synchronised call."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], runs: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Time each function ``runs`` times, alternating between them (after ``warmup`` untimed rounds)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + runs):
        for key, fn in fns.items():
            t = timed(fn, device)
            if i >= warmup:
                times[key].append(t)
    return times


def _inputs(size: int, device: torch.device, channels_last: bool, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(size)
    rgb = torch.rand(batch, 3, size, size, generator=gen).to(device)
    depth = torch.rand(batch, 1, size, size, generator=gen).to(device)
    if channels_last:
        rgb, depth = (t.contiguous(memory_format=torch.channels_last) for t in (rgb, depth))
    return rgb, depth


def matmul_rate(device: torch.device, n: int = 2048, runs: int = 5) -> float:
    """Median fp32 GFLOP/s of an ``n x n`` matrix product on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    times = interleaved({"mm": lambda: a @ b}, runs, 2, device)["mm"]
    return 2 * n**3 / statistics.median(times) / 1e9


# --------------------------------------------------------------------------- sections


def section_machine(report: PerfReport, when: str) -> float:
    rate = matmul_rate(report.device, report.options.matmul_size)
    report.add("machine", f"matmul fp32 {report.options.matmul_size}", None, f"GFLOP/s ({when})", rate, "GFLOP/s",
               f"{device_name(report.device)}, {torch.get_num_threads()} threads")
    return rate


def section_inference(report: PerfReport) -> None:
    from bench.perf.fast_inference import prepare_for_inference
    from models.registry import create_model
    from bench.harness.timing import count_flops

    o, device = report.options, report.device
    for name in o.models:
        plain = create_model(name).eval()
        fast = prepare_for_inference(plain.to(device), autocast=o.autocast, compile=o.compile)
        for size in o.sizes:
            log.info("perf: inference, %s at %dx%d", name, size, size)
            runs = o.small_runs if size <= 256 else o.runs
            rgb, depth = _inputs(size, device, channels_last=True)
            with track_peak(device) as peak, torch.inference_mode():
                times = interleaved({"fwd": lambda: fast(rgb, depth)}, runs, o.warmup, device)["fwd"]
            median = statistics.median(times)
            flops = count_flops(plain, (size, size))
            if flops:
                report.inference_s[(name, size)] = median
            report.add("inference", name, size, "median", median, "s", f"{runs} runs after {o.warmup} warm-up")
            report.add("inference", name, size, "p90", percentile(times, 90), "s")
            if flops:
                report.add("inference", name, size, "GFLOPs", flops / 1e9, "GFLOP")
                report.add("inference", name, size, "achieved", flops / median / 1e9, "GFLOP/s")
                report.add("inference", name, size, "achieved / matmul", flops / median / 1e9 / report.matmul_gflops, "x")
            _add_peak(report, "inference", name, size, peak.peak)


def _add_peak(report: PerfReport, section: str, name: str, size: int | None, peak) -> None:
    note = "" if peak.rss_resettable else "peak since process start (could not be reset on this OS)"
    report.add(section, name, size, "peak RSS", peak.rss_mib, "MiB", note)
    if peak.cuda_max_allocated_mib is not None:
        report.add(section, name, size, "CUDA max allocated", peak.cuda_max_allocated_mib, "MiB")


def section_reference(report: PerfReport) -> None:
    from bench.perf.fast_inference import prepare_for_inference
    from bench.perf.mbnet_reference import reference_pair
    from bench.harness.timing import count_flops

    o, device = report.options, report.device
    pair = reference_pair(o.official_code)
    reference = pair.reference.to(device).eval()
    fast = prepare_for_inference(pair.ours.to(device), autocast=o.autocast, compile=o.compile)
    size = o.reference_size
    rgb, depth = _inputs(size, device, channels_last=False)
    rgb_cl, depth_cl = (t.contiguous(memory_format=torch.channels_last) for t in (rgb, depth))

    def run_reference():
        with torch.no_grad():
            return reference(rgb, depth)

    def run_ours():
        with torch.inference_mode():
            return fast(rgb_cl, depth_cl)

    diff = (run_reference() - run_ours()).abs().max().item()
    times = interleaved({"reference": run_reference, "ours": run_ours}, o.reference_runs, 0, device)
    ref_s, ours_s = statistics.median(times["reference"]), statistics.median(times["ours"])
    flops_ours = count_flops(pair.ours, (size, size))
    flops_ref = count_flops(reference, (size, size))
    note = f"{o.reference_runs} interleaved runs (first calls were the output check)"
    report.add("reference", "reference MBNet", size, "median", ref_s, "s", pair.description)
    report.add("reference", "ours (prepared)", size, "median", ours_s, "s", note)
    report.add("reference", "ours / reference", size, "time ratio", ours_s / ref_s, "x", "target <= 0.55")
    report.add("reference", "ours vs reference", size, "max |difference|", diff, "", "same weights and inputs")
    report.add("reference", "reference MBNet", size, "GFLOPs", flops_ref / 1e9, "GFLOP")
    report.add("reference", "ours (prepared)", size, "GFLOPs", flops_ours / 1e9, "GFLOP")
    for part, seconds in part_times(fast, run_ours).items():
        report.add("reference", f"ours: {part}", size, "time in one pass", seconds, "s", "where the time goes")


def part_times(model: nn.Module, run: Callable[[], object]) -> dict[str, float]:
    """Seconds spent in each direct child of the adapter (encoders, fusion, DDPMs, decoder) during one ``run()``.

    ``model`` is a prepared :class:`bench.harness.modeling.RelightingModel`; children of the wrapped adapter are
    timed with forward hooks (CPU wall time; on CUDA the figures are launch times only).
    """
    adapter = getattr(model, "adapter", model)
    groups = {"rgb_encoder": "RGB ResNet-50", "depth_encoder": "depth ResNet-50", "fusion": "DenseTransLayers",
              "ddpm": "DDPMs", "decode": "decoder", "head": "decoder", "lateral": "lateral 1x1"}
    totals: dict[str, float] = {}
    handles = []

    def hooks(label: str):
        start: list[float] = []

        def before(module, args):
            start.append(time.perf_counter())

        def after(module, args, output):
            totals[label] = totals.get(label, 0.0) + time.perf_counter() - start.pop()

        return before, after

    for name, child in adapter.named_children():
        label = next((v for k, v in groups.items() if name.startswith(k)), name)
        targets = list(child) if isinstance(child, nn.ModuleList) else [child]
        for target in targets:
            before, after = hooks(label)
            handles += [target.register_forward_pre_hook(before), target.register_forward_hook(after)]
    try:
        total = timed(run, torch.device("cpu"))
    finally:
        for handle in handles:
            handle.remove()
    totals["other (padding, upsampling, adds)"] = max(0.0, total - sum(totals.values()))
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def _memory_dataset(n: int, size: int, seed: int = 0) -> list[dict]:
    """``n`` random training samples held in memory, shaped like the dataset's (rgb, depth, target)."""
    gen = torch.Generator().manual_seed(seed)
    return [
        {"rgb": torch.rand(3, size, size, generator=gen), "depth": torch.rand(1, size, size, generator=gen),
         "target": torch.rand(3, size, size, generator=gen), "scene_id": f"mem{i:03d}"}
        for i in range(n)
    ]


def _train_config(o: PerfOptions, steps: int):
    from bench.harness.config import parse_config

    return parse_config(
        "experiments: [{name: perf, model: identity}]\n", "<perf>",
        overrides=[f"train.steps={steps}", f"train.batch_size={o.train_batch}", "train.log_every=1",
                   "data.workers=0", f"data.size={o.train_size}", "weights.perceptual=false", "weights.backbone=false"],
    )


def bare_training_loop(model: nn.Module, batches: list[tuple[torch.Tensor, ...]], cfg, device: torch.device) -> None:
    """The minimal loop: forward, the harness's loss, backward, the harness's optimizer and schedule."""
    from bench.harness.losses import LossWeights, RelightingLoss
    from bench.harness.train import make_optimizer, make_scheduler

    criterion = RelightingLoss(LossWeights(cfg.loss.charbonnier, cfg.loss.ssim, cfg.loss.perceptual,
                                           cfg.loss.charbonnier_eps, cfg.loss.ssim_form), vgg_pretrained=False).to(device)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(batches))
    model.train()
    for rgb, depth, target in batches:
        loss, _ = criterion(model(rgb.to(device), depth.to(device)), target.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    _sync(device)


def _harness_training(model: nn.Module, dataset: list[dict], cfg, device: torch.device) -> None:
    from bench.harness.distributed import DistContext
    from bench.harness.train import train_model

    train_model(model, dataset, cfg, seed=0, ctx=DistContext(device=device), progress=False, desc="perf")
    _sync(device)


def section_training(report: PerfReport) -> None:
    from bench.harness.modeling import RelightingModel
    from models.registry import create_model

    o, device = report.options, report.device
    cfg = _train_config(o, o.train_steps)
    dataset = _memory_dataset(max(o.train_batch * o.train_steps, o.train_batch), o.train_size)
    batches = [
        tuple(torch.stack([s[k] for s in dataset[i * o.train_batch:(i + 1) * o.train_batch]]) for k in ("rgb", "depth", "target"))
        for i in range(o.train_steps)
    ]
    torch.manual_seed(0)
    initial = RelightingModel(create_model(o.train_model), residual=False).to(device)
    images = o.train_steps * o.train_batch
    bare, harness = [], []

    def run_bare() -> float:
        return images / timed(lambda: bare_training_loop(copy.deepcopy(initial), batches, cfg, device), device)

    def run_harness() -> float:
        return images / timed(lambda: _harness_training(copy.deepcopy(initial), dataset, cfg, device), device)

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
               "median of per-round ratios; target >= 0.97")
    _optimizer_step(report)
    for name in o.models:
        model = RelightingModel(create_model(name), residual=False).to(device)
        if not any(p.requires_grad for p in model.parameters()):
            continue  # nothing to train (e.g. identity)
        log.info("perf: training memory, %s", name)
        steps_cfg = _train_config(o, o.memory_train_steps)
        with track_peak(device) as peak:
            _harness_training(model, dataset, steps_cfg, device)
        _add_peak(report, "training", name, o.train_size, peak.peak)
        del model


def _optimizer_step(report: PerfReport) -> None:
    """Adam step time over a model's parameters (MBNet's by default): the per-parameter loop against the fused kernel."""
    from models.registry import create_model

    device, name = report.device, report.options.optimizer_model
    params = [p for p in create_model(name).to(device).parameters()]
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
    report.add("training", item, None, "fused", fused_s, "s", "what bench.harness.train.make_optimizer uses")
    report.add("training", item, None, "fused / for-loop", fused_s / loop_s, "x")


def section_data(report: PerfReport) -> None:
    from bench.harness.config import DataConfig
    from bench.harness.data import build_split
    from datasets.dataset import make_loader
    from datasets.synthetic import SyntheticSpec, generate

    o = report.options
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as scratch:
        spec = SyntheticSpec(train=o.loader_scenes, val=1, test=1, seed=0, size=max(o.train_size, 64))
        root = generate(Path(scratch) / "synthetic", spec, progress=False)
        data = DataConfig(source="synthetic", root=str(root), size=o.train_size, cache=True, workers=0)
        dataset = build_split(data, root, "train")
        loader = make_loader(dataset, batch_size=o.train_batch, shuffle=True, workers=0, seed=0)
        rates = []
        for _ in range(o.loader_epochs):
            start = time.perf_counter()
            count = sum(batch["rgb"].shape[0] for batch in loader)
            rates.append(count / (time.perf_counter() - start))
    what = f"{len(dataset)} pairs, {o.train_size}px, batch {o.train_batch}, 0 workers"
    report.add("data", "loader, first epoch", o.train_size, "throughput", rates[0], "images/s", what + ", decoding PNG/NPY")
    cached = statistics.median(rates[1:]) if len(rates) > 1 else rates[0]
    report.add("data", "loader, cached", o.train_size, "throughput", cached, "images/s", what + ", from the decoded cache")
    if report.train_images_per_s:
        report.add("data", "cached loader / training", o.train_size, "throughput ratio", cached / report.train_images_per_s, "x",
                   f"training consumes {report.train_images_per_s:.3g} images/s ({o.train_model}); > 1: not a bottleneck")


def section_metrics(report: PerfReport) -> None:
    from bench.harness.metrics import LPIPSMetric, psnr, ssim

    o, device = report.options, report.device
    size = max(o.sizes)
    lpips_metric = LPIPSMetric("auto", device)
    note = "AlexNet weights loaded"
    if not lpips_metric.available:
        note = "AlexNet weights absent: timed with an untrained trunk of the same shape (no values reported)"
        lpips_metric = LPIPSMetric.timing_only(device)
    gen = torch.Generator().manual_seed(1)
    pred = torch.rand(o.metric_batch, 3, size, size, generator=gen).to(device)
    target = torch.rand(o.metric_batch, 3, size, size, generator=gen).to(device)
    fns = {"psnr": lambda: psnr(pred, target), "ssim": lambda: ssim(pred, target), "lpips": lambda: lpips_metric(pred, target)}
    with torch.inference_mode():
        times = interleaved(fns, 3, 1, device)
    per_image = {k: statistics.median(v) / o.metric_batch for k, v in times.items()}
    total = sum(per_image.values())
    batch_note = f"batch {o.metric_batch}, per image"
    for key, seconds in per_image.items():
        report.add("metrics", key.upper(), size, "time", seconds, "s", batch_note + ("; " + note if key == "lpips" else ""))
    report.add("metrics", "PSNR+SSIM+LPIPS", size, "time", total, "s", batch_note)
    for name in o.models:
        inference = report.inference_s.get((name, size))
        if inference:
            report.add("metrics", f"share of {name} inference", size, "metrics / inference time",
                       total / inference, "x", "target <= 0.10")


SECTIONS = {
    "inference": section_inference,
    "reference": section_reference,
    "training": section_training,
    "data": section_data,
    "metrics": section_metrics,
}


# --------------------------------------------------------------------------- the suite


def run_perf(options: PerfOptions) -> PerfReport:
    """Run the selected sections in a fixed order; returns every measured row."""
    from relight_base.errors import ConfigError
    from models.registry import list_models

    unknown = [s for s in options.sections if s not in SECTIONS]
    if unknown:
        raise ConfigError(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    known = set(list_models())
    for name in [*options.models, options.train_model]:
        if name not in known:
            from models.registry import get_entry

            get_entry(name)  # raises the registry's "unknown model" error with suggestions
    device = resolve_device(options.device)
    report = PerfReport(options, device)
    started = time.perf_counter()
    report.matmul_gflops = section_machine(report, "start")
    for name, section in SECTIONS.items():  # fixed order: metrics uses inference times, data uses training throughput
        if name in options.sections:
            log.info("perf: %s", name)
            section(report)
    rate = max(report.matmul_gflops, section_machine(report, "end"))
    for row in report.rows:  # relate achieved rates to the faster of the two matmul measurements
        if row.quantity == "achieved / matmul":
            achieved = next(r.value for r in report.rows
                            if (r.section, r.item, r.size, r.quantity) == (row.section, row.item, row.size, "achieved"))
            row.value, row.note = achieved / rate, f"matmul rate {rate:.0f} GFLOP/s (the faster of start and end)"
    report.add("machine", "suite", None, "wall time", time.perf_counter() - started, "s",
               f"torch {torch.__version__}")
    return report


def format_table(frame: pd.DataFrame) -> str:
    """The rows as one aligned text table, sections separated by a blank line."""
    lines = []
    header = f"{'section':<10} {'item':<26} {'size':>5}  {'quantity':<32} {'value':>11} {'unit':<9} note"
    lines.append(header)
    lines.append("-" * len(header))
    previous = None
    for row in frame.itertuples(index=False):
        if previous is not None and row.section != previous:
            lines.append("")
        previous = row.section
        size = "" if row.size is None or (isinstance(row.size, float) and math.isnan(row.size)) else str(int(row.size))
        lines.append(f"{row.section:<10} {row.item:<26} {size:>5}  {row.quantity:<32} {_fmt(row.value):>11} {row.unit:<9} {row.note}")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    if value == 0 or math.isnan(value):
        return f"{value:g}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write the rows atomically as CSV."""
    from relight_base.atomic import atomic_write_text

    atomic_write_text(Path(path), frame.to_csv(index=False))
    return Path(path)


def summarise_targets(frame: pd.DataFrame) -> list[str]:
    """One line per target of the performance issue that this run measured: met or missed, by how much."""
    lines = []

    def value(section: str, quantity: str, item: str | None = None) -> Iterable[float]:
        sel = frame[(frame.section == section) & (frame.quantity == quantity)]
        if item is not None:
            sel = sel[sel.item == item]
        return list(sel.value)

    for v in value("reference", "time ratio"):
        lines.append(f"MBNet vs official formulation: {v:.3f}x the time (target <= 0.55): {'met' if v <= 0.55 else 'missed'}")
    for v in value("training", "throughput ratio"):
        lines.append(f"harness training throughput: {v:.3f}x the bare loop (target >= 0.97): {'met' if v >= 0.97 else 'missed'}")
    shares = frame[(frame.section == "metrics") & (frame.quantity == "metrics / inference time")]
    for row in shares.itertuples(index=False):
        lines.append(f"metrics {row.item}: {row.value:.3f} (target <= 0.10): {'met' if row.value <= 0.10 else 'missed'}")
    return lines
