"""``bench config``: print a config as ``run`` would use it, or every config key with its default."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command
from bench.cli.exit_codes import EXIT_OK
from relight_base.errors import BenchError

_DESCRIPTION = "Print a config with defaults filled in and overrides applied (what `run` would use)."
_EPILOG = """\
examples:
  python -m bench config benchmark.yaml --set data.size=64
  python -m bench config --keys"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``config`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "config", summary="print the resolved config, or every key with its default",
                         description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("config", type=Path, nargs="?", help="benchmark YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a key")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="keep only these experiments")
    parser.add_argument("--keys", action="store_true", help="list every config key with its default and meaning")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Print the resolved config as YAML, or with ``--keys`` one line per key: name, default, meaning."""
    from bench.harness.config import load_config, schema_help, to_yaml

    if args.keys:
        for key, default, text in schema_help():
            print(f"{key:<28} {default:<22} {text}")
        return EXIT_OK
    if args.config is None:
        raise BenchError("config: give a config file, or --keys to list every key")
    print(to_yaml(load_config(args.config, args.overrides, args.only)), end="")
    return EXIT_OK
