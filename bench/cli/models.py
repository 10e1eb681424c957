"""``bench models``: list the registered model adapters with their parameter counts."""

from __future__ import annotations

import argparse

from bench.cli.arguments import add_command
from bench.cli.exit_codes import EXIT_OK

_DESCRIPTION = ("List every registered model adapter: name, parameters (millions), tags (relighting: a network built "
                "for relighting, in Table 4; global_residual: adds its input back itself), what else it declares "
                "(auxiliary loss terms, a guide image, a pretrained backbone, BatchNorm fold pairs, a time breakdown; "
                "models/capabilities.py) and a one-line description.")
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
    rows = [("model", "params (M)", "tags", "declares", "description")]
    for name in list_models():
        entry = get_entry(name)
        declares = entry.capabilities.describe() if entry.explicit else "(read off the module; not declared)"
        rows.append((name, f"{count_parameters(name) / 1e6:.2f}", ",".join(entry.tags) or "-", declares,
                     entry.description))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]), row[3].ljust(widths[3])]
        print("  ".join(cells + [row[4]]))
    return EXIT_OK
