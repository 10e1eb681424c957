"""``bench tune``: the same, declared tuning budget for every trainable experiment (Optuna), then ``tuned.yaml``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.arguments import add_command, add_config_args, require_positive
from bench.cli.exit_codes import EXIT_OK

_DESCRIPTION = (
    "Tune every trainable experiment of a config with exactly the same budget: tune.trials trials of tune.steps "
    "training steps (x tune.seeds), values drawn from one search space (tune.space; default the lr, log-uniform "
    "over [3e-5, 3e-3]) by one seeded sampler (tune.sampler: qmc, tpe, random). Each trial trains on the training "
    "split and is scored only on tune.holdout training scenes held out of training, never on val or test. Failed "
    "trials count as the worst value and are not retried. Trials run in rounds of tune.parallel, as units of "
    "OUT/<name>-tune/ (inline, --launcher local --jobs N, or --launcher slurm: one job array per round); the "
    "studies live in its tune.journal (Optuna's "
    "journal file storage), so rerunning the same command continues an interrupted tuning. It ends by writing "
    "OUT/<name>-tune/tuned.yaml, which `bench run CONFIG --tuned FILE` applies. Needs Optuna: "
    "pip install -e \".[tune]\"."
)
_EPILOG = """\
examples:
  python -m bench tune benchmark.yaml
  python -m bench tune benchmark.yaml --set tune.trials=6 --set tune.steps=100 --launcher local --jobs 2
  python -m bench run benchmark.yaml --tuned runs/benchmark-tune/tuned.yaml"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``tune`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "tune", summary="tune every trainable experiment with the same budget (Optuna)",
                         description=_DESCRIPTION, epilog=_EPILOG)
    add_config_args(parser)
    parser.add_argument("--out", type=Path, default=Path("runs"),
                        help="output root (default: runs/); trials and tuned.yaml go to OUT/<name>-tune/")
    parser.add_argument("--launcher", choices=("inline", "local", "slurm"),
                        help="where the trials run (default inline; local: parallel processes, --jobs at a time; "
                        "slurm: one job array per round, launcher.slurm.* settings)")
    parser.add_argument("--jobs", type=int, metavar="N", help="--launcher local: trials running at once")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Tune, printing one line per trial, then the chosen values per experiment and the tuned file's path."""
    from bench.harness.config import load_config
    from bench.harness.tensorboard_log import require_tensorboard
    from bench.tune.runner import tune

    overrides = list(args.overrides)
    if args.jobs is not None:
        overrides.append(f"launcher.jobs={require_positive(args.jobs, '--jobs')}")
    cfg = load_config(args.config, overrides, args.only)
    require_tensorboard(cfg.train.tensorboard)
    if args.launcher == "slurm":
        from bench.launch.slurm import require_slurm

        require_slurm()  # before any data is prepared
    outcome = tune(cfg, args.out, launcher=args.launcher or "inline", progress=not args.no_progress)
    for name, record in outcome.records.items():
        values = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in record["train"].items())
        print(f"{name}: {values} (trial {record['trial']}, held-out {record['held_out']:.4f}; budget "
              f"{record['budget']['trials']} trials x {record['budget']['steps']} steps)")
    print(f"tuned: {outcome.tuned}")
    return EXIT_OK
