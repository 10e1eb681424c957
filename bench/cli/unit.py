"""``bench unit``: one experiment x seed of a run, in this process (what ``--launcher local`` starts per unit)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command
from bench.cli.exit_codes import EXIT_FAILED_EXPERIMENT, EXIT_OK

_DESCRIPTION = (
    "Train and score one experiment with one seed into OUT/<name>/, holding that unit's lock and recording its "
    "state in its unit.json. The launchers start one of these per unit; it is also how to redo a single unit by "
    "hand. The shared files and the timing phase are left to `bench run` (or `bench report` for the page)."
)
_EPILOG = """\
examples:
  python -m bench unit runs/benchmark/launch/config-0123456789ab.yaml --experiment mbnet --seed 0"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "unit", summary="train and score one experiment x seed (used by the launchers)",
                         description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("config", type=Path, help="benchmark YAML (the launchers pass the run's config snapshot)")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="output root (default: runs/)")
    parser.add_argument("--experiment", required=True, help="experiment name in the config")
    parser.add_argument("--seed", type=int, required=True, help="seed")
    parser.add_argument("--restart", action="store_true", help="start this unit over instead of resuming it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--log", help="log file to name in the unit's record")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from bench.harness.config import load_config
    from bench.launch.unit_process import run_one_unit, stop_on_sigterm

    cfg = load_config(args.config)
    stop_on_sigterm()
    state = run_one_unit(cfg, args.out, args.experiment, args.seed, restart=args.restart,
                         progress=not args.no_progress, log_path=args.log)
    print(f"{args.experiment} seed {args.seed}: {state}")
    return EXIT_OK if state == "done" else EXIT_FAILED_EXPERIMENT
