"""``python -m bench run``: every experiment x seed of a config, trained and scored, then timed in one phase.

The run folder ``<out>/<name>/`` is laid out as :mod:`relight_base.run_folder` draws it: the
resolved config, the data summary, ``results.csv`` with its companion ``results.json``, the timing
phase's ``timing.csv`` and ``timing.json``, and one folder per experiment and seed (weights, training
log, per-image metrics, predictions, checkpoints).

A rerun reuses finished experiments whose training settings are unchanged (:func:`experiment_fingerprint`
leaves out ``eval``, ``report`` and ``weights.lpips``) and resumes unfinished ones.  A finished experiment
whose scoring settings changed (:func:`scoring_fingerprint`) is rescored from its ``model.pt`` without
training.  The timing phase (:mod:`bench.harness.timing_phase`) runs on every run, after all experiments,
so changing timing settings never touches an experiment.

Every file is written atomically.  Under ``torchrun`` every rank trains and
rank 0 alone prepares data, evaluates, times and writes.

Many processes may share one run folder (the launchers of :mod:`bench.launch` run experiment x seed
"units" in parallel processes or Slurm jobs): each unit is held by its own lock while it runs and records
its state in ``unit.json`` (:mod:`bench.harness.unit_state`); the shared files (``results.csv``,
``results.json``, the timing files) are rebuilt from the units' own ``result.json`` / ``unit.json`` under a
short lock (:mod:`bench.harness.lock`), never appended to in place.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from relight_base import run_folder
from relight_base.atomic import atomic_write_text, ensure_output_dir
from bench.harness import checkpoint as ckpt
from bench.harness.config import BenchConfig, ExperimentConfig, config_hash, to_dict, to_yaml
from bench.harness.data import build_split, prepare_data_root
from bench.harness.distributed import DistContext, init_distributed, shutdown
from bench.harness import unit_state
from bench.harness.lock import SharedFilesLock, UnitLock, current_owner
from models.registry import check_model_args, load_plugins

if TYPE_CHECKING:
    import torch
    from torch import nn

    from bench.harness.timing_phase import TimingPhase

log = logging.getLogger(__name__)

RESULT_COLUMNS = [
    "experiment", "model", "seed", "split", "status", "psnr", "ssim", "lpips", "mps",
    "time_per_image_s", "time_p90_s", "time_q1_s", "time_q3_s", "timing_phase", "timing_size", "timing_threads",
    "params_m", "gflops", "steps", "train_seconds", "eval_weights", "best_step", "best_holdout", "residual", "extra_data",
    "model_tags", "adapter_terms",
    "data_source", "data_size", "device", "weights", "perceptual_loss", "lpips_weights", "message",
]
UNTIMED = {"time_per_image_s": math.nan, "time_p90_s": math.nan, "time_q1_s": math.nan, "time_q3_s": math.nan,
           "timing_phase": "", "timing_size": math.nan, "timing_threads": math.nan}  # until the timing phase
# Keys added after runs were made, with the value that reproduces the earlier behaviour: left out of the
# fingerprint at that value, so finished experiments of earlier versions are still reused.
LATER_KEYS = {("train", "schedule"): "step", ("train", "warmup_steps"): 0, ("train", "val_every"): 0,
              ("train", "holdout"): None, ("train", "best_metric"): "psnr", ("loss", "adapter_terms"): False}
HOLDOUT = "holdout"  # key of the held-out training scenes in PreparedRun.splits
SCORING_KEYS = ("splits", "save_predictions", "quantize", "ssim", "autocast", "compile", "weights")  # eval keys that set scores
LATER_SCORING_KEYS = {"weights": "last"}  # like LATER_KEYS, for the scoring fingerprint


@dataclass
class PreparedRun:
    """Everything a run needs before training: the run folder, data root and validated splits."""

    cfg: BenchConfig
    run_dir: Path
    data_root: Path
    splits: dict[str, Any] = field(default_factory=dict)  # "val", "test", "train:<strategies>" -> dataset

    def train_split(self, extra_data: bool | list[str]):
        return self.splits[train_key(extra_data)]


def train_key(extra_data: bool | list[str]) -> str:
    from datasets.pairs import resolve_strategies

    return "train:" + ",".join(resolve_strategies(extra_data))


def prepare(cfg: BenchConfig, out_root: Path, *, progress: bool = True, ctx: DistContext | None = None) -> PreparedRun:
    """Check models and output folder, make the data available and validate every split up front.

    Cheap checks (plugins, model names and arguments, output folder) come first
    so a typo fails in a second, before any data is generated or read.
    """
    ctx = ctx or DistContext()
    from bench.harness.adapter_protocol import check_residual_switch

    load_plugins(cfg.plugins)
    for index, exp in enumerate(cfg.experiments):
        check_model_args(exp.model, exp.model_args)
        check_residual_switch(index, exp)
    run_dir = Path(out_root) / cfg.name
    if ctx.is_main:
        ensure_output_dir(run_dir)
    return _prepare_data(cfg, run_dir, progress, ctx)


def _prepare_data(cfg: BenchConfig, run_dir: Path, progress: bool, ctx: DistContext) -> PreparedRun:
    if ctx.is_main:
        data_root = prepare_data_root(cfg.data, progress=progress)
    ctx.barrier()  # rank 0 generated the synthetic data; the others now find it
    if not ctx.is_main:
        data_root = prepare_data_root(cfg.data, progress=False)
    prepared = PreparedRun(cfg, run_dir, data_root)
    for exp in cfg.experiments:
        key = train_key(exp.extra_data)
        if key not in prepared.splits:
            prepared.splits[key] = build_split(cfg.data, data_root, "train", exp.extra_data)
    _hold_out(prepared)
    if ctx.is_main:
        for split in cfg.eval.splits:
            prepared.splits[split] = build_split(cfg.data, data_root, split)
    return prepared


def _hold_out(prepared: PreparedRun) -> None:
    """Take ``train.holdout`` scenes out of every training split; their plain pairs become ``splits["holdout"]``.

    The same scenes leave every training split (see :mod:`datasets.holdout`), so all experiments validate on
    one set of scenes none of them trained on.
    """
    from datasets.holdout import held_out_scenes, holdout_count, holdout_split, without_scenes

    train = {key: ds for key, ds in prepared.splits.items() if key.startswith("train:")}
    if not train:
        return
    ids = sorted({p.scene_id for ds in train.values() for p in ds.pairs})
    count = holdout_count(prepared.cfg.train.holdout, prepared.cfg.train.val_every > 0, len(ids))
    if not count:
        return
    scenes = held_out_scenes(ids, count)
    prepared.splits[HOLDOUT] = holdout_split(next(iter(train.values())), scenes)
    for key, ds in train.items():
        prepared.splits[key] = without_scenes(ds, scenes)
    log.info("holding out %d of %d training scenes for validation during training: %s", count, len(ids),
             ", ".join(scenes))


def write_run_header(prepared: PreparedRun) -> None:
    """Write the resolved config and the data summary into the run folder (atomically)."""
    from bench.harness.provenance import now
    from datasets.splits import describe_split

    cfg = prepared.cfg
    summary = {
        "written": now(),
        "config_hash": config_hash(cfg),
        "source": cfg.data.source,
        "root": str(prepared.data_root),
        "size": cfg.data.size,
        "input": cfg.data.input,
        "target": cfg.data.target,
        "splits": {name: describe_split(ds) for name, ds in prepared.splits.items()},
    }
    with SharedFilesLock(prepared.run_dir):
        atomic_write_text(prepared.run_dir / run_folder.CONFIG_YAML, to_yaml(cfg))
        atomic_write_text(prepared.run_dir / run_folder.DATA_JSON, json.dumps(summary, indent=2, default=str) + "\n")


@dataclass
class RunOutcome:
    run_dir: Path
    data_root: Path
    results: pd.DataFrame
    failed: list[str]


def run_benchmark(cfg: BenchConfig, out_root: Path, *, progress: bool = True, restart: bool = False) -> RunOutcome:
    """Prepare, train and evaluate every experiment x seed, time them in one phase; write the run folder.

    Rerunning the same command continues: finished experiments (same config fingerprint) are reused,
    unfinished ones resume from their newest checkpoint; ``restart`` starts every experiment over.
    """
    ctx = init_distributed(cfg.train.device)
    try:
        return _run(cfg, Path(out_root), ctx, progress, restart)
    finally:
        shutdown(ctx)


def _run(cfg: BenchConfig, out_root: Path, ctx: DistContext, progress: bool, restart: bool = False) -> RunOutcome:
    prepared = prepare(cfg, out_root, progress=progress, ctx=ctx)
    if ctx.is_main:
        write_run_header(prepared)
    lpips_metric = lpips_metric_for(cfg, ctx)
    for exp in cfg.experiments:
        for seed in cfg.seeds:
            run_unit(prepared, exp, seed, ctx, lpips_metric, progress=progress, restart=restart)
            if ctx.is_main:
                rebuild_results(prepared)
    if not ctx.is_main:
        return RunOutcome(prepared.run_dir, prepared.data_root, pd.DataFrame(columns=RESULT_COLUMNS), [])
    return finalize(prepared, ctx, progress)


def lpips_metric_for(cfg: BenchConfig, ctx: DistContext):
    """Rank 0's LPIPS metric (its status says which weights, or why LPIPS is n/a); None on other ranks."""
    from bench.harness.metrics import LPIPSMetric

    return LPIPSMetric(cfg.weights.lpips, ctx.device) if ctx.is_main else None


