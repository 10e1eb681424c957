"""``bench perf``: how fast the models run and how little the harness adds (the suite is :mod:`bench.perf.suite`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bench.cli.arguments import add_command, parse_ints, parse_names, require_positive
from bench.cli.exit_codes import EXIT_OK

if TYPE_CHECKING:
    from bench.perf.suite import PerfOptions

_DESCRIPTION = """\
Measure, in one run: inference time per image of each model at each size (median,
p90, achieved GFLOP/s against this machine's matmul rate, peak memory); MBNet
against the official code's forward pass (same weights, interleaved runs); the
harness's training throughput against a bare loop; one model's training step
broken into data, forward, backward, optimizer and bookkeeping, against its floor
(batch x 3 x forward GFLOPs per image / matmul rate + a fused Adam step) and the
bytes of parameters, gradients and Adam state it moves; the data loader against
what training consumes; and metric time as a share of inference time.  About 6
to 8 minutes on 2 CPU cores with the defaults (the training step adds about 30 s).
Figures are medians; see docs/performance.md for what each one means."""

_EPILOG = """\
examples:
  python -m bench perf
  python -m bench perf --official-code ~/NTIRE2021-Depth-Guided-Image-Relighting-MBNet
  python -m bench perf --models mbnet --sizes 256 --sections inference,reference --reference-size 256
  python -m bench perf --sections train_step --step-model mbnet --step-size 64 --step-batch 3"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``perf`` and its options to ``subparsers``; ``--models`` and ``--sections`` default to the suite's."""
    parser = add_command(subparsers, "perf", summary="benchmark model speed and harness overhead; prints a table, writes CSV",
                         description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("--models", metavar="NAME[,NAME]", help="models to time (default: all five)")
    parser.add_argument("--sizes", default="256,512,1024", metavar="N[,N]", help="square input sides for inference (default 256,512,1024)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per model and size above 256 px (default 3)")
    parser.add_argument("--small-runs", type=int, default=5, help="timed runs at sizes <= 256 px (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per model and size (default 1)")
    parser.add_argument("--official-code", type=Path, metavar="DIR",
                        help="folder with the authors' MBNet code (hdfnet.py, or code/hdfnet.py) to race against; "
                             "default: the built-in official formulation")
    parser.add_argument("--reference-size", type=int, default=1024, help="image side for the MBNet reference race (default 1024)")
    parser.add_argument("--reference-runs", type=int, default=3, help="interleaved runs of the reference race (default 3)")
    parser.add_argument("--train-model", default="pgar", help="model for the harness-vs-bare-loop training race (default pgar)")
    parser.add_argument("--train-size", type=int, default=128, help="training image side (default 128)")
    parser.add_argument("--train-steps", type=int, default=5, help="steps per training round (default 5)")
    parser.add_argument("--train-rounds", type=int, default=5, help="interleaved rounds of the training race (default 5)")
    parser.add_argument("--step-model", default="mbnet", help="model whose training step is broken down (default mbnet)")
    parser.add_argument("--step-size", type=int, default=64, help="its training image side (default 64)")
    parser.add_argument("--step-batch", type=int, default=3, help="its batch size (default 3)")
    parser.add_argument("--step-steps", type=int, default=3, help="timed steps per block of the breakdown (default 3)")
    parser.add_argument("--step-rounds", type=int, default=3,
                        help="rounds of the breakdown, phased and harness blocks alternating (default 3)")
    parser.add_argument("--sections", metavar="NAME[,NAME]",
                        help="sections to run (default: all): inference, reference, training, train_step, data, metrics")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    parser.add_argument("--autocast", choices=("off", "bf16", "fp16"), default="off", help="CUDA mixed-precision inference")
    parser.add_argument("--compile", action="store_true", help="torch.compile the inference models")
    parser.add_argument("--csv", type=Path, default=Path("perf.csv"), help="where to write the CSV (default perf.csv)")
    parser.set_defaults(func=execute)


def perf_options(args: argparse.Namespace) -> PerfOptions:
    """The suite's options from the parsed flags, checked in flag order; a list flag left out
    (``--models``, ``--sections``) keeps the suite's default (every peer and MBNet, every section)."""
    from bench.perf.suite import PerfOptions

    fields: dict[str, object] = {}
    if args.models is not None:
        fields["models"] = parse_names(args.models, "--models")
    fields.update(
        sizes=parse_ints(args.sizes, "--sizes"), runs=require_positive(args.runs, "--runs"),
        small_runs=require_positive(args.small_runs, "--small-runs"), warmup=max(0, args.warmup), device=args.device,
        official_code=args.official_code, reference_size=require_positive(args.reference_size, "--reference-size"),
        reference_runs=require_positive(args.reference_runs, "--reference-runs"), train_model=args.train_model,
        train_size=require_positive(args.train_size, "--train-size"),
        train_steps=require_positive(args.train_steps, "--train-steps"),
        train_rounds=require_positive(args.train_rounds, "--train-rounds"), step_model=args.step_model,
        step_size=require_positive(args.step_size, "--step-size"), step_batch=require_positive(args.step_batch, "--step-batch"),
        step_steps=require_positive(args.step_steps, "--step-steps"),
        step_rounds=require_positive(args.step_rounds, "--step-rounds"),
    )
    if args.sections is not None:
        fields["sections"] = parse_names(args.sections, "--sections")
    return PerfOptions(**fields, autocast=args.autocast, compile=args.compile)


def execute(args: argparse.Namespace) -> int:
    """Run the suite, write the CSV, print the table, the target summary and the CSV's path."""
    from bench.perf.suite import format_table, run_perf, summarise_targets, write_csv

    report = run_perf(perf_options(args))
    frame = report.frame()
    path = write_csv(frame, args.csv)
    print(format_table(frame))
    for line in summarise_targets(frame):
        print(line)
    print(f"\nCSV: {path}")
    return EXIT_OK
