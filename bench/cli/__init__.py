"""Command-line interface: ``python -m bench <command>``.

Errors caused by input (config, data, model names, output folder) are printed
as one paragraph and exit with status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path
from typing import Callable, Sequence

from relight_base.errors import BenchError

log = logging.getLogger("bench")

EXIT_OK, EXIT_BUG, EXIT_INPUT, EXIT_FAILED_EXPERIMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

_DESCRIPTION = """\
relight-bench: train, evaluate and compare RGB-D fusion networks on depth-guided
image relighting (VIDIT / NTIRE 2021 Track 1: 6500 K North + depth -> 4500 K East).

With no dataset on disk, the built-in synthetic VIDIT-format data is generated on
first use, so `python -m bench run benchmark.yaml` works on a fresh clone."""

_EPILOG = """\
examples:
  python -m bench run benchmark.yaml
  python -m bench run benchmark.yaml --only mbnet --set train.steps=10 --out /tmp/runs
  python -m bench report runs/benchmark
  python -m bench models
  python -m bench data synth --root /tmp/vidit-synth --train 30 --size 256
  python -m bench config benchmark.yaml --set data.size=64
  python -m bench config --keys
  python -m bench perf

Run a command with --help for its options."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="benchmark YAML file, e.g. benchmark.yaml")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key (repeatable), typed by the schema: --set train.steps=10 "
        "--set data.source=vidit --set experiments.mbnet.residual=false",
    )
    p.add_argument("--only", metavar="NAME[,NAME]", help="run only these experiments (comma separated)")