def run_unit(prepared: PreparedRun, exp: ExperimentConfig, seed: int, ctx: DistContext, lpips_metric, *,
             progress: bool, restart: bool = False, log_path: str | None = None) -> list[dict]:
    """:func:`run_experiment` for one experiment x seed, holding its folder's lock and recording its state.

    Rank 0 takes :class:`~bench.harness.lock.UnitLock` (a busy folder is a clear error on every rank) and writes
    ``unit.json``: running, then done or failed (with the failed rows), or cancelled on Ctrl-C/SIGTERM
    (:class:`~bench.harness.unit_state.UnitStopped`), or failed with the error of any other exception, which
    propagates.
    """
    folder = run_folder.experiment_dir(prepared.run_dir, exp.name, seed)
    lock = UnitLock(folder) if ctx.is_main else None
    _acquire_on_all_ranks(lock, ctx)
    try:
        if ctx.is_main:
            owner = current_owner()
            unit_state.update_state(folder, unit_state.RUNNING, job=owner["job"], host=owner["host"],
                                    pid=owner["pid"], **({"log": log_path} if log_path else {}))
        rows = run_experiment(prepared, exp, seed, ctx, lpips_metric, progress=progress, restart=restart)
        if ctx.is_main:
            failed = [r for r in rows if r["status"] == "failed"]
            if failed:
                unit_state.update_state(folder, unit_state.FAILED, message=failed[0]["message"], rows=rows)
            else:
                unit_state.update_state(folder, unit_state.DONE)
        return rows
    except (KeyboardInterrupt, unit_state.UnitStopped) as exc:
        if ctx.is_main:
            unit_state.update_state(folder, unit_state.CANCELLED, message=f"stopped: {exc or type(exc).__name__}")
        raise
    except BaseException as exc:
        if ctx.is_main:
            unit_state.update_state(folder, unit_state.FAILED, message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if lock is not None:
            lock.release()


def _acquire_on_all_ranks(lock: UnitLock | None, ctx: DistContext) -> None:
    """Rank 0 takes ``lock``; every rank raises :class:`RunFolderBusy` if it could not."""
    from bench.harness.lock import RunFolderBusy

    problem = None
    if lock is not None:
        try:
            lock.acquire()
        except RunFolderBusy as exc:
            problem = str(exc)
    problem = ctx.broadcast(problem)
    if problem:
        raise RunFolderBusy(problem)


def unit_is_finished(prepared: PreparedRun, exp: ExperimentConfig, seed: int) -> bool:
    """Whether the unit finished under this config and scoring (a rerun would only reuse its ``result.json``)."""
    job = ExperimentJob(prepared, exp, seed, DistContext(), experiment_fingerprint(prepared.cfg, exp, seed),
                        scoring_fingerprint(prepared.cfg))
    finished = _finished_record(job, restart=False, quiet=True)
    return finished is not None and finished.get("scoring") == job.scoring


def unit_rows(prepared: PreparedRun, exp: ExperimentConfig, seed: int, *, include_unfinished: bool) -> list[dict]:
    """One unit's result rows as its own files tell them.

    A finished unit (``result.json`` of this config and scoring) gives its rows; a failed one the rows its
    ``unit.json`` kept; with ``include_unfinished`` every other unit gives one row per split whose status is
    its state (cancelled, killed, running, pending, not run) and whose metrics are empty.
    """
    job = ExperimentJob(prepared, exp, seed, DistContext(), experiment_fingerprint(prepared.cfg, exp, seed),
                        scoring_fingerprint(prepared.cfg))
    if unit_is_finished(prepared, exp, seed):
        return json.loads((job.folder / run_folder.RESULT_JSON).read_text())["rows"]
    record = unit_state.read_state(job.folder)
    if record["state"] == unit_state.FAILED and record.get("rows"):
        return record["rows"]
    if not include_unfinished and record["state"] != unit_state.FAILED:
        return []
    return [_placeholder_row(job, split, record) for split in prepared.cfg.eval.splits]


def _placeholder_row(job: ExperimentJob, split: str, record: dict) -> dict:
    """A result row for a unit without results: its state as status, why in the message, no metrics."""
    message = record.get("message") or {"not run": "never ran in this run folder"}.get(record["state"], "")
    if record.get("log"):
        message = f"{message} (log: {record['log']})" if message else f"log: {record['log']}"
    row = dict.fromkeys(RESULT_COLUMNS, math.nan)
    row.update(experiment=job.exp.name, model=job.exp.model, seed=job.seed, split=split, status=record["state"],
               residual=job.exp.residual, extra_data=train_key(job.exp.extra_data)[6:] or "none",
               data_source=job.cfg.data.source, data_size=job.cfg.data.size, message=message, timing_phase="",
               model_tags=_tags_or_blank(job.exp.model), adapter_terms=False,
               steps=0, eval_weights="", device="", weights="", perceptual_loss="", lpips_weights="")
    return row


def _tags_or_blank(model: str) -> str:
    from bench.harness.adapter_protocol import model_tags

    try:
        return model_tags(model)
    except Exception:  # a plugin model no longer importable: the row still says what it can
        return ""


def collect_rows(prepared: PreparedRun, *, include_unfinished: bool) -> list[dict]:
    """Every unit's rows, in config order (experiments, then seeds), from the units' own files."""
    return [row for exp in prepared.cfg.experiments for seed in prepared.cfg.seeds
            for row in unit_rows(prepared, exp, seed, include_unfinished=include_unfinished)]


def rebuild_results(prepared: PreparedRun, phase: TimingPhase | None = None, rows: list[dict] | None = None) -> list[dict]:
    """Rewrite ``results.csv``/``results.json`` from the units' files (or ``rows``) under the shared-files lock."""
    if rows is None:
        rows = collect_rows(prepared, include_unfinished=phase is not None)
    with SharedFilesLock(prepared.run_dir):
        write_results(prepared, rows, lpips_status(rows), phase)
    return rows


def lpips_status(rows: list[dict]) -> str:
    """Which LPIPS weights scored ``rows`` (the first finished row's ``lpips_weights``), or n/a."""
    for row in rows:
        if row.get("status") == "done" and isinstance(row.get("lpips_weights"), str) and row["lpips_weights"]:
            return row["lpips_weights"]
    return "n/a"


def unfinished_units(rows: list[dict]) -> list[str]:
    """``"name (seed k)"`` for each failed unit, ``"name (seed k): <state>"`` for each other unit not done."""
    labels = {}
    for row in rows:
        if row["status"] != "done":
            state = "" if row["status"] == "failed" else f": {row['status']}"
            labels[(row["experiment"], row["seed"])] = f"{row['experiment']} (seed {row['seed']}){state}"
    return list(labels.values())


def finalize(prepared: PreparedRun, ctx: DistContext, progress: bool = False) -> RunOutcome:
    """After every unit: the run's one timing phase over the finished units, then every shared results file.

    Units that did not finish get rows saying why (their state), so the report shows them.
    """
    from bench.harness.timing_phase import apply_timing, time_run, write_timing_files

    cfg = prepared.cfg
    rows = collect_rows(prepared, include_unfinished=True)
    phase = time_run(cfg, prepared.run_dir, rows, ctx.device, inference_options(cfg, ctx.device), progress=progress)
    timed = apply_timing(rows, phase)
    with SharedFilesLock(prepared.run_dir):
        write_timing_files(prepared.run_dir, phase)
        write_results(prepared, timed, lpips_status(timed), phase)
    failed = unfinished_units(timed)
    return RunOutcome(prepared.run_dir, prepared.data_root, pd.DataFrame(timed, columns=RESULT_COLUMNS), failed)


def experiment_fingerprint(cfg: BenchConfig, exp: ExperimentConfig, seed: int) -> str:
    """A hash of everything that decides one experiment's trained weights.

    Not the other experiments, not I/O settings, and not how the model is scored or timed afterwards:
    the ``eval`` and ``report`` sections and ``weights.lpips`` are left out (see :func:`scoring_fingerprint`).
    """
    settings = to_dict(cfg)
    for key in ("name", "experiments", "seeds", "eval", "report", "launcher"):
        settings.pop(key)
    for key in ("checkpoint_every", "keep_checkpoints"):
        settings["train"].pop(key)
    settings["data"].pop("workers")
    settings["weights"].pop("lpips")
    for (section, key), default in LATER_KEYS.items():  # at their defaults they change nothing that was trained
        if settings[section].get(key) == default:
            settings[section].pop(key)
    return config_hash({"settings": settings, "experiment": to_dict(exp), "seed": seed})


def scoring_fingerprint(cfg: BenchConfig) -> str:
    """A hash of the settings that decide a trained model's scores: :data:`SCORING_KEYS` of ``eval``, ``weights.lpips``."""
    scoring = {key: getattr(cfg.eval, key) for key in SCORING_KEYS
               if LATER_SCORING_KEYS.get(key, object()) != getattr(cfg.eval, key)}
    return config_hash({"eval": scoring, "lpips": cfg.weights.lpips})


@dataclass(frozen=True)
class ExperimentJob:
    """One experiment with one seed inside a prepared run: what it is, where it writes, what identifies it."""

    prepared: PreparedRun
    exp: ExperimentConfig
    seed: int
    ctx: DistContext
    fingerprint: str  # experiment_fingerprint(...): finished results and checkpoints of another one are not reused
    scoring: str  # scoring_fingerprint(cfg): finished results of another one are rescored from model.pt

    @property
    def cfg(self) -> BenchConfig:
        return self.prepared.cfg

    @property
    def folder(self) -> Path:
        return run_folder.experiment_dir(self.prepared.run_dir, self.exp.name, self.seed)

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder / run_folder.CHECKPOINTS_DIR

    @property
    def label(self) -> str:
        return f"{self.exp.name} (seed {self.seed})"


@dataclass
class TrainingOutcome:
    """How an experiment's training went; an untrained model keeps the defaults."""

    status: str = "done"
    message: str = ""
    steps: int = 0
    seconds: float = 0.0
    perceptual: str = "n/a (not trained)"
    log: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    best_step: int = 0  # the step best.pt holds (0: none)
    best_value: float = math.nan  # its held-out score


def run_experiment(prepared: PreparedRun, exp: ExperimentConfig, seed: int, ctx: DistContext,
                   lpips_metric, *, progress: bool, restart: bool = False) -> list[dict]:
    """Train (or reuse, or rescore) and evaluate one experiment with one seed; rank 0 returns its result rows.

    The rows' time columns are empty here: the run's timing phase fills them after every experiment.
    """
    from bench.harness.adapter_protocol import set_guide
    from bench.harness.modeling import build_model
    from bench.harness.train import seed_everything

    job = ExperimentJob(prepared, exp, seed, ctx, experiment_fingerprint(prepared.cfg, exp, seed),
                        scoring_fingerprint(prepared.cfg))
    finished = _finished_record(job, restart)
    if finished is not None:
        if not ctx.is_main:
            return []
        if finished.get("scoring") == job.scoring:
            log.info("experiment %s: finished earlier with the same config; reusing its results", job.label)
            return finished["rows"]
        return _rescore(job, finished["rows"], lpips_metric, progress)
    if ctx.is_main:
        _discard_stale_state(job, restart)
    ctx.barrier()
    seed_everything(seed)
    model = build_model(exp, job.cfg.weights).to(ctx.device)
    set_guide(model, job.prepared.train_split(exp.extra_data), job.cfg, exp)
    training = _train_if_needed(job, model, progress)
    ctx.barrier()
    if not ctx.is_main:
        return []
    _save_training(job, model, training)
    _load_evaluated_weights(job, model, training)
    rows = _evaluate(job, model, _result_row_base(job, model, training, lpips_metric), lpips_metric, progress)
    if training.status == "done":
        _mark_finished(job, rows)
    return rows


def _finished_record(job: ExperimentJob, restart: bool, quiet: bool = False) -> dict | None:
    """The ``result.json`` of a finished experiment with the same training fingerprint, or None (then it runs).

    Every rank decides alike from the files.  One whose scoring settings changed counts as finished only
    while its ``model.pt`` is there to rescore.  ``quiet``: no warnings (a reader, not about to run it).
    """
    done = job.folder / run_folder.RESULT_JSON
    if restart or not done.is_file():
        return None
    try:
        stored = json.loads(done.read_text())
    except ValueError:
        return None
    if stored.get("fingerprint") != job.fingerprint:
        if quiet:
            return None
        log.warning("experiment %s: its config changed since it finished; running it again from scratch", job.label)
        return None
    needed = _weights_to_rescore(job.cfg, stored)
    if stored.get("scoring") != job.scoring and not (job.folder / needed).is_file():
        if quiet:
            return None
        log.warning("experiment %s: its scoring settings changed and its %s is gone; running it again from scratch",
                    job.label, needed)
        return None
    return stored


def _weights_to_rescore(cfg: BenchConfig, stored: dict) -> str:
    """The weight file rescoring a finished experiment's ``result.json`` record would load under ``cfg``."""
    rows = stored.get("rows") or [{}]
    if cfg.eval.weights == "best" and _stored_step(rows[0].get("best_step")):
        return run_folder.BEST_WEIGHTS
    return run_folder.MODEL_WEIGHTS


def _rescore(job: ExperimentJob, stored_rows: list[dict], lpips_metric, progress: bool) -> list[dict]:
    """Score a finished experiment again under the current scoring settings (rank 0; no training).

    It loads ``best.pt`` when ``eval.weights`` is best and the experiment kept one, else ``model.pt``.  best.pt
    itself was chosen once, during training, by the held-out scores of the scoring settings then in force.
    """
    from bench.harness.evaluate import METRICS
    from bench.harness.inference import load_trained

    base = {k: v for k, v in stored_rows[0].items() if k not in ("split", *METRICS)}
    trained = TrainingOutcome(steps=int(base.get("steps") or 0), best_step=_stored_step(base.get("best_step")))
    which = evaluated_weights(job.cfg, trained)
    log.info("experiment %s: finished earlier with the same training settings but other scoring settings; "
             "rescoring its %s (no training)", job.label,
             run_folder.BEST_WEIGHTS if which == "best" else run_folder.MODEL_WEIGHTS)
    _, _, model = load_trained(job.prepared.run_dir, job.exp.name, job.seed, job.ctx.device,
                               weights="best" if which == "best" else "last")
    base.update(UNTIMED, lpips_weights=lpips_metric.status if lpips_metric else "n/a", eval_weights=which)
    rows = _evaluate(job, model, base, lpips_metric, progress)
    _mark_finished(job, rows)
    return rows


def _stored_step(value: Any) -> int:
    """A ``best_step`` read back from ``result.json``: an int, or 0 for none (NaN, missing)."""
    try:
        return 0 if value is None or math.isnan(float(value)) else int(value)
    except (TypeError, ValueError):
        return 0


def _discard_stale_state(job: ExperimentJob, restart: bool) -> None:
    """Drop checkpoints of another config (or all, with ``restart``) and the finished mark (rank 0)."""
    ckpt_dir = job.checkpoint_dir
    stale = ckpt.checkpoints(ckpt_dir) and (restart or ckpt.load_latest(ckpt_dir, job.fingerprint) is None)
    if stale:
        log.warning("experiment %s: %s; its checkpoints are discarded and it starts from scratch", job.label,
                    "--restart" if restart else "its config changed since they were written")
        ckpt.clear(ckpt_dir)
    (job.folder / run_folder.RESULT_JSON).unlink(missing_ok=True)


def _train_if_needed(job: ExperimentJob, model: nn.Module, progress: bool) -> TrainingOutcome:
    """Train ``model`` in place (every rank) unless it has nothing to train or training is off."""
    from bench.harness.modeling import has_trainable_parameters
    from bench.harness.train import NonFiniteLoss, train_model

    cfg, exp, seed = job.cfg, job.exp, job.seed
    if not has_trainable_parameters(model):
        return TrainingOutcome(message="no trainable parameters: evaluated as is")
    if not (cfg.train.steps > 0 or cfg.train.epochs):
        return TrainingOutcome()
    pairs = job.prepared.train_split(exp.extra_data)
    log.info("training %s (seed %d) on %d pairs", exp.name, seed, len(pairs))
    try:
        result = train_model(model, pairs, cfg, seed, job.ctx, progress=progress, desc=f"{exp.name} s{seed}",
                             checkpoint_dir=job.checkpoint_dir, fingerprint=job.fingerprint,
                             validation=_validation(job))
    except NonFiniteLoss as exc:
        log.error("experiment %s (seed %d) failed: %s", exp.name, seed, exc)
        return TrainingOutcome(status="failed", message=str(exc))
    return TrainingOutcome(steps=result.steps, seconds=result.seconds, perceptual=result.perceptual, log=result.log,
                           best_step=result.best_step, best_value=result.best_value)


def _validation(job: ExperimentJob):
    """The :class:`bench.harness.validation.Validation` of ``train.val_every`` (None when it is 0)."""
    from bench.harness.validation import Validation

    cfg = job.cfg
    if not cfg.train.val_every or HOLDOUT not in job.prepared.splits:
        return None
    return Validation(job.prepared.splits[HOLDOUT], cfg.train.val_every, cfg.train.best_metric,
                      job.folder / run_folder.BEST_WEIGHTS, cfg.eval.batch_size, cfg.eval.quantize, cfg.eval.ssim)


def _load_evaluated_weights(job: ExperimentJob, model: nn.Module, training: TrainingOutcome) -> None:
    """With ``eval.weights: best``, load ``best.pt`` into ``model`` for scoring (rank 0); model.pt is already saved."""
    import torch

    if job.cfg.eval.weights != "best" or not training.best_step:
        if job.cfg.eval.weights == "best" and training.status == "done" and training.steps:
            log.warning("experiment %s: eval.weights is best, but no held-out validation ran; scoring the last "
                        "weights", job.label)
        return
    state = torch.load(job.folder / run_folder.BEST_WEIGHTS, map_location=job.ctx.device, weights_only=True)
    model.load_state_dict(state)


def evaluated_weights(cfg: BenchConfig, training: TrainingOutcome) -> str:
    """What the result rows were scored with: ``best`` (best.pt), ``last`` (model.pt) or ``untrained``."""
    if not training.steps:
        return "untrained"
    return "best" if cfg.eval.weights == "best" and training.best_step else "last"


def _save_training(job: ExperimentJob, model: nn.Module, training: TrainingOutcome) -> None:
    """The trained weights (unless training failed), the training log and the experiment's settings."""
    from bench.harness.train import save_log, save_weights

    folder, cfg = job.folder, job.cfg
    if training.status == "done":
        save_weights(model, folder / run_folder.MODEL_WEIGHTS)
    save_log(training.log, folder / run_folder.TRAIN_LOG_CSV)
    settings = {"experiment": to_dict(job.exp), "seed": job.seed,
                "train": to_dict(cfg.train), "loss": to_dict(cfg.loss)}
    atomic_write_text(folder / run_folder.EXPERIMENT_YAML, to_yaml(settings))


def _evaluate(job: ExperimentJob, model: nn.Module, base: dict, lpips_metric, progress: bool) -> list[dict]:
    """Score the inference model on every evaluation split: one result row per split (``base`` + split + metrics)."""
    from bench.harness.evaluate import evaluate, summarise
    from bench.perf.fast_inference import prepare_for_inference

    cfg, ctx, folder = job.cfg, job.ctx, job.folder
    model.eval()
    fast = prepare_for_inference(model, **inference_options(cfg, ctx.device))  # what the timing phase uses too
    rows = []
    for split in cfg.eval.splits:
        pred_dir = run_folder.predictions_dir(folder, split) if cfg.eval.save_predictions else None
        per_image = evaluate(fast, job.prepared.splits[split], device=ctx.device, lpips_metric=lpips_metric,
                             batch_size=cfg.eval.batch_size, pred_dir=pred_dir, progress=progress,
                             desc=f"{job.exp.name} {split}", quantize=cfg.eval.quantize, ssim_kind=cfg.eval.ssim)
        atomic_write_text(run_folder.metrics_csv(folder, split), per_image.to_csv(index=False))
        rows.append({**base, "split": split, **summarise(per_image)})
    return rows


def _result_row_base(job: ExperimentJob, model: nn.Module, training: TrainingOutcome, lpips_metric) -> dict:
    """The columns of a result row that every split shares (all but split and the metrics); untimed so far.

    GFLOPs are counted at the timing size (the timing phase counts them again for the models it times).
    """
    from bench.harness.adapter_protocol import model_tags, uses_adapter_terms
    from bench.harness.modeling import backbone_weights
    from bench.harness.timing import count_flops, device_name
    from bench.harness.timing_phase import timing_size
    from models.registry import count_parameters

    cfg, exp = job.cfg, job.exp
    size = timing_size(cfg)
    return {
        "experiment": exp.name, "model": exp.model, "seed": job.seed, "status": training.status, **UNTIMED,
        "params_m": count_parameters(model) / 1e6, "gflops": count_flops(model, (size, size)) / 1e9,
        "steps": training.steps, "train_seconds": round(training.seconds, 3),
        "eval_weights": evaluated_weights(cfg, training), "best_step": training.best_step or math.nan,
        "best_holdout": training.best_value, "residual": exp.residual,
        "extra_data": train_key(exp.extra_data)[6:] or "none", "model_tags": model_tags(exp.model),
        "adapter_terms": bool(training.steps) and uses_adapter_terms(cfg, model),
        "data_source": cfg.data.source, "data_size": cfg.data.size, "device": device_name(job.ctx.device),
        "weights": backbone_weights(model), "perceptual_loss": training.perceptual,
        "lpips_weights": lpips_metric.status if lpips_metric else "n/a", "message": training.message,
    }


def _mark_finished(job: ExperimentJob, rows: list[dict]) -> None:
    """Write ``result.json`` (a rerun reuses these rows) and drop the checkpoints: the weights are in model.pt."""
    record = json.dumps({"fingerprint": job.fingerprint, "scoring": job.scoring, "rows": rows}, default=float) + "\n"
    atomic_write_text(job.folder / run_folder.RESULT_JSON, record)
    ckpt.clear(job.checkpoint_dir)


def inference_options(cfg: BenchConfig, device: torch.device) -> dict:
    """``prepare_for_inference`` switches from ``eval.autocast`` / ``eval.compile`` (autocast only on CUDA)."""
    autocast = cfg.eval.autocast
    if autocast != "off" and device.type != "cuda":
        log.warning("eval.autocast=%s is for CUDA; evaluating in float32 on %s", autocast, device)
        autocast = "off"
    return {"autocast": autocast, "compile": cfg.eval.compile}


def write_results(prepared: PreparedRun, rows: list[dict], lpips: str, phase: TimingPhase | None = None) -> None:
    """``results.csv`` and its companion ``results.json`` (conventions, provenance, timing), atomically.

    Before the timing phase (``phase`` None) the time columns are empty and ``timing`` says so.
    """
    from bench.harness.metrics import conventions
    from bench.harness.provenance import git_state, machine, now, software_versions
    from bench.harness.timing_phase import gflops_description, timing_size

    cfg = prepared.cfg
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    atomic_write_text(prepared.run_dir / run_folder.RESULTS_CSV, frame.to_csv(index=False))
    meta = {
        "written": now(),
        "config_hash": config_hash(cfg),
        "git": git_state(),
        "data": {"source": cfg.data.source, "root": str(prepared.data_root), "size": cfg.data.size,
                 "input": cfg.data.input, "target": cfg.data.target},
        "train": to_dict(cfg.train),
        "software": software_versions(),
        "machine": machine(_device_of(cfg)),
        "metric_conventions": conventions(cfg.eval.quantize, cfg.eval.ssim),
        "lpips": lpips,
        "timing": phase.description(cfg) if phase else
                  "not timed yet: the timing phase runs once every experiment has trained and been scored",
        "gflops": gflops_description(timing_size(cfg)),
    }
    atomic_write_text(prepared.run_dir / run_folder.RESULTS_JSON, json.dumps(meta, indent=2, default=str) + "\n")


def _device_of(cfg: BenchConfig):
    from bench.harness.distributed import pick_device

    return pick_device(cfg.train.device)


def format_results(frame: pd.DataFrame) -> str:
    """A compact text table of a results frame for the terminal."""
    if frame.empty:
        return "(no results)"
    shown = frame[["experiment", "seed", "split", "status", "psnr", "ssim", "lpips", "mps", "time_per_image_s", "params_m", "gflops"]]
    return shown.to_string(index=False, na_rep="n/a", float_format=lambda v: f"{v:.4f}")
