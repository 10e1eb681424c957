"""``bench publish``: the report plus the raw files a reader needs to recompute every number, local paths redacted."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command
from bench.cli.exit_codes import EXIT_OK

_DESCRIPTION = (
    "Publish a run with its evidence: render the report (report.html, tables/, figures/) into DEST and copy, "
    "into DEST/raw/, the files a reader needs to recompute every number: results.csv/.json, data.json, "
    "config.yaml, protocol.yaml, timing.csv/.json and, per experiment and seed, the per-image metrics, "
    "train_log.csv and experiment.yaml, laid out as in the run folder. No weights, checkpoints, predictions, "
    "locks or host details. Local paths (data.root, launcher.slurm.setup, weights files, any absolute path) "
    "are replaced by '<redacted: local path>'. DEST/recompute.py (numpy, pandas, scipy only) recomputes the "
    "tables from raw/ and exits 1 on any difference. DEST must lie outside RUN_DIR and be new, empty or a "
    "previous publish (which is replaced whole)."
)
_EPILOG = """\
examples:
  python -m bench publish runs/benchmark runs/benchmark-published
  python runs/benchmark-published/recompute.py
  python -m bench report runs/benchmark-published/raw --out /tmp/rerendered"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``publish`` and its arguments to ``subparsers``."""
    parser = add_command(subparsers, "publish", summary="publish the report with its raw files (local paths redacted)",
                         description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by `bench run`")
    parser.add_argument("dest", type=Path, metavar="DEST",
                        help="folder to publish into: new, empty or a previous publish; outside RUN_DIR")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Publish the run and print where the report and the raw files are."""
    from bench.harness.data import validation_scenes
    from reports.publish import RAW_DIR, publish

    page = publish(args.run_dir, args.dest, load_scenes=validation_scenes)
    print(f"report: {page}")
    print(f"raw:    {page.parent / RAW_DIR}")
    return EXIT_OK
