"""``bench run``: train, evaluate and time every experiment x seed of a config, then render the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.arguments import add_command, add_config_args, require_positive
from bench.cli.exit_codes import EXIT_FAILED_EXPERIMENT, EXIT_OK
from relight_base.errors import BenchError
from relight_base.run_folder import RESULTS_CSV

_DESCRIPTION = (
    "Prepare the data (generating the built-in synthetic data if needed), validate every split, "
    "then run every experiment x seed and write <out>/<name>/."
)
_EPILOG = """\
examples:
  python -m bench run benchmark.yaml
  python -m bench run benchmark.yaml --only baseline,mbnet --set train.steps=2 --set data.size=64
  python -m bench run benchmark.yaml --launcher local --jobs 2
  python -m bench run benchmark.yaml --tuned runs/benchmark-tune/tuned.yaml
  python -m bench run configs/ntire21_track1.yaml --launcher slurm --set launcher.slurm.partition=gpu --no-wait
  python -m bench status runs/benchmark

launchers (docs/cluster.md):
  inline  every experiment x seed one after another in this process (default)
  local   experiment x seed units as parallel processes here, --jobs at a time, each on its own GPU(s)
          or share of the CPU cores; then one timing phase and the report
  slurm   one Slurm job-array element per unit (submitit; pip install -e ".[slurm]"), requeued on time
          limits and preemption; timing and the report run as a job after the array"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` and its options to ``subparsers``."""
    parser = add_command(subparsers, "run", summary="train, evaluate and time every experiment x seed of a config",
                         description=_DESCRIPTION, epilog=_EPILOG)
    add_config_args(parser)
    parser.add_argument("--out", type=Path, default=Path("runs"), help="output root (default: runs/); results go to OUT/<name>/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--restart", action="store_true",
                        help="start every experiment over (by default a rerun reuses finished experiments and resumes "
                        "unfinished ones from their newest checkpoint)")
    parser.add_argument("--launcher", choices=("inline", "local", "slurm"),
                        help="where the experiment x seed units run (default: the config's launcher.type, inline)")
    parser.add_argument("--jobs", type=int, metavar="N", help="--launcher local: units running at once "
                        "(launcher.jobs; default 1)")
    parser.add_argument("--no-wait", action="store_true",
                        help="--launcher slurm: submit and return; the report is written by a dependent job")
    parser.add_argument("--tuned", type=Path, metavar="TUNED_YAML",
                        help="apply the values `bench tune` chose (its tuned.yaml) as each experiment's own train: "
                        "settings; refused when it was made for another config")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    """Run the benchmark, print the results table and the report's path; status 3 if an experiment failed."""
    from bench.harness.config import load_config
    from bench.harness.tensorboard_log import require_tensorboard

    overrides = list(args.overrides)
    if args.launcher:
        overrides.append(f"launcher.type={args.launcher}")
    if args.jobs is not None:
        overrides.append(f"launcher.jobs={require_positive(args.jobs, '--jobs')}")
    cfg = load_config(args.config, overrides, None if args.tuned else args.only)
    if args.tuned:
        cfg = with_tuned(cfg, args.tuned, args.only)
    require_tensorboard(cfg.train.tensorboard)  # before anything is written
    keep_tuned_copy(args.out / cfg.name, args.tuned)
    if cfg.launcher.type == "inline":
        if args.no_wait:
            raise BenchError("--no-wait needs --launcher slurm")
        return _run_inline(cfg, args)
    return _run_launched(cfg, args)


def with_tuned(cfg, path: Path, only: str | None = None):
    """``cfg`` with ``path``'s tuned values applied (checked against every experiment of the config, each on its
    own, then ``--only`` applied), saying where each experiment's values came from."""
    from bench.harness.config import select_experiments
    from bench.tune.tuned_file import apply_tuned, read_tuned

    cfg, lines = apply_tuned(cfg, read_tuned(path, cfg), str(path))
    for line in lines:
        print(f"tuned: {line}")
    return select_experiments(cfg, only) if only else cfg


def keep_tuned_copy(run_dir: Path, tuned: Path | None) -> None:
    """The run folder keeps a copy of the tuned file it was run with (``tuned.yaml``; the report shows each row's
    budget from it), and none when run without ``--tuned`` (a stale copy would credit tuning that is not in force)."""
    from relight_base.atomic import atomic_write_text, ensure_output_dir
    from bench.tune.tuned_file import TUNED_YAML

    copy = run_dir / TUNED_YAML
    if tuned is None:
        if copy.is_file():
            copy.unlink()
        return
    atomic_write_text(ensure_output_dir(run_dir) / TUNED_YAML, Path(tuned).read_text(encoding="utf-8"))


def _run_inline(cfg, args: argparse.Namespace) -> int:
    from bench.harness.run import run_benchmark
    from bench.launch.finish import render_run_report

    outcome = run_benchmark(cfg, args.out, progress=not args.no_progress, restart=args.restart)
    if outcome.results.empty:  # a non-zero rank under torchrun
        return EXIT_OK
    return _print_outcome(cfg, outcome, render_run_report(outcome.run_dir))


def _run_launched(cfg, args: argparse.Namespace) -> int:
    from bench.launch.coordinator import launch_run

    launched = launch_run(cfg, args.out, no_wait=args.no_wait, progress=not args.no_progress, restart=args.restart)
    if launched.outcome is None:
        return EXIT_OK
    return _print_outcome(cfg, launched.outcome, launched.report)


def format_results(frame) -> str:
    """A compact text table of a results frame for the terminal."""
    if frame.empty:
        return "(no results)"
    shown = frame[["experiment", "seed", "split", "status", "psnr", "ssim", "lpips", "mps", "time_per_image_s",
                   "params_m", "gflops"]]
    return shown.to_string(index=False, na_rep="n/a", float_format=lambda v: f"{v:.4f}")


def _print_outcome(cfg, outcome, report) -> int:
    print(format_results(outcome.results))
    print(f"\nresults: {outcome.run_dir / RESULTS_CSV}  (data: {cfg.data.source}, {cfg.data.size} px)")
    print(f"report:  {report}")
    if outcome.failed:
        print(f"failed: {', '.join(outcome.failed)} (see the status and message columns of {RESULTS_CSV}, "
              f"or `python -m bench status {outcome.run_dir}`)", file=sys.stderr)
        return EXIT_FAILED_EXPERIMENT
    return EXIT_OK
