"""TensorBoard event files of one unit (``train.tensorboard``), written by rank 0 beside its ``train_log.csv``.

Every row of the training log becomes scalars under ``train_log/<column>`` at its step (the loss and each
term, the lr, the epoch, the seconds since the start, held-out PSNR/SSIM where validated, the moving
average's held-out scores with ``train.ema_decay``), plus ``time/step_seconds`` (wall seconds per optimizer
step since the previous row).  Each validation adds a few held-out predictions as images (input |
prediction | target), and the end of the unit the hyperparameters with its final scores
(``hparams/`` sub-folder).  Watch a run with ``tensorboard --logdir runs/``.

Logging reads values the loop has already computed, plus one forward pass of the held-out images in eval
mode, and touches no random number generator: the trained weights are the same with it on or off.  The
package is an optional extra (``pip install -e ".[tensorboard]"``); :func:`require_tensorboard` says so
before a run starts.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path
from typing import Any

import torch

from relight_base.errors import ConfigError

INSTALL_HINT = 'pip install -e ".[tensorboard]"'
SCALAR_PREFIX = "train_log/"
STEP_SECONDS_TAG = "time/step_seconds"
IMAGES_TAG = "holdout/input_prediction_target"
HPARAMS_RUN = "hparams"


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package (which ``torch.utils.tensorboard`` needs) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def require_tensorboard(enabled: bool) -> None:
    """A :class:`ConfigError` naming the extra to install when ``train.tensorboard`` is on without the package."""
    if enabled and not tensorboard_available():
        raise ConfigError(f"train.tensorboard: true needs the tensorboard package, which is not installed here; "
                          f"install the extra with {INSTALL_HINT}, or set train.tensorboard: false")


class TensorBoardLog:
    """One unit's event files in ``folder`` (opened by :meth:`open` once training knows where it resumes)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._writer = None
        self._previous: tuple[int, float] | None = None  # (step, seconds) of the last row logged

    def open(self, resumed_step: int = 0, rows: list[dict] | None = None) -> None:
        """Start writing; after a resume from ``resumed_step``, events of later steps an interrupted run wrote are
        dropped (TensorBoard's ``purge_step``) and the step time continues from the last of ``rows``.  A fresh
        start (step 0) first removes the event files an earlier, abandoned training of the unit left."""
        require_tensorboard(True)
        from torch.utils.tensorboard import SummaryWriter

        if not resumed_step and self.folder.is_dir():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.folder), purge_step=resumed_step + 1 if resumed_step else None)
        if rows:
            self._previous = (int(rows[-1]["step"]), float(rows[-1]["seconds"]))

    def log_row(self, row: dict[str, Any]) -> None:
        """Every numeric value of a training-log row as a scalar at ``row["step"]``, and the step time."""
        if self._writer is None:
            return
        step = int(row["step"])
        for name, value in row.items():
            if name != "step" and _is_number(value):
                self._writer.add_scalar(SCALAR_PREFIX + name, float(value), step)
        if self._previous is not None and step > self._previous[0]:
            seconds = (float(row["seconds"]) - self._previous[1]) / (step - self._previous[0])
            self._writer.add_scalar(STEP_SECONDS_TAG, seconds, step)
        self._previous = (step, float(row["seconds"]))

    def log_images(self, images: torch.Tensor, step: int) -> None:
        """Held-out predictions ``images``: (N,3,H,W) floats in [0,1], at optimizer step ``step``."""
        if self._writer is not None and len(images):
            self._writer.add_images(IMAGES_TAG, images, step, dataformats="NCHW")

    def log_hparams(self, hparams: dict[str, Any], scores: dict[str, float]) -> None:
        """The unit's hyperparameters with its final scores (TensorBoard's HParams tab); NaN scores left out."""
        if self._writer is None:
            return
        plain = {k: (v if isinstance(v, (bool, int, float, str)) else str(v)) for k, v in hparams.items()}
        finite = {k: float(v) for k, v in scores.items() if _is_number(v)}
        self._writer.add_hparams(plain, finite, run_name=HPARAMS_RUN)

    def close(self) -> None:
        """Flush and close the event files (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
