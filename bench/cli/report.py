"""``bench report``: render tables, figures and report.html from stored run folders, without any model."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command
from bench.cli.exit_codes import EXIT_OK

_DESCRIPTION = (
    "Render Tables 1-3 (CSV, Markdown, LaTeX), the visual comparison, plots and report.html from "
    "run folders, without touching any model. Several run folders are merged into one report when comparable."
)
_EPILOG = """\
examples:
  python -m bench report runs/benchmark
  python -m bench report runs/machine_a/benchmark runs/machine_b/benchmark --out runs/merged"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "report", summary="render the report (tables, figures, report.html) from stored results",
                         description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run folder(s) written by `bench run`")
    parser.add_argument("--out", type=Path, help="output folder (default: the run folder; required when merging)")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Render the report and print the path of its HTML page."""
    from bench.harness.data import validation_scenes
    from reports.render import render_report

    page = render_report(args.run_dirs, args.out, load_scenes=validation_scenes)
    print(f"report: {page}")
    return EXIT_OK
