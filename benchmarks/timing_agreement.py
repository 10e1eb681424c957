"""Do models that are the same network get the same time per image?  The timing phase, checked on a finished run.

    python -m benchmarks.timing_agreement runs/benchmark --repeats 3

The default benchmark trains MBNet three times (experiments ``baseline``, ``extra_data`` and ``mbnet``: the
same architecture, the last with a residual ``relu(rgb + map)``, a per-pixel addition).  Their times per image
should agree, and before the interleaved timing phase they did not (0.166, 0.266 and 0.297 s in one run).

This script reads the run folder's own ``timing.csv`` (the phase ``bench run`` measured), then runs the whole
timing phase again ``--repeats`` times on the run's ``model.pt`` files, with the run's timing settings
(:func:`bench.harness.timing_phase.time_run`; nothing in the run folder is changed).  For every phase it prints
the median time per image of each experiment that uses ``--model`` and their spread, ``max / min - 1``.
"""

from __future__ import annotations

import argparse
import math
import logging
from pathlib import Path

import pandas as pd
import torch

from bench.harness.config import load_config
from bench.harness.distributed import pick_device
from bench.harness.modeling import inference_options
from bench.harness.timing_phase import time_run
from models.registry import load_plugins
from relight_base import run_folder


def spread(medians: dict[str, float]) -> float:
    """``max / min - 1`` of the medians (0 when they agree exactly)."""
    return max(medians.values()) / min(medians.values()) - 1.0


def print_phase(label: str, medians: dict[str, float]) -> float:
    """One line: the phase, each experiment's median in seconds, the spread; returns the spread (NaN when fewer
    than two experiments were timed: no agreement to measure)."""
    if len(medians) < 2:
        print(f"{label:<18} fewer than two experiments timed ({', '.join(medians) or 'none'}): no spread")
        return math.nan
    cells = "  ".join(f"{name} {seconds:.4f}" for name, seconds in medians.items())
    value = spread(medians)
    print(f"{label:<18} {cells}  spread {value * 100:.1f} %")
    return value


def stored_medians(run_dir: Path, experiments: list[str]) -> dict[str, float]:
    """Each experiment's median seconds in the run's own ``timing.csv`` (empty if there is none)."""
    path = run_dir / run_folder.TIMING_CSV
    if not path.is_file():
        return {}
    timing = pd.read_csv(path)
    medians = timing.groupby("experiment")["seconds"].median()
    return {name: float(medians[name]) for name in experiments if name in medians}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a finished run folder (e.g. runs/benchmark)")
    parser.add_argument("--repeats", type=int, default=3, help="timing phases to run again (default 3)")
    parser.add_argument("--model", default="mbnet", help="compare the experiments of this model (default mbnet)")
    parser.add_argument("--rounds", type=int, help="eval.timing_rounds for the repeated phases (default: the run's)")
    parser.add_argument("--threads", type=int, help="eval.timing_threads for the repeated phases (default: the run's)")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first (repeatable), for models from plugins: a run folder's own plugin list "
                             "is never imported from it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load_plugins(args.plugin)
    cfg = load_config(args.run_dir / run_folder.CONFIG_YAML)
    cfg.eval.timing_rounds = args.rounds or cfg.eval.timing_rounds
    cfg.eval.timing_threads = args.threads or cfg.eval.timing_threads
    results = pd.read_csv(args.run_dir / run_folder.RESULTS_CSV)
    experiments = [e.name for e in cfg.experiments if e.model == args.model]
    if len(experiments) < 2:
        print(f"{args.run_dir}: fewer than two experiments of model {args.model!r}; nothing to compare")
        return 2
    device = pick_device(cfg.train.device)
    print(f"{args.run_dir}: experiments {', '.join(experiments)} (model {args.model}); "
          f"{cfg.eval.timing_rounds} rounds, {cfg.eval.timing_warmup} warm-up, "
          f"{cfg.eval.timing_threads or torch.get_num_threads()} threads, all {len(cfg.experiments)} "
          f"experiments timed together, as in the run")
    spreads = []
    stored = stored_medians(args.run_dir, experiments)
    if len(stored) >= 2:
        print_phase("run's own phase", stored)
    for repeat in range(args.repeats):
        phase = time_run(cfg, args.run_dir, results.to_dict("records"), device, inference_options(cfg, device))
        medians = {name: phase.summaries[name].median for name in experiments if name in phase.summaries}
        spreads.append(print_phase(f"phase {repeat + 1} of {args.repeats}", medians))
    spreads = [s for s in spreads if math.isfinite(s)]
    if spreads:
        print(f"spreads of the {len(spreads)} repeated phases: " + ", ".join(f"{s * 100:.1f} %" for s in spreads)
              + f"; largest {max(spreads) * 100:.1f} % (target: within 5 %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
