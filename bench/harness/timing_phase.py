"""The run's one timing phase: every finished experiment's inference model, timed together after training.

Timing each experiment right after its own training compares models measured minutes apart, on a
machine whose speed drifts by tens of percent in that time.  Here, once every experiment has trained
and been scored, rank 0 reloads the first finished seed of each experiment from its ``model.pt``,
prepares it as evaluation does (``bench.prepare_for_inference``), and times all of them in one phase
(:func:`bench.harness.timing.run_rounds`): warm-up, then rounds in which every model runs once on the
same batch-1 input, in an order rotating by one place per round.  Threads are pinned for the phase.

The phase writes ``timing.csv`` (one row per model per round) and ``timing.json`` (its conditions), and
its per-model median, p90 and quartiles fill the time columns of every result row of that experiment.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch
from tqdm import tqdm

from relight_base import run_folder
from relight_base.atomic import atomic_write_text
from relight_base.errors import BenchError
from relight_base.results import Weights, untimed
from bench.harness.inference import load_trained
from bench.harness.modeling import inference_model
from bench.speedups.allocator import steady_allocator
from bench.harness.config import BenchConfig
from bench.harness.timing import (Clock, TimedCall, TimeSummary, count_gflops, device_name, pinned_threads,
                                  run_rounds, summarize_calls, synchronize)

log = logging.getLogger(__name__)

TIMING_CSV_COLUMNS = ["phase", "round", "position", "experiment", "seed", "seconds"]


@dataclass
class TimingTarget:
    """One experiment to time: its prepared inference model and the FLOPs of the trained one at the timing size."""

    experiment: str
    seed: int
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # bench.prepare_for_inference(trained model)
    gflops: float


@dataclass
class TimingPhase:
    """What one phase measured and under which conditions (``timing.json`` + ``timing.csv``)."""

    phase: str
    device: str
    threads: int
    size: int
    rounds: int
    warmup: int
    seeds: dict[str, int]  # experiment -> the seed that was timed, in timing order
    calls: list[TimedCall]
    summaries: dict[str, TimeSummary]
    gflops: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)  # experiment -> why it was not timed
    allocator: str = ""  # what bench.speedups.allocator.steady_allocator did during the phase

    def record(self) -> dict[str, Any]:
        """The ``timing.json`` document."""
        return {"phase": self.phase, "device": self.device, "threads": self.threads, "size": self.size,
                "rounds": self.rounds, "warmup": self.warmup, "order": "rotating", "timed": list(self.seeds),
                "skipped": dict(self.skipped), "allocator": self.allocator}

    def frame(self) -> pd.DataFrame:
        """``timing.csv``: one row per model per round (round and position 0-based), seconds of that call."""
        rows = [{"phase": self.phase, "round": c.round, "position": c.position, "experiment": c.name,
                 "seed": self.seeds[c.name], "seconds": c.seconds} for c in self.calls]
        return pd.DataFrame(rows, columns=TIMING_CSV_COLUMNS)

    def description(self, cfg: BenchConfig | None = None) -> str:
        """``results.json``'s ``timing`` text: how the time columns were measured."""
        text = (f"one timing phase after training (phase {self.phase}, {self.device}): the first finished seed of "
                f"each experiment, reloaded from model.pt and prepared by bench.prepare_for_inference (BatchNorm "
                f"folded, channels_last); each model warmed up {self.warmup}x, then {self.rounds} rounds in which "
                f"every model runs once on the same batch-1 {self.size}x{self.size} input, the order rotating by "
                f"one place each round; model forward only, inference_mode, CUDA synchronised; {self.threads} CPU "
                f"threads pinned; {self.allocator or 'system allocator unchanged'}; per model the median (time_per_image_s), p90, q1 and q3 of its {self.rounds} "
                f"times; every call in timing.csv")
        if cfg is not None:
            text += f"; eval.autocast={cfg.eval.autocast}, eval.compile={cfg.eval.compile}"
        return text


def new_phase_id() -> str:
    """A phase id: the UTC time to the second plus 6 random hex digits, e.g. ``20250101T120000Z-3fa2c1``."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def timing_size(cfg: BenchConfig) -> int:
    """The side length of the timing input: ``eval.timing_size``, else ``data.size``."""
    return cfg.eval.timing_size or cfg.data.size


def choose_seeds(rows: Sequence[dict]) -> tuple[dict[str, int], dict[str, str]]:
    """Which seed of each experiment to time (its first finished one, in row order) and why others are not timed.

    ``rows`` are result rows (``experiment``, ``seed``, ``status``, ``message``).  Returns
    ``({experiment: seed}, {experiment: reason})``, both in the order experiments first appear.
    """
    chosen: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for row in rows:
        name = row["experiment"]
        if name in chosen:
            continue
        if row["status"] == "done":
            chosen[name] = int(row["seed"])
            reasons.pop(name, None)
        elif name not in reasons:
            reasons[name] = f"{row['status']} (seed {row['seed']}): {row.get('message') or 'no message'}"
    return chosen, reasons


def load_targets(run_dir: Path, chosen: dict[str, int], *, size: int, device: torch.device,
                 options: dict[str, Any]) -> tuple[list[TimingTarget], dict[str, str]]:
    """Reload each chosen experiment's ``model.pt``, count its FLOPs at ``size``, prepare it for inference.

    ``options`` are ``prepare_for_inference``'s switches (:func:`bench.harness.modeling.inference_options`).
    Returns the targets and ``{experiment: reason}`` for those that could not be loaded.
    """
    targets: list[TimingTarget] = []
    unloaded: dict[str, str] = {}
    for name, seed in chosen.items():
        try:
            _, _, model = load_trained(run_dir, name, seed, device, weights=Weights.LAST.value)  # best.pt: same shapes
        except BenchError as exc:
            unloaded[name] = f"not loaded: {exc}"
            continue
        gflops = count_gflops(model, size)
        targets.append(TimingTarget(name, seed, inference_model(model, **options), gflops))
        del model  # the prepared copy is all the phase needs
    return targets, unloaded


def phase_input(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The phase's one input: seeded uniform RGB ``(1,3,S,S)`` and depth ``(1,1,S,S)`` in [0,1], channels_last."""
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, size, size, generator=gen)
    depth = torch.rand(1, 1, size, size, generator=gen)
    return tuple(t.to(device).contiguous(memory_format=torch.channels_last) for t in (rgb, depth))


