"""Training checkpoints, everything needed to continue a run exactly where it stopped, and the weight and log
files a finished training leaves (``model.pt``, ``best.pt``, ``train_log.csv``).

A checkpoint holds the model, optimizer, LR scheduler and AMP scaler states, every RNG state (Python,
NumPy, torch CPU and CUDA), the data position (epoch and batches consumed in it), the step, the training
log so far and a fingerprint of the experiment's resolved config.  Files are written atomically
(temporary file, fsync, rename) as ``step_00000042.pt``; the last ``keep`` are kept.  On CPU a resumed
run continues bitwise-identically to an uninterrupted one.
"""

from __future__ import annotations

import io
import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from relight_base.atomic import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

_NAME = re.compile(r"^step_(\d{8})\.pt$")


def rng_state() -> dict[str, Any]:
    """The state of every random number generator training touches."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as ``folder/step_<step>.pt`` atomically and prune all but the newest ``keep``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = Path(folder) / f"step_{state['step']:08d}.pt"
    atomic_write_bytes(path, buffer.getvalue())
    for old in checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _NAME.match(p.name)), key=lambda p: p.name)


def load_latest(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The newest checkpoint whose fingerprint matches, or None.

    Checkpoints of a changed config are not resumed from (the caller starts over and says so).
    """
    for path in reversed(checkpoints(folder)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)  # our own files: RNG states need pickle
        except Exception as exc:  # a file cut short by a crash before the atomic rename cannot exist; be safe anyway
            log.warning("ignoring unreadable checkpoint %s (%s)", path, exc)
            continue
        if state.get("fingerprint") != fingerprint:
            return None
        return state
    return None


def clear(folder: Path) -> None:
    """Delete every checkpoint in ``folder`` (a changed config or ``--restart``)."""
    for path in checkpoints(folder):
        path.unlink(missing_ok=True)


def save_weights(model: nn.Module, path: Path) -> None:
    """Save ``model.state_dict()`` atomically."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_log(frame: pd.DataFrame, path: Path) -> None:
    """Write a training log CSV atomically."""
    atomic_write_text(path, frame.to_csv(index=False))
