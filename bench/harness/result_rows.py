"""The result rows of one unit, as the results contract (:mod:`relight_base.results`) defines them.

A scored unit gives one row per evaluation split: :func:`row_base` (what every split shares) plus the split
and its metrics.  A unit without numbers (never ran, cancelled, killed) gives :func:`placeholder_row`\\ s that
say why.  The time columns stay at their defaults until the run's timing phase fills them.
"""

from __future__ import annotations

import math

from relight_base.results import UNTRAINED, Weights, check_row, empty_row, untimed
from bench.harness.capabilities import model_tags, uses_adapter_terms
from bench.harness.config import BenchConfig
from bench.harness.job import ExperimentJob, TrainingOutcome
from bench.harness.modeling import RelightingModel, backbone_weights
from bench.harness.prepare import strategies_label
from bench.harness.timing import count_gflops, device_name
from bench.harness.timing_phase import timing_size
from models.registry import count_parameters

NEVER_RAN = "never ran in this run folder"


def evaluated_weights(cfg: BenchConfig, training: TrainingOutcome) -> str:
    """What the rows were scored with: ``eval.weights``; the last weights of the same kind (raw or moving
    average) when that choice needs validation and none ran; :data:`~relight_base.results.UNTRAINED` when
    nothing was trained."""
    if not training.steps:
        return UNTRAINED
    chosen = Weights(cfg.eval.weights)
    best_step, _ = training.best_of(chosen.value)
    return chosen.fallback.value if chosen.needs_validation and not best_step else chosen.value


def row_base(job: ExperimentJob, model: RelightingModel, training: TrainingOutcome, lpips_status: str) -> dict:
    """The columns of a result row that every split shares (all but split and the metrics); untimed so far.

    GFLOPs are counted at the timing size (the timing phase counts them again for the models it times).
    ``lpips_status``: which LPIPS weights score the rows, or why LPIPS is n/a.
    """
    cfg, exp = job.cfg, job.exp
    best_step, best_value = training.best_of(cfg.eval.weights)
    return check_row({
        "experiment": exp.name, "model": exp.model, "seed": job.seed, "status": training.status, **untimed(),
        "params_m": count_parameters(model) / 1e6, "gflops": count_gflops(model, timing_size(cfg)),
        "steps": training.steps, "train_seconds": round(training.seconds, 3),
        "eval_weights": evaluated_weights(cfg, training), "best_step": best_step or math.nan,
        "best_holdout": best_value, "residual": exp.residual,
        "extra_data": strategies_label(exp.extra_data), "model_tags": model_tags(exp.model),
        "adapter_terms": bool(training.steps) and uses_adapter_terms(cfg, model),
        "data_source": cfg.data.source, "data_size": cfg.data.size, "device": device_name(job.ctx.device),
        "weights": backbone_weights(model), "perceptual_loss": training.perceptual,
        "lpips_weights": lpips_status, "message": training.message,
    })


def placeholder_row(job: ExperimentJob, split: str, record: dict) -> dict:
    """A result row for a unit without results: its state as status, why in the message, no metrics.

    ``record`` is the unit's ``unit.json`` (:mod:`bench.harness.unit_state`).
    """
    message = record.get("message") or {"not run": NEVER_RAN}.get(record["state"], "")
    if record.get("log"):
        message = f"{message} (log: {record['log']})" if message else f"log: {record['log']}"
    row = empty_row()
    row.update(experiment=job.exp.name, model=job.exp.model, seed=job.seed, split=split, status=record["state"],
               residual=job.exp.residual, extra_data=strategies_label(job.exp.extra_data),
               data_source=job.cfg.data.source, data_size=job.cfg.data.size, message=message, timing_phase="",
               model_tags=_tags_or_blank(job.exp.model), adapter_terms=False,
               steps=0, eval_weights="", device="", weights="", perceptual_loss="", lpips_weights="")
    return row


def _tags_or_blank(model: str) -> str:
    try:
        return model_tags(model)
    except Exception:  # a plugin model no longer importable: the row still says what it can
        return ""
