"""``bench data``: dataset tools. ``data synth`` writes the built-in synthetic dataset in VIDIT format;
``data check`` validates every split a config uses, as ``run`` does before training."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command, add_config_args, show_help
from bench.cli.exit_codes import EXIT_OK

_SYNTH_DESCRIPTION = (
    "Render procedural 3-D scenes (ground plane, boxes, spheres, cylinders; Lambertian shading, "
    "cast shadows, 8 VIDIT light directions, 5 colour temperatures) and write them in the NTIRE 2021 Track 1 "
    "layout and the full VIDIT naming: RGBA PNGs and pickled-dict depth .npy files."
)
_SYNTH_EPILOG = """\
example:
  python -m bench data synth --root /tmp/vidit-synth --train 30 --val 6 --test 6 --size 256"""
_CHECK_DESCRIPTION = (
    "Scan and validate the training (per extra-data strategy), validation and test splits of a "
    "config, as `run` does before training, and print what each split holds."
)
_CHECK_EPILOG = """\
example:
  python -m bench data check benchmark.yaml --set data.source=vidit --set data.root=/data/vidit"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` with its sub-commands ``synth`` and ``check``; ``data`` alone prints its help (status 2)."""
    parser = add_command(subparsers, "data", summary="dataset tools: generate synthetic data, check a dataset")
    parser.set_defaults(func=lambda args: show_help(parser))
    data_commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    _add_synth_parser(data_commands)
    _add_check_parser(data_commands)


def _add_synth_parser(data_commands: argparse._SubParsersAction) -> None:
    synth = add_command(data_commands, "synth", summary="write the built-in synthetic dataset in VIDIT format",
                        description=_SYNTH_DESCRIPTION, epilog=_SYNTH_EPILOG)
    synth.add_argument("--root", type=Path, required=True,
                       help="folder to create (must not exist, or hold the same synthetic data)")
    synth.add_argument("--train", type=int, default=24, help="training scenes (default 24)")
    synth.add_argument("--val", type=int, default=6, help="validation scenes (default 6)")
    synth.add_argument("--test", type=int, default=6, help="test scenes (default 6)")
    synth.add_argument("--size", type=int, default=256, help="image side length in pixels (default 256; VIDIT is 1024)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--workers", type=int, default=None, help="render processes (default: all cores)")
    synth.set_defaults(func=execute_synth)


def _add_check_parser(data_commands: argparse._SubParsersAction) -> None:
    check = add_command(data_commands, "check", summary="validate every split a config uses",
                        description=_CHECK_DESCRIPTION, epilog=_CHECK_EPILOG)
    add_config_args(check)
    check.set_defaults(func=execute_check)


def execute_synth(args: argparse.Namespace) -> int:
    """Check the scene counts and size, then render and write the synthetic dataset under ``args.root``."""
    from datasets.synthetic import SyntheticSpec, generate
    from relight_base.errors import ConfigError

    for key in ("train", "val", "test"):
        if getattr(args, key) < 1:
            raise ConfigError(f"--{key} must be at least 1, got {getattr(args, key)}")
    if args.size < 8:
        raise ConfigError(f"--size must be at least 8 pixels, got {args.size}")
    spec = SyntheticSpec(train=args.train, val=args.val, test=args.test, seed=args.seed, size=args.size)
    root = generate(args.root, spec, workers=args.workers, progress=True)
    print(f"synthetic VIDIT-format data in {root} ({args.train}/{args.val}/{args.test} scenes, {args.size} px)")
    return EXIT_OK


def execute_check(args: argparse.Namespace) -> int:
    """Prepare the config's data in a scratch folder (validating every split) and print what each split holds."""
    import tempfile

    from bench.harness.config import load_config
    from bench.harness.prepare import prepare
    from datasets.splits import describe_split

    cfg = load_config(args.config, args.overrides, args.only)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = prepare(cfg, Path(scratch))
    print(f"data: {cfg.data.source} at {prepared.data_root}")
    for name, ds in prepared.splits.items():
        print(f"  {name:<28} {describe_split(ds)}")
    print("all splits valid")
    return EXIT_OK
