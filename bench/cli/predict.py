"""``bench predict``: relight one image of any size with the weights of a trained experiment."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command, add_trained_experiment_args
from bench.cli.exit_codes import EXIT_OK

_DESCRIPTION = (
    "Relight one image (any size) with the weights of a trained experiment. Depth: a VIDIT .npy "
    "(pickled dict, read admitting only numpy arrays and numbers: nothing in it runs), a plain 2-D .npy, or a "
    "16-bit/8-bit greyscale PNG (scaled to [0,1]). A model from a plugin needs --plugin: the plugins a run folder "
    "lists are never imported from it."
)
_EPILOG = """\
example:
  python -m bench predict runs/benchmark --experiment mbnet --image scene.png --depth scene.npy --out relit.png"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``predict`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "predict", summary="relight your own image with a trained experiment",
                         description=_DESCRIPTION, epilog=_EPILOG)
    add_trained_experiment_args(parser)
    parser.add_argument("--image", type=Path, required=True, help="input PNG (RGB or RGBA, 8-bit)")
    parser.add_argument("--depth", type=Path, required=True, help="depth map: .npy or 16-bit PNG")
    parser.add_argument("--out", type=Path, required=True, help="output PNG")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Relight ``args.image`` with ``args.depth`` and write the result to ``args.out``."""
    from bench.harness.inference import predict_file

    predict_file(args.run_dir, args.experiment, args.image, args.depth, args.out, seed=args.seed, weights=args.weights,
                 plugins=args.plugin)
    print(f"relit image: {args.out}")
    return EXIT_OK
