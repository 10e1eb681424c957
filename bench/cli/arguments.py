"""What the command modules share: how a command's help is laid out, the argument groups several
commands take, and the checks of comma-separated and positive values."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.exit_codes import EXIT_INPUT
from relight_base.errors import BenchError
from relight_base.results import Weights

HELP_FORMATTER = argparse.RawDescriptionHelpFormatter  # keeps the line breaks of descriptions and examples


def add_command(
    subparsers: argparse._SubParsersAction, name: str, *, summary: str, description: str | None = None,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """Add the sub-command ``name``; ``summary`` is its line in the parent's help, ``epilog`` its examples."""
    return subparsers.add_parser(name, help=summary, description=description, epilog=epilog, formatter_class=HELP_FORMATTER)


def show_help(parser: argparse.ArgumentParser) -> int:
    """Print ``parser``'s help on stderr (the user gave no command); returns the bad-input status."""
    parser.print_help(sys.stderr)
    return EXIT_INPUT


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """The config file, ``--set KEY=VALUE`` overrides and ``--only``, as ``run`` and ``data check`` take them."""
    parser.add_argument("config", type=Path, help="benchmark YAML file, e.g. benchmark.yaml")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key (repeatable), typed by the schema: --set train.steps=10 "
        "--set data.source=vidit --set experiments.mbnet.residual=false",
    )
    parser.add_argument("--only", metavar="NAME[,NAME]", help="run only these experiments (comma separated)")


def add_trained_experiment_args(parser: argparse.ArgumentParser) -> None:
    """Which trained weights to use: the run folder, ``--experiment`` and ``--seed``."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by `bench run`")
    parser.add_argument("--experiment", required=True, help="experiment name in the run")
    parser.add_argument("--seed", type=int, help="which seed's weights (default: the lowest)")
    parser.add_argument("--weights", choices=Weights.values(), default=None,
                        help="last: model.pt (end of training); best: best.pt (best held-out score, kept when the "
                             "run set train.val_every); ema_last, ema_best: ema.pt, ema_best.pt (the moving average "
                             "of the weights, kept when the run set train.ema_decay); default: the run's eval.weights")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first (repeatable): needed when the experiment's model comes from a plugin. "
                             "The plugins a run folder's config lists are never imported from it, since importing a "
                             "plugin runs its code: name only modules you trust")


def parse_names(text: str, flag: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; at least one name, else a BenchError naming ``flag``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BenchError(f"{flag}: give at least one name")
    return names


def parse_ints(text: str, flag: str) -> list[int]:
    """``"256,512"`` -> ``[256, 512]``; every value a positive whole number, else a BenchError naming ``flag``."""
    try:
        values = [int(v) for v in parse_names(text, flag)]
    except ValueError:
        raise BenchError(f"{flag}: expected comma-separated whole numbers, got {text!r}") from None
    return [require_positive(v, flag) for v in values]


def require_positive(value: int, flag: str) -> int:
    """``value`` if it is at least 1, else a BenchError naming ``flag``."""
    if value < 1:
        raise BenchError(f"{flag}: expected a positive number, got {value}")
    return value
