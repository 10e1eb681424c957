"""``bench status``: each experiment x seed of a run folder: pending, running, done, failed, cancelled or killed."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command
from bench.cli.exit_codes import EXIT_OK

_DESCRIPTION = (
    "Show every experiment x seed (unit) of a run folder: its state (pending, running, done, failed, cancelled, "
    "killed, not run), its Slurm job or local process, the step of its newest checkpoint, and for units that did "
    "not finish the message and log path; then the whole run in one line: units done of total, time elapsed and "
    "an estimate of the time left (from the measured time per training step of each model). Useful after "
    "`bench run --launcher slurm --no-wait`."
)
_EPILOG = """\
examples:
  python -m bench status runs/benchmark"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "status", summary="show the state of every experiment x seed of a run folder",
                         description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by `bench run`")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from bench.launch.status import run_line, run_status

    table = run_status(args.run_dir)
    print(table.to_string(index=False))
    counts = table["state"].value_counts()
    print("\n" + ", ".join(f"{n} {state}" for state, n in counts.items()))
    print(run_line(args.run_dir))
    return EXIT_OK
