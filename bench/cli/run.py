"""``bench run``: train, evaluate and time every experiment x seed of a config, then render the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.arguments import add_command, add_config_args
from bench.cli.exit_codes import EXIT_FAILED_EXPERIMENT, EXIT_OK
from relight_base.run_folder import RESULTS_CSV

_DESCRIPTION = (
    "Prepare the data (generating the built-in synthetic data if needed), validate every split, "
    "then run every experiment x seed and write <out>/<name>/."
)
_EPILOG = """\
examples:
  python -m bench run benchmark.yaml
  python -m bench run benchmark.yaml --only baseline,mbnet --set train.steps=2 --set data.size=64"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "run", summary="train, evaluate and time every experiment x seed of a config",
                         description=_DESCRIPTION, epilog=_EPILOG)
    add_config_args(parser)
    parser.add_argument("--out", type=Path, default=Path("runs"), help="output root (default: runs/); results go to OUT/<name>/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--restart", action="store_true",
                        help="start every experiment over (by default a rerun reuses finished experiments and resumes "
                        "unfinished ones from their newest checkpoint)")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Run the benchmark, print the results table and the report's path; status 3 if an experiment failed."""
    from bench.harness.config import load_config
    from bench.harness.data import validation_scenes
    from bench.harness.run import format_results, run_benchmark
    from reports.render import render_report

    cfg = load_config(args.config, args.overrides, args.only)
    outcome = run_benchmark(cfg, args.out, progress=not args.no_progress, restart=args.restart)
    if outcome.results.empty:  # a non-zero rank under torchrun
        return EXIT_OK
    print(format_results(outcome.results))
    print(f"\nresults: {outcome.run_dir / RESULTS_CSV}  (data: {cfg.data.source}, {cfg.data.size} px, {outcome.data_root})")
    print(f"report:  {render_report([outcome.run_dir], load_scenes=validation_scenes)}")
    if outcome.failed:
        print(f"failed: {', '.join(outcome.failed)} (see the message column of {RESULTS_CSV})", file=sys.stderr)
        return EXIT_FAILED_EXPERIMENT
    return EXIT_OK
