"""What a rerun may reuse of a unit's earlier work: its finished result, or only its weights (rescoring).

A finished unit leaves ``result.json``: its rows, its training fingerprint and its scoring fingerprint
(:mod:`bench.harness.fingerprints`).  A rerun with the same training settings reuses it: as is when the scoring
settings are the same too, else by rescoring the stored weights.  Anything else (another training fingerprint,
``--restart``) trains again, dropping checkpoints of another config.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from relight_base import run_folder
from relight_base.atomic import atomic_write_text
from relight_base.results import Weights
from bench.harness import checkpoint as ckpt
from bench.harness.config import BenchConfig, ExperimentConfig
from bench.harness.job import ExperimentJob
from bench.harness.prepare import PreparedRun

log = logging.getLogger(__name__)


def finished_record(job: ExperimentJob, restart: bool, quiet: bool = False) -> dict | None:
    """The ``result.json`` of a finished experiment with the same training fingerprint, or None (then it runs).

    Every rank decides alike from the files.  One whose scoring settings changed counts as finished only
    while the weights to rescore are there.  ``quiet``: no warnings (a reader, not about to run it).
    """
    done = job.folder / run_folder.RESULT_JSON
    if restart or not done.is_file():
        return None
    try:
        stored = json.loads(done.read_text())
    except ValueError:
        return None
    if stored.get("fingerprint") != job.fingerprint:
        if not quiet:
            log.warning("experiment %s: its config changed since it finished; running it again from scratch", job.label)
        return None
    needed = weights_to_rescore(job.cfg, stored).file
    if stored.get("scoring") != job.scoring and not (job.folder / needed).is_file():
        if not quiet:
            log.warning("experiment %s: its scoring settings changed and its %s is gone; running it again from "
                        "scratch", job.label, needed)
        return None
    return stored


def unit_is_finished(prepared: PreparedRun, exp: ExperimentConfig, seed: int) -> bool:
    """Whether the unit finished under this config and scoring (a rerun would only reuse its ``result.json``)."""
    job = ExperimentJob.of(prepared, exp, seed)
    finished = finished_record(job, restart=False, quiet=True)
    return finished is not None and finished.get("scoring") == job.scoring


def weights_to_rescore(cfg: BenchConfig, stored: dict) -> Weights:
    """The weights rescoring a finished experiment's ``result.json`` record would load under ``cfg``:
    ``eval.weights``, or the last ones of the same kind (raw or moving average) when that choice needs
    validation and the experiment kept none."""
    rows = stored.get("rows") or [{}]
    chosen = Weights(cfg.eval.weights)
    if chosen.needs_validation and not stored_step(rows[0].get("best_step")):
        return chosen.fallback
    return chosen


def stored_step(value: Any) -> int:
    """A ``best_step`` read back from ``result.json``: an int, or 0 for none (NaN, missing)."""
    try:
        return 0 if value is None or math.isnan(float(value)) else int(value)
    except (TypeError, ValueError):
        return 0


def discard_stale_state(job: ExperimentJob, restart: bool) -> None:
    """Drop checkpoints of another config (or all, with ``restart``) and the finished mark (rank 0)."""
    ckpt_dir = job.checkpoint_dir
    stale = ckpt.checkpoints(ckpt_dir) and (restart or ckpt.load_latest(ckpt_dir, job.fingerprint) is None)
    if stale:
        log.warning("experiment %s: %s; its checkpoints are discarded and it starts from scratch", job.label,
                    "--restart" if restart else "its config changed since they were written")
        ckpt.clear(ckpt_dir)
    (job.folder / run_folder.RESULT_JSON).unlink(missing_ok=True)


def mark_finished(job: ExperimentJob, rows: list[dict]) -> None:
    """Write ``result.json`` (a rerun reuses these rows) and drop the checkpoints: the weights are in model.pt."""
    record = json.dumps({"fingerprint": job.fingerprint, "scoring": job.scoring, "rows": rows}, default=float) + "\n"
    atomic_write_text(job.folder / run_folder.RESULT_JSON, record)
    ckpt.clear(job.checkpoint_dir)
