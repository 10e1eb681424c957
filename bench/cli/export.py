"""``bench export``: a trained experiment's test-split predictions in the NTIRE 2021 submission format."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command, add_trained_experiment_args
from bench.cli.exit_codes import EXIT_OK

_DESCRIPTION = (
    "Run a trained experiment on the test inputs at their native size and write one RGB PNG per "
    "ImageNNN plus readme.txt (runtime per image, CPU/GPU, extra data), zipped."
)
_EPILOG = """\
example:
  python -m bench export runs/benchmark --experiment mbnet"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "export", summary="write test-split predictions in the NTIRE 2021 submission format",
                         description=_DESCRIPTION, epilog=_EPILOG)
    add_trained_experiment_args(parser)
    parser.add_argument("--out", type=Path, help="zip file (default: RUN_DIR/<experiment>/submission.zip)")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Write the submission zip and print its path."""
    from bench.harness.inference import export_submission

    path = export_submission(args.run_dir, args.experiment, out=args.out, seed=args.seed, weights=args.weights,
                             plugins=args.plugin)
    print(f"submission: {path}")
    return EXIT_OK
