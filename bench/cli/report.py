"""``bench report``: render tables, figures and report.html from stored run folders, without any model."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command
from bench.cli.exit_codes import EXIT_OK

_DESCRIPTION = (
    "Render Tables 1-4 (CSV, Markdown, LaTeX), the visual comparison, plots and report.html from "
    "run folders, without touching any model. Several run folders are merged into one report when comparable. "
    "Every PSNR/SSIM/LPIPS/MPS cell carries two kinds of uncertainty: a bootstrap interval over images (the "
    "test-set uncertainty of these trained weights) and, from 3 seeds, a t-interval over the seeds' means (what "
    "retraining changes); every difference from the reference rows (config `report:` section) gets both, a Holm "
    "correction over the table and a verdict: 'holds across seeds' (needs report.min_seeds seeds, default 5), "
    "'these weights only' or 'tied'. A report rescored after the run (protocol.yaml) says so at its top. "
    "Per-image scores of published images "
    "(`python -m bench score ... --out CSV`) can join the tables as extra rows (--extra)."
)
_EPILOG = """\
examples:
  python -m bench report runs/benchmark
  python -m bench report runs/machine_a/benchmark runs/machine_b/benchmark --out runs/merged
  python -m bench report runs/benchmark --extra s3net=s3net_val.csv --extra s3net:test=s3net_test.csv"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "report", summary="render the report (tables, figures, report.html) from stored results",
                         description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run folder(s) written by `bench run`")
    parser.add_argument("--out", type=Path, help="output folder (default: the run folder; required when merging)")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME[:SPLIT]=CSV",
                        help="add a row NAME to the quality tables from a per-image score CSV as `python -m bench "
                        "score` writes it (scene_id, psnr, ssim, lpips, mps), marked 'scored from published images'; "
                        "SPLIT is val (default) or test; matched to the run's images by scene id; repeatable")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Render the report and print the path of its HTML page."""
    from bench.harness.data import validation_scenes
    from reports.render import render_report

    page = render_report(args.run_dirs, args.out, load_scenes=validation_scenes, extras=args.extra)
    print(f"report: {page}")
    return EXIT_OK