def _add_trained_experiment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by `bench run`")
    p.add_argument("--experiment", required=True, help="experiment name in the run")
    p.add_argument("--seed", type=int, help="which seed's weights (default: the lowest)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m bench``."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=_Formatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    parser.add_argument("--version", action="version", version=f"relight-bench {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "run", help="train, evaluate and time every experiment x seed of a config", formatter_class=_Formatter,
        description="Prepare the data (generating the built-in synthetic data if needed), validate every split, "
        "then run every experiment x seed and write <out>/<name>/.",
        epilog="examples:\n  python -m bench run benchmark.yaml\n"
        "  python -m bench run benchmark.yaml --only baseline,mbnet --set train.steps=2 --set data.size=64",
    )
    _add_config_args(p)
    p.add_argument("--out", type=Path, default=Path("runs"), help="output root (default: runs/); results go to OUT/<name>/")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--restart", action="store_true",
                   help="start every experiment over (by default a rerun reuses finished experiments and resumes "
                   "unfinished ones from their newest checkpoint)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "report", help="render the report (tables, figures, report.html) from stored results", formatter_class=_Formatter,
        description="Render Tables 1-3 (CSV, Markdown, LaTeX), the visual comparison, plots and report.html from "
        "run folders, without touching any model. Several run folders are merged into one report when comparable.",
        epilog="examples:\n  python -m bench report runs/benchmark\n"
        "  python -m bench report runs/machine_a/benchmark runs/machine_b/benchmark --out runs/merged",
    )
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run folder(s) written by `bench run`")
    p.add_argument("--out", type=Path, help="output folder (default: the run folder; required when merging)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "predict", help="relight your own image with a trained experiment", formatter_class=_Formatter,
        description="Relight one image (any size) with the weights of a trained experiment. Depth: a VIDIT .npy "
        "(pickled dict; only load files you trust), a plain 2-D .npy, or a 16-bit/8-bit greyscale PNG (scaled to [0,1]).",
        epilog="example:\n  python -m bench predict runs/benchmark --experiment mbnet --image scene.png --depth scene.npy --out relit.png",
    )
    _add_trained_experiment_args(p)
    p.add_argument("--image", type=Path, required=True, help="input PNG (RGB or RGBA, 8-bit)")
    p.add_argument("--depth", type=Path, required=True, help="depth map: .npy or 16-bit PNG")
    p.add_argument("--out", type=Path, required=True, help="output PNG")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "export", help="write test-split predictions in the NTIRE 2021 submission format", formatter_class=_Formatter,
        description="Run a trained experiment on the test inputs at their native size and write one RGB PNG per "
        "ImageNNN plus readme.txt (runtime per image, CPU/GPU, extra data), zipped.",
        epilog="example:\n  python -m bench export runs/benchmark --experiment mbnet",
    )
    _add_trained_experiment_args(p)
    p.add_argument("--out", type=Path, help="zip file (default: RUN_DIR/<experiment>/submission.zip)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "models", help="list registered models with parameter counts", formatter_class=_Formatter,
        description="List every registered model adapter: name, parameters (millions) and a one-line description.",
        epilog="examples:\n  python -m bench models\n  python -m bench models --plugin my_models.unet",
    )
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="import MODULE first (repeatable)")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("data", help="dataset tools: generate synthetic data, check a dataset", formatter_class=_Formatter)
    data_sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    p.set_defaults(func=lambda args: _missing_subcommand(p))
    s = data_sub.add_parser(
        "synth", help="write the built-in synthetic dataset in VIDIT format", formatter_class=_Formatter,
        description="Render procedural 3-D scenes (ground plane, boxes, spheres, cylinders; Lambertian shading, "
        "cast shadows, 8 VIDIT light directions, 5 colour temperatures) and write them in the NTIRE 2021 Track 1 "
        "layout and the full VIDIT naming: RGBA PNGs and pickled-dict depth .npy files.",
        epilog="example:\n  python -m bench data synth --root /tmp/vidit-synth --train 30 --val 6 --test 6 --size 256",
    )
    s.add_argument("--root", type=Path, required=True, help="folder to create (must not exist, or hold the same synthetic data)")
    s.add_argument("--train", type=int, default=24, help="training scenes (default 24)")
    s.add_argument("--val", type=int, default=6, help="validation scenes (default 6)")
    s.add_argument("--test", type=int, default=6, help="test scenes (default 6)")
    s.add_argument("--size", type=int, default=256, help="image side length in pixels (default 256; VIDIT is 1024)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--workers", type=int, default=None, help="render processes (default: all cores)")
    s.set_defaults(func=_cmd_data_synth)
    c = data_sub.add_parser(
        "check", help="validate every split a config uses", formatter_class=_Formatter,
        description="Scan and validate the training (per extra-data strategy), validation and test splits of a "
        "config, as `run` does before training, and print what each split holds.",
        epilog="example:\n  python -m bench data check benchmark.yaml --set data.source=vidit --set data.root=/data/vidit",
    )
    _add_config_args(c)
    c.set_defaults(func=_cmd_data_check)

    p = sub.add_parser(
        "perf", help="benchmark model speed and harness overhead; prints a table, writes CSV", formatter_class=_Formatter,
        description=_PERF_DESCRIPTION, epilog=_PERF_EPILOG,
    )
    p.add_argument("--models", default="mbnet,atst,danet,rd3d,pgar", metavar="NAME[,NAME]", help="models to time (default: all five)")
    p.add_argument("--sizes", default="256,512,1024", metavar="N[,N]", help="square input sides for inference (default 256,512,1024)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per model and size above 256 px (default 3)")
    p.add_argument("--small-runs", type=int, default=5, help="timed runs at sizes <= 256 px (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per model and size (default 1)")
    p.add_argument("--official-code", type=Path, metavar="DIR",
                   help="folder with the authors' MBNet code (hdfnet.py, or code/hdfnet.py) to race against; "
                        "default: the built-in official formulation")
    p.add_argument("--reference-size", type=int, default=1024, help="image side for the MBNet reference race (default 1024)")
    p.add_argument("--reference-runs", type=int, default=3, help="interleaved runs of the reference race (default 3)")
    p.add_argument("--train-model", default="pgar", help="model for the harness-vs-bare-loop training race (default pgar)")
    p.add_argument("--train-size", type=int, default=128, help="training image side (default 128)")
    p.add_argument("--train-steps", type=int, default=5, help="steps per training round (default 5)")
    p.add_argument("--train-rounds", type=int, default=5, help="interleaved rounds of the training race (default 5)")
    p.add_argument("--sections", default=",".join(("inference", "reference", "training", "data", "metrics")),
                   metavar="NAME[,NAME]", help="sections to run (default: all)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    p.add_argument("--autocast", choices=("off", "bf16", "fp16"), default="off", help="CUDA mixed-precision inference")
    p.add_argument("--compile", action="store_true", help="torch.compile the inference models")
    p.add_argument("--csv", type=Path, default=Path("perf.csv"), help="where to write the CSV (default perf.csv)")
    p.set_defaults(func=_cmd_perf)

    p = sub.add_parser(
        "config", help="print the resolved config, or every key with its default", formatter_class=_Formatter,
        description="Print a config with defaults filled in and overrides applied (what `run` would use).",
        epilog="examples:\n  python -m bench config benchmark.yaml --set data.size=64\n  python -m bench config --keys",
    )
    p.add_argument("config", type=Path, nargs="?", help="benchmark YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a key")
    p.add_argument("--only", metavar="NAME[,NAME]", help="keep only these experiments")
    p.add_argument("--keys", action="store_true", help="list every config key with its default and meaning")
    p.set_defaults(func=_cmd_config)
    return parser


# --------------------------------------------------------------------------- commands


def _cmd_run(args: argparse.Namespace) -> int:
    from bench.harness.config import load_config
    from bench.harness.run import format_results, run_benchmark

    cfg = load_config(args.config, args.overrides, args.only)
    outcome = run_benchmark(cfg, args.out, progress=not args.no_progress, restart=args.restart)
    if outcome.results.empty:  # a non-zero rank under torchrun
        return EXIT_OK
    print(format_results(outcome.results))
    print(f"\nresults: {outcome.run_dir / 'results.csv'}  (data: {cfg.data.source}, {cfg.data.size} px, {outcome.data_root})")
    from bench.harness.data import validation_scenes
    from reports.render import render_report

    print(f"report:  {render_report([outcome.run_dir], load_scenes=validation_scenes)}")
    if outcome.failed:
        print(f"failed: {', '.join(outcome.failed)} (see the message column of results.csv)", file=sys.stderr)
        return EXIT_FAILED_EXPERIMENT
    return EXIT_OK


_PERF_DESCRIPTION = """\
Measure, in one run: inference time per image of each model at each size (median,
p90, achieved GFLOP/s against this machine's matmul rate, peak memory); MBNet
against the official code's forward pass (same weights, interleaved runs); the
harness's training throughput against a bare loop; the data loader against what
training consumes; and metric time as a share of inference time.  About 6 to 8
minutes on 2 CPU cores with the defaults.  Figures are medians; see
docs/performance.md for what each one means."""

_PERF_EPILOG = """\
examples:
  python -m bench perf
  python -m bench perf --official-code ~/NTIRE2021-Depth-Guided-Image-Relighting-MBNet
  python -m bench perf --models mbnet --sizes 256 --sections inference,reference --reference-size 256"""


def _cmd_perf(args: argparse.Namespace) -> int:
    from bench.perf.suite import PerfOptions, format_table, run_perf, summarise_targets, write_csv

    options = PerfOptions(
        models=_names(args.models, "--models"), sizes=_ints(args.sizes, "--sizes"), runs=_positive(args.runs, "--runs"),
        small_runs=_positive(args.small_runs, "--small-runs"), warmup=max(0, args.warmup), device=args.device,
        official_code=args.official_code, reference_size=_positive(args.reference_size, "--reference-size"),
        reference_runs=_positive(args.reference_runs, "--reference-runs"), train_model=args.train_model,
        train_size=_positive(args.train_size, "--train-size"), train_steps=_positive(args.train_steps, "--train-steps"),
        train_rounds=_positive(args.train_rounds, "--train-rounds"), sections=_names(args.sections, "--sections"),
        autocast=args.autocast, compile=args.compile,
    )
    report = run_perf(options)
    frame = report.frame()
    path = write_csv(frame, args.csv)
    print(format_table(frame))
    for line in summarise_targets(frame):
        print(line)
    print(f"\nCSV: {path}")
    return EXIT_OK


def _names(text: str, flag: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BenchError(f"{flag}: give at least one name")
    return names


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in _names(text, flag)]
    except ValueError:
        raise BenchError(f"{flag}: expected comma-separated whole numbers, got {text!r}") from None
    return [_positive(v, flag) for v in values]


def _positive(value: int, flag: str) -> int:
    if value < 1:
        raise BenchError(f"{flag}: expected a positive number, got {value}")
    return value


def _cmd_report(args: argparse.Namespace) -> int:
    from bench.harness.data import validation_scenes
    from reports.render import render_report

    page = render_report(args.run_dirs, args.out, load_scenes=validation_scenes)
    print(f"report: {page}")
    return EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    from bench.harness.inference import predict_file

    predict_file(args.run_dir, args.experiment, args.image, args.depth, args.out, seed=args.seed)
    print(f"relit image: {args.out}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from bench.harness.inference import export_submission

    path = export_submission(args.run_dir, args.experiment, out=args.out, seed=args.seed)
    print(f"submission: {path}")
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from models.registry import count_parameters, get_entry, list_models, load_plugins

    load_plugins(args.plugin)
    rows = []
    for name in list_models():
        entry = get_entry(name)
        params = count_parameters(name) / 1e6
        rows.append((name, f"{params:.2f}", entry.description))
    width = max(len(r[0]) for r in rows)
    print(f"{'model':<{width}}  {'params (M)':>10}  description")
    for name, params, desc in rows:
        print(f"{name:<{width}}  {params:>10}  {desc}")
    return EXIT_OK


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from relight_base.errors import ConfigError
    from datasets.synthetic import SyntheticSpec, generate

    for key in ("train", "val", "test"):
        if getattr(args, key) < 1:
            raise ConfigError(f"--{key} must be at least 1, got {getattr(args, key)}")
    if args.size < 8:
        raise ConfigError(f"--size must be at least 8 pixels, got {args.size}")
    spec = SyntheticSpec(train=args.train, val=args.val, test=args.test, seed=args.seed, size=args.size)
    root = generate(args.root, spec, workers=args.workers, progress=True)
    print(f"synthetic VIDIT-format data in {root} ({args.train}/{args.val}/{args.test} scenes, {args.size} px)")
    return EXIT_OK


def _cmd_data_check(args: argparse.Namespace) -> int:
    from bench.harness.config import load_config
    from bench.harness.run import prepare
    from datasets.splits import describe_split

    cfg = load_config(args.config, args.overrides, args.only)
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        prepared = prepare(cfg, Path(scratch))
    print(f"data: {cfg.data.source} at {prepared.data_root}")
    for name, ds in prepared.splits.items():
        print(f"  {name:<28} {describe_split(ds)}")
    print("all splits valid")
    return EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    from bench.harness.config import load_config, schema_help, to_yaml

    if args.keys:
        for key, default, text in schema_help():
            print(f"{key:<28} {default:<22} {text}")
        return EXIT_OK
    if args.config is None:
        raise BenchError("config: give a config file, or --keys to list every key")
    print(to_yaml(load_config(args.config, args.overrides, args.only)), end="")
    return EXIT_OK


def _missing_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_INPUT


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INPUT
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
                f"distribution (e.g. Hugging Face `datasets`) shadows it: run from the checkout with an editable "
                "install (pip install -e .) in a virtual environment without that package"
            )


def _version() -> str:
    from bench import __version__

    return __version__
