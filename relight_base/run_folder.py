"""The run folder's layout, defined once: ``bench run`` writes it, ``bench predict``/``export`` and the reporter read it.

``<out>/<name>/`` of one ``bench run``::

    config.yaml                   the resolved config (defaults filled in, overrides applied; a rescoring rewrites it)
    protocol.yaml                 what decides the verdicts (eval.weights, splits, seeds, report: ...), written once
                                  when the run first started and never overwritten (bench.harness.protocol)
    tuned.yaml                    a copy of the tuned file of `bench run --tuned` (absent without it); in a tuning
                                  folder (<name>-tune/), the file `bench tune` wrote
    data.json                     where the data came from and what each split holds
    results.csv                   one row per experiment x seed x split
    results.json                  companion: metric conventions, provenance, and the rescorings since the protocol
    timing.csv                    the timing phase's raw rounds: one row per (round, model), seconds
    timing.json                   the timing phase: id, device, threads, size, rounds, warm-up, order rule
    .shared.lock                  held for a moment while a process rewrites the shared files (bench.harness.lock;
                                  .shared.lock.takeover and .takeover.break appear for a moment during a take-over)
    launch/                       what a launcher needs: the config snapshot units load, Slurm's job files and logs
                                  (0700, this user's only: its files are loaded as code)
    <experiment>/
        submission.zip            `bench export`'s NTIRE 2021 submission (default place)
        seed<k>/
            experiment.yaml       this experiment's resolved settings
            model.pt              trained weights at the end of training (state dict of the wrapped model)
            best.pt               with train.val_every: the weights of the best held-out score (eval.weights: best)
            ema.pt                with train.ema_decay: the moving average of the weights at the end (ema_last)
            ema_best.pt           with ema_decay and val_every: the moving average at its best held-out score
            tensorboard/          with train.tensorboard: TensorBoard event files of the unit
            train_log.csv         loss terms and lr per step (+ holdout_psnr/holdout_ssim where validated)
            metrics_<split>.csv   per-image PSNR, SSIM, LPIPS, MPS
            predictions/<split>/ImageNNN.png
            checkpoints/          resumable training state while it runs (step_NNNNNNNN.pt)
            result.json           written last: the experiment finished (its rows and config fingerprint)
            unit.json             this experiment x seed's state: pending, running, done, failed, cancelled, killed
            unit.log              its log when a launcher ran it in its own process
            .unit.lock            held while a process trains or scores it (bench.harness.lock)
    report.html, tables/, figures/   `bench report`'s output (by default into the run folder)

Every path is built by the functions below from the run folder, so a reader and the
writer can never disagree on a name.
"""

from __future__ import annotations

import re
from pathlib import Path

CONFIG_YAML = "config.yaml"
PROTOCOL_YAML = "protocol.yaml"
TUNED_YAML = "tuned.yaml"
DATA_JSON = "data.json"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
TIMING_CSV = "timing.csv"
TIMING_JSON = "timing.json"
SHARED_LOCK_FILE = ".shared.lock"
UNIT_LOCK_FILE = ".unit.lock"
UNIT_JSON = "unit.json"
UNIT_LOG = "unit.log"
LAUNCH_DIR = "launch"
REPORT_HTML = "report.html"
TABLES_DIR = "tables"
FIGURES_DIR = "figures"

SUBMISSION_ZIP = "submission.zip"
EXPERIMENT_YAML = "experiment.yaml"
MODEL_WEIGHTS = "model.pt"
BEST_WEIGHTS = "best.pt"
EMA_WEIGHTS = "ema.pt"
EMA_BEST_WEIGHTS = "ema_best.pt"
TENSORBOARD_DIR = "tensorboard"
TRAIN_LOG_CSV = "train_log.csv"
RESULT_JSON = "result.json"
CHECKPOINTS_DIR = "checkpoints"
PREDICTIONS_DIR = "predictions"


# Names a run or experiment may take: letters, digits, '-', '_', '.', starting with a letter or digit.  An experiment
# name becomes a folder of the run folder, so it must not be one of the run folder's own entries either.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_RULE = "letters, digits, '-', '_', '.', starting with a letter or digit"
RESERVED_NAMES = (CONFIG_YAML, PROTOCOL_YAML, TUNED_YAML, DATA_JSON, RESULTS_CSV, RESULTS_JSON, TIMING_CSV, TIMING_JSON, LAUNCH_DIR,
                  REPORT_HTML, TABLES_DIR, FIGURES_DIR)


def name_problem(name: object, *, experiment: bool = True) -> str | None:
    """Why ``name`` cannot name a run (``experiment`` False) or an experiment folder, or None when it can.

    The whole name must match :data:`NAME_PATTERN` (a trailing newline does not pass); an experiment name must not be
    one of :data:`RESERVED_NAMES`, compared without case (file systems that ignore case would clash too).
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return f"{name!r} is not a valid name ({NAME_RULE})"
    if experiment and name.lower() in (n.lower() for n in RESERVED_NAMES):
        return f"{name!r} is the name of one of the run folder's own files or folders ({', '.join(RESERVED_NAMES)})"
    return None


def experiment_dir(run_dir: Path, experiment: str, seed: int) -> Path:
    """``<run>/<experiment>/seed<k>/``: everything one experiment with one seed wrote."""
    return Path(run_dir) / experiment / f"seed{seed}"


def metrics_csv(exp_dir: Path, split: str) -> Path:
    """``<experiment dir>/metrics_<split>.csv``: one row of metrics per image of ``split``."""
    return Path(exp_dir) / f"metrics_{split}.csv"


def predictions_dir(exp_dir: Path, split: str) -> Path:
    """``<experiment dir>/predictions/<split>/``: one predicted PNG per scene."""
    return Path(exp_dir) / PREDICTIONS_DIR / split


def prediction_png(predictions: Path, scene_id: str) -> Path:
    """``<predictions dir>/<scene_id>.png`` (``scene_id`` such as ``Image042``): one scene's prediction."""
    return Path(predictions) / f"{scene_id}.png"


def submission_zip(run_dir: Path, experiment: str) -> Path:
    """``<run>/<experiment>/submission.zip``: where ``bench export`` writes by default."""
    return Path(run_dir) / experiment / SUBMISSION_ZIP
