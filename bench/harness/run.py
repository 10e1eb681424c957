"""``python -m bench run``: every experiment x seed of a config, trained and scored, then timed in one phase.

The run, step by step (each step's module):

1. prepare: checks, data, splits, held-out scenes, the run folder's header (:mod:`bench.harness.prepare`);
2. each unit (experiment x seed): lock, state, train or rescore or reuse, evaluate (:mod:`bench.harness.unit`,
   :mod:`bench.harness.experiment`; what may be reused: :mod:`bench.harness.reuse`,
   :mod:`bench.harness.fingerprints`), its rows (:mod:`bench.harness.result_rows`);
3. the shared results rebuilt from the units' files after each unit (:mod:`bench.harness.shared_results`), and
   the whole run in one line above the units' progress bars (:mod:`bench.harness.run_progress`);
4. after every unit, one timing phase over the trained models (:mod:`bench.harness.timing_phase`) and the
   final results (:func:`finalize`).

The run folder is laid out as :mod:`relight_base.run_folder` draws it; every file is written atomically.
Under ``torchrun`` every rank trains and rank 0 alone prepares data, evaluates, times and writes.  The
launchers of :mod:`bench.launch` run step 2 in separate processes or Slurm jobs and step 4 once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from relight_base.errors import ConfigError
from bench.harness.config import BenchConfig
from bench.harness.distributed import DistContext, init_distributed, shutdown
from bench.harness.lock import SharedFilesLock
from bench.harness.metrics import LPIPSMetric
from bench.harness.modeling import inference_options
from bench.harness.prepare import PreparedRun, prepare, write_run_header
from bench.harness.run_progress import RunBar
from bench.harness.shared_results import (collect_rows, rebuild_results, results_frame, unfinished_units,
                                          write_results)
from bench.harness.timing_phase import apply_timing, time_run, write_timing_files
from bench.harness.unit import run_unit


@dataclass
class RunOutcome:
    """A finished run: its folder, data root, result rows (contract columns) and the units that did not finish."""

    run_dir: Path
    data_root: Path
    results: pd.DataFrame
    failed: list[str]


def run_benchmark(cfg: BenchConfig, out_root: Path, *, progress: bool = True, restart: bool = False) -> RunOutcome:
    """Prepare, train and evaluate every experiment x seed, time them in one phase; write the run folder.

    Rerunning the same command continues: finished experiments (same config fingerprint) are reused,
    unfinished ones resume from their newest checkpoint; ``restart`` starts every experiment over.
    """
    require_splits(cfg)
    ctx = init_distributed(cfg.train.device)
    try:
        return _run(cfg, Path(out_root), ctx, progress, restart)
    finally:
        shutdown(ctx)


def require_splits(cfg: BenchConfig) -> None:
    """A benchmark scores something: ``eval.splits`` empty (what `bench tune`'s trials use) is refused here."""
    if not cfg.eval.splits:
        raise ConfigError("eval.splits: at least one of val, test is needed to run a benchmark (an empty list is "
                          "for bench tune's trials, scored on held-out training scenes only)")


def _run(cfg: BenchConfig, out_root: Path, ctx: DistContext, progress: bool, restart: bool = False) -> RunOutcome:
    prepared = prepare(cfg, out_root, progress=progress, ctx=ctx)
    if ctx.is_main:
        write_run_header(prepared)
    lpips_metric = lpips_metric_for(cfg, ctx)
    run_bar = RunBar.of(prepared, progress and ctx.is_main, restart)  # above the units' bars (which leave none)
    try:
        for exp in cfg.experiments:
            for seed in cfg.seeds:
                run_unit(prepared, exp, seed, ctx, lpips_metric, progress=progress, restart=restart)
                if ctx.is_main:
                    rebuild_results(prepared)
                run_bar.advance()
    finally:
        run_bar.close()
    if not ctx.is_main:
        return RunOutcome(prepared.run_dir, prepared.data_root, results_frame([]), [])
    return finalize(prepared, ctx, progress)


def lpips_metric_for(cfg: BenchConfig, ctx: DistContext):
    """Rank 0's LPIPS metric (its status says which weights, or why LPIPS is n/a); None on other ranks."""
    return LPIPSMetric(cfg.weights.lpips, ctx.device) if ctx.is_main else None


def finalize(prepared: PreparedRun, ctx: DistContext, progress: bool = False) -> RunOutcome:
    """After every unit: the run's one timing phase over the finished units, then every shared results file.

    Units that did not finish get rows saying why (their state), so the report shows them.
    """
    cfg = prepared.cfg
    rows = collect_rows(prepared, include_unfinished=True)
    phase = time_run(cfg, prepared.run_dir, rows, ctx.device, inference_options(cfg, ctx.device), progress=progress)
    timed = apply_timing(rows, phase)
    with SharedFilesLock(prepared.run_dir):
        write_timing_files(prepared.run_dir, phase)
        write_results(prepared, timed, phase)
    return RunOutcome(prepared.run_dir, prepared.data_root, results_frame(timed), unfinished_units(timed))
