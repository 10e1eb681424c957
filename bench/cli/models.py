"""``bench models``: list the registered model adapters with their parameter counts."""

from __future__ import annotations

import argparse

from bench.cli.arguments import add_command
from bench.cli.exit_codes import EXIT_OK

_DESCRIPTION = ("List every registered model adapter: name, parameters (millions), tags (relighting: a network built "
                "for relighting, in Table 4; global_residual: adds its input back itself) and a one-line description.")
_EPILOG = """\
examples:
  python -m bench models
  python -m bench models --plugin my_models.unet"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``models`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "models", summary="list registered models with parameter counts",
                         description=_DESCRIPTION, epilog=_EPILOG)
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="import MODULE first (repeatable)")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Import the plugins, then print one row per model: name, parameters in millions, tags, description."""
    from models.registry import count_parameters, get_entry, list_models, load_plugins

    load_plugins(args.plugin)
    rows = []
    for name in list_models():
        entry = get_entry(name)
        params = count_parameters(name) / 1e6
        rows.append((name, f"{params:.2f}", ",".join(entry.tags) or "-", entry.description))
    width = max(len(r[0]) for r in rows)
    tag_width = max(len(r[2]) for r in rows)
    print(f"{'model':<{width}}  {'params (M)':>10}  {'tags':<{tag_width}}  description")
    for name, params, tags, desc in rows:
        print(f"{name:<{width}}  {params:>10}  {tags:<{tag_width}}  {desc}")
    return EXIT_OK