def run_timing_phase(targets: Sequence[TimingTarget], *, device: torch.device, size: int, rounds: int,
                     warmup: int, threads: int | None = None, skipped: dict[str, str] | None = None,
                     clock: Clock = time.perf_counter, phase_id: str | None = None,
                     progress: bool = False) -> TimingPhase:
    """Time every target in one interleaved phase (batch 1, ``size`` x ``size``, ``inference_mode``).

    ``threads`` pins torch's CPU threads for the phase (None: the current count), restored afterwards;
    ``progress`` shows a bar over the rounds.
    """
    rgb, depth = phase_input(size, device)
    models = {t.experiment: partial(t.forward, rgb, depth) for t in targets}
    bar = tqdm(total=rounds, desc=f"timing {len(targets)} models", unit="round", disable=not progress, leave=False,
               dynamic_ncols=True)
    with bar, pinned_threads(threads) as pinned, steady_allocator() as allocator, torch.inference_mode():
        calls = run_rounds(models, rounds=rounds, warmup=warmup, clock=clock, sync=partial(synchronize, device),
                           after_round=bar.update)
    return TimingPhase(phase=phase_id or new_phase_id(), device=device_name(device), threads=pinned, size=size,
                       rounds=rounds, warmup=warmup, seeds={t.experiment: t.seed for t in targets}, calls=calls,
                       summaries=summarize_calls(calls), gflops={t.experiment: t.gflops for t in targets},
                       skipped=dict(skipped or {}), allocator=allocator)


def time_run(cfg: BenchConfig, run_dir: Path, rows: Sequence[dict], device: torch.device,
             options: dict[str, Any], clock: Clock = time.perf_counter, progress: bool = False) -> TimingPhase:
    """The whole phase for a run's result rows: choose seeds, reload the models, time them, log the medians."""
    size = timing_size(cfg)
    chosen, skipped = choose_seeds(rows)
    log.info("timing phase: reloading %d trained models from their model.pt", len(chosen))
    with steady_allocator():  # loading and preparing faults fewer pages in too (a third less time, measured)
        targets, unloaded = load_targets(run_dir, chosen, size=size, device=device, options=options)
    skipped.update(unloaded)
    for name, reason in skipped.items():
        log.warning("timing phase: experiment %s is not timed: %s", name, reason)
    log.info("timing phase: %d models, %d warm-up passes each, then %d rounds at %dx%d", len(targets),
             cfg.eval.timing_warmup, cfg.eval.timing_rounds, size, size)
    phase = run_timing_phase(targets, device=device, size=size, rounds=cfg.eval.timing_rounds,
                             warmup=cfg.eval.timing_warmup, threads=cfg.eval.timing_threads, skipped=skipped,
                             clock=clock, progress=progress)
    for name, summary in phase.summaries.items():
        log.info("timing phase %s: %s median %.4f s, p90 %.4f s", phase.phase, name, summary.median, summary.p90)
    return phase


def apply_timing(rows: Sequence[dict], phase: TimingPhase) -> list[dict]:
    """Copies of ``rows`` with the phase's time columns; rows of experiments it did not time get NaN and no phase."""
    updated = []
    for row in rows:
        summary = phase.summaries.get(row["experiment"])
        if summary is None:
            updated.append({**row, **untimed()})
            continue
        updated.append({**row, "timing_phase": phase.phase, "time_per_image_s": summary.median,
                        "time_p90_s": summary.p90, "time_q1_s": summary.q1, "time_q3_s": summary.q3,
                        "timing_size": phase.size, "timing_threads": phase.threads,
                        "gflops": phase.gflops[row["experiment"]], "device": phase.device})
    return updated


def write_timing_files(run_dir: Path, phase: TimingPhase) -> None:
    """``timing.csv`` and ``timing.json`` of the run folder, atomically."""
    atomic_write_text(Path(run_dir) / run_folder.TIMING_CSV, phase.frame().to_csv(index=False))
    atomic_write_text(Path(run_dir) / run_folder.TIMING_JSON, json.dumps(phase.record(), indent=2) + "\n")


def gflops_description(size: int) -> str:
    """``results.json``'s ``gflops`` text."""
    return f"torch.utils.flop_counter at the timing size {size}x{size}, batch 1 (1 multiply-add = 2 FLOPs)"
