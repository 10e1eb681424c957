"""Command-line interface: ``python -m bench <command>``.

One module per command (``run``, ``tune``, ``status``, ``report``, ``publish``, ``score``, ``predict``, ``export``,
``models``, ``data``, ``perf``, ``config``, ``unit``), each with ``add_parser(subparsers)`` and the function that runs it; they import the
harness only when they run, so ``--help`` stays fast.  This module assembles the parser and owns the
error policy: errors caused by input (config, data, model names, output folder) are printed as one
paragraph and exit with status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from bench.cli import config, data, export, models, perf, predict, publish, report, run, score, status, tune, unit
from bench.cli.arguments import HELP_FORMATTER, show_help
from bench.cli.exit_codes import EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED
from relight_base.errors import BenchError

__all__ = ["main", "make_parser"]

COMMANDS = (run, tune, status, report, publish, score, predict, export, models, data, perf, config, unit)  # in the order `--help` lists them

_DESCRIPTION = """\
relight-bench: train, evaluate and compare RGB-D fusion networks on depth-guided
image relighting (VIDIT / NTIRE 2021 Track 1: 6500 K North + depth -> 4500 K East).

With no dataset on disk, the built-in synthetic VIDIT-format data is generated on
first use, so `python -m bench run benchmark.yaml` works on a fresh clone."""

_EPILOG = """\
examples:
  python -m bench run benchmark.yaml
  python -m bench run benchmark.yaml --only mbnet --set train.steps=10 --out /tmp/runs
  python -m bench run benchmark.yaml --launcher local --jobs 2
  python -m bench status runs/benchmark
  python -m bench report runs/benchmark
  python -m bench publish runs/benchmark runs/benchmark-published
  python -m bench models
  python -m bench data synth --root /tmp/vidit-synth --train 30 --size 256
  python -m bench config benchmark.yaml --set data.size=64
  python -m bench config --keys
  python -m bench perf

Run a command with --help for its options."""


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m bench``: the global flags, then each command module's sub-parser."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=_DESCRIPTION, epilog=_EPILOG,
                                     formatter_class=HELP_FORMATTER)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    parser.add_argument("--version", action="version", version=f"relight-bench {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    if args.command is None:
        return show_help(parser)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        _check_package_layout()
        return func(args)
    except BenchError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so, keep the traceback one flag away
        if args.debug:
            traceback.print_exc()
        else:
            print(f"internal error: {type(exc).__name__}: {exc}\n(run with --debug for the traceback, and please report it)", file=sys.stderr)
        return EXIT_BUG


def _check_package_layout() -> None:
    """Fail clearly if ``relight_base``/``datasets``/``models``/``reports`` resolve to another distribution (e.g. Hugging Face datasets).

    Looks the packages up without importing them (importing ``models`` builds every adapter module).
    """
    import importlib.util

    here = Path(__file__).resolve().parents[2]
    for name in ("relight_base", "datasets", "models", "reports"):
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin).resolve().parent.parent if spec and spec.origin else None
        if origin != here:
            raise BenchError(
                f"the package {name!r} resolves to {origin or 'nothing'}, not to this checkout ({here}). Another "
                "distribution (e.g. Hugging Face `datasets`) shadows it: run from the checkout with an editable "
                "install (pip install -e .) in a virtual environment without that package"
            )


def _version() -> str:
    from bench import __version__

    return __version__
