"""One model's training step, phase by phase, in variants that might make it faster; or its profile.

    python -m benchmarks.training_step --model mbnet --size 64 --batch 3 --rounds 4 --steps 3
    python -m benchmarks.training_step --variants plain,channels_last,compile
    python -m benchmarks.training_step --profile 3            # where the plain step's time goes (torch.profiler)

Every variant trains its own copy of the same randomly initialised model (``RelightingModel``, no residual) with
the harness's loss and :func:`bench.harness.optim.make_optimizer`, on the harness's loader over random in-memory
samples, timed with :func:`bench.perf.sections.training_step.time_phases` (data, forward, backward, optimizer,
synchronised between phases), inside :func:`bench.speedups.allocator.steady_allocator` as training runs.  Blocks of
``--steps`` steps per variant alternate for ``--rounds`` rounds (order rotating), after ``--warmup`` steps each.

Variants (none changes the harness; each is what a change to ``bench/harness/train.py`` would do):

* ``plain``          the step with plain convolutions (the harness's before it took ``small_map_gemm``);
* ``channels_last``  the model's weights and the inputs in channels_last;
* ``compile``        ``torch.compile(model)`` (default inductor); its compile time, the first steps, is printed;
* ``small_map_gemm`` 3x3 convolutions (stride 1, padding 1, ``in * out >= 512 * 512`` channels) on maps of at most
                     ``--gemm-pixels`` pixels computed as ``F.unfold`` + one matrix product (:mod:`bench.speedups.small_map_conv`,
                     which ``bench.harness.train.train_model`` now uses):
                     the same sums in another order, for the weight-bound layers of deep, narrow maps;
* ``small_map_gemm_1x1`` the same, 1x1 convolutions (stride 1) too.

Prints per variant the median seconds of each phase and of the step, and the step against ``plain``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import time

import torch

from bench.harness.losses import RelightingLoss
from bench.harness.modeling import RelightingModel
from bench.harness.optim import make_optimizer
from bench.harness.timing import round_order
from bench.perf.sections import training_step as ts
from bench.perf.sections.training import memory_dataset, train_config
from bench.speedups.allocator import steady_allocator
from bench.speedups.small_map_conv import SmallMapConv2d, small_map_convs
from datasets.dataset import make_loader
from models.registry import create_model

VARIANTS = ("plain", "channels_last", "compile", "small_map_gemm", "small_map_gemm_1x1")


def build(variant: str, initial: torch.nn.Module, args: argparse.Namespace) -> ts.TrainingStep:
    """A :class:`TrainingStep` of ``variant`` over its own copy of ``initial``."""
    model = copy.deepcopy(initial)
    memory_format = torch.contiguous_format
    if variant.startswith("small_map_gemm"):  # switched for good on this copy (the harness does it per run)
        SmallMapConv2d.max_pixels = args.gemm_pixels
        switch = small_map_convs(model, args.gemm_channels ** 2, kernels=(1, 3) if variant.endswith("1x1") else (3,))
        count = switch.__enter__()
        print(f"{variant}: {count} convolutions, on maps <= {args.gemm_pixels} px")
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        memory_format = torch.channels_last
    cfg = train_config(1, args.batch, args.size)
    optimizer = make_optimizer(model, cfg)  # over the plain module's parameters, as the harness builds it
    net = torch.compile(model) if variant == "compile" else model
    net.train()
    dataset = memory_dataset(args.batch * 8, args.size)
    loader = make_loader(dataset, batch_size=args.batch, shuffle=False, workers=0)
    criterion = RelightingLoss(cfg.loss, vgg_pretrained=False)
    return ts.TrainingStep(net, criterion, optimizer, ts.forever(loader), torch.device("cpu"), memory_format)


def compare(args: argparse.Namespace, initial: torch.nn.Module) -> None:
    """Warm every variant up, then alternate blocks of steps; print the medians."""
    steps = {}
    for variant in args.variants:
        steps[variant] = build(variant, initial, args)
        start = time.perf_counter()
        for _ in range(args.warmup):
            ts.time_phases(steps[variant])
        print(f"{variant:<14} warm-up of {args.warmup} steps: {time.perf_counter() - start:.1f} s")
    times: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
    for r in range(args.rounds):
        for variant in round_order(list(args.variants), r):
            times[variant].extend(ts.time_phases(steps[variant]) for _ in range(args.steps))
    base = "plain" if "plain" in times else next(iter(times))  # the ratio column is relative to this variant
    print(f"\n{'variant':<14} {'data':>8} {'forward':>8} {'backward':>8} {'optim':>8} {'step':>8} {'x ' + base:>8}  "
          f"(median s over {args.rounds * args.steps} steps)")
    steps_s = {variant: statistics.median(sum(row.values()) for row in rows) for variant, rows in times.items()}
    for variant, rows in times.items():
        med = {k: statistics.median(row[k] for row in rows) for k in ts.PHASES}
        step = steps_s[variant]
        print(f"{variant:<14} " + " ".join(f"{med[k]:>8.4f}" for k in ts.PHASES)
              + f" {step:>8.4f} {step / steps_s[base]:>8.3f}")


def profile(args: argparse.Namespace, initial: torch.nn.Module) -> None:
    """Profile ``--profile`` plain steps (after the warm-up); print the top operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile as torch_profile, record_function

    step = build("plain", initial, args)
    for _ in range(args.warmup):
        ts.time_phases(step)
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        for _ in range(args.profile):
            with record_function("training step"):
                ts.time_phases(step)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top)
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mbnet")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="steps per block (default 3)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of blocks, order rotating (default 4)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first (default 2)")
    parser.add_argument("--variants", default="plain,channels_last", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--gemm-pixels", type=int, default=16, help="small_map_gemm: largest map, in pixels (default 16)")
    parser.add_argument("--gemm-channels", type=int, default=512,
                        help="small_map_gemm: convolutions with in * out >= this squared (default 512)")
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS", help="profile this many plain steps instead")
    parser.add_argument("--top", type=int, default=25, help="operators the profile lists (default 25)")
    args = parser.parse_args()
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"--variants: unknown {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    initial = RelightingModel(create_model(args.model), residual=False)
    print(f"{args.model} at {args.size} px, batch {args.batch}, {torch.get_num_threads()} threads")
    with steady_allocator():
        if args.profile:
            profile(args, initial)
        else:
            compare(args, initial)


if __name__ == "__main__":
    main()
