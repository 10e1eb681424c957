"""Training checkpoints, everything needed to continue a run exactly where it stopped, and the weight and log
files a finished training leaves (``model.pt``, ``best.pt``, ``ema.pt``, ``ema_best.pt``, ``train_log.csv``).

A checkpoint holds the model, optimizer, LR scheduler and AMP scaler states (and the moving average of the
weights with ``train.ema_decay``), every RNG state (Python,
NumPy, torch CPU and CUDA), the data position (epoch and batches consumed in it), the step, the training
log so far and a fingerprint of the experiment's resolved config.  Files are written atomically
(temporary file, fsync, rename) as ``step_00000042.pt``; the last ``keep`` are kept.  On CPU a resumed
run continues bitwise-identically to an uninterrupted one.

Every file here holds tensors and plain values only (dicts, lists, tuples, numbers, text), so it loads with
``torch.load(..., weights_only=True)``: loading a checkpoint never runs code, whoever wrote the file.  A
checkpoint that cannot be loaded that way (or is cut short) is refused with :class:`CheckpointError`, never
skipped in silence.
"""

from __future__ import annotations

import io
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from relight_base.atomic import atomic_write_bytes, atomic_write_text
from relight_base.errors import BenchError

_NAME = re.compile(r"^step_(\d{8})\.pt$")

# Checkpoints written before they held plain values only keep NumPy's legacy RNG state: a tuple with a uint32
# ndarray.  Rebuilding that array takes these globals and nothing else (NumPy 1 names the first one
# numpy.core.multiarray._reconstruct; NumPy 2, numpy._core.multiarray._reconstruct).
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
OLD_FORMAT_GLOBALS = [
    (_RECONSTRUCT, "numpy._core.multiarray._reconstruct"),
    (_RECONSTRUCT, "numpy.core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),  # numpy.dtypes.UInt32DType
]


class CheckpointError(BenchError):
    """A training checkpoint cannot be loaded safely, or does not fit the run resuming from it."""


def unusable(path: Path, why: str) -> CheckpointError:
    """The error for checkpoint ``path`` that cannot be resumed from, ``why`` and what to do about it."""
    return CheckpointError(
        f"checkpoint {path}: {why}. Training does not resume from it: delete the file (a rerun then resumes from "
        f"the newest checkpoint left, or starts over), or rerun with --restart to discard this experiment's "
        f"checkpoints and train it from scratch"
    )


def rng_state() -> dict[str, Any]:
    """The state of every random number generator training touches, as tensors and plain values.

    NumPy's is its ``get_state(legacy=False)`` dict with the MT19937 key as an int64 tensor.
    """
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": str(numpy_state["bit_generator"]),
            "state": {"key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                      "pos": int(numpy_state["state"]["pos"])},
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (or an older checkpoint's states, NumPy's as its legacy tuple)."""
    random.setstate(state["python"])
    np.random.set_state(_numpy_state(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state(saved: Any) -> Any:
    """NumPy's state as ``np.random.set_state`` takes it: the key tensor back to uint32 (an old tuple as is)."""
    if not isinstance(saved, dict):
        return saved
    key = saved["state"]["key"]
    return {**saved, "state": {**saved["state"], "key": key.numpy().astype(np.uint32)}}


def save_checkpoint(folder: Path, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as ``folder/step_<step>.pt`` atomically and prune all but the newest ``keep``.

    ``state`` must hold tensors and plain values only (see the module docstring); anything else is a bug here.
    """
    data = _plain_bytes(state)
    path = Path(folder) / f"step_{state['step']:08d}.pt"
    atomic_write_bytes(path, data)
    for old in checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def _plain_bytes(state: Any) -> bytes:
    """``torch.save`` of ``state``, checked to load with ``weights_only=True`` (no global outside its allowlist)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    if unsafe:
        raise TypeError(f"a checkpoint must hold tensors and plain values only, but this one refers to "
                        f"{', '.join(sorted(unsafe))}; convert them to plain values before saving")
    return data


def checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _NAME.match(p.name)), key=lambda p: p.name)


def load_latest(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The newest checkpoint in ``folder`` when its fingerprint is ``fingerprint``, else None.

    None when there is none, or when the newest belongs to a changed config (not resumed from: the caller
    starts over and says so).  Raises :class:`CheckpointError` when the newest cannot be loaded safely; an
    older one is never used in its place.
    """
    found = checkpoints(folder)
    if not found:
        return None
    state = load_checkpoint(found[-1])
    return state if state.get("fingerprint") == fingerprint else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The training state in checkpoint ``path``, loaded with ``weights_only=True`` (tensors and plain values).

    Old checkpoints' NumPy RNG array loads through :data:`OLD_FORMAT_GLOBALS`.  Raises :class:`CheckpointError`
    naming the file when it is not a complete torch file, refers to anything else, or holds no training state.
    """
    if not zipfile.is_zipfile(path):
        raise unusable(path, "it is not a complete torch checkpoint (no zip directory at its end: cut short, "
                             "damaged, or not written by torch.save)")
    try:
        with torch.serialization.safe_globals(OLD_FORMAT_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise unusable(path, _refused(path, exc)) from None
    except Exception as exc:  # a damaged archive: torch raises RuntimeError, OSError, KeyError, EOFError ...
        raise unusable(path, f"it cannot be read ({exception_line(exc)})") from None
    if not isinstance(state, dict) or not {"step", "fingerprint"} <= state.keys():
        raise unusable(path, "it does not hold a training checkpoint (a dict with a step and a fingerprint)")
    return state


def _refused(path: Path, exc: pickle.UnpicklingError) -> str:
    """Why ``weights_only`` loading refused ``path``: the globals it refers to, when they can be named."""
    try:
        with torch.serialization.safe_globals(OLD_FORMAT_GLOBALS):
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # only to name them; the refusal stands either way
        names = []
    if names:
        what = f"it refers to Python objects other than tensors and plain values ({', '.join(sorted(names))})"
    else:
        found = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
        detail = found.group(1).strip() if found else exception_line(exc)
        what = f"it holds what weights-only loading refuses ({detail})"
    return (f"{what}: loading it could run code, so it was not loaded (relight-bench writes tensors and plain "
            f"values only; this file was written by something else, or altered)")


def exception_line(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` of ``exc`` on one line, cut at ``limit`` characters, for an error message."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def clear(folder: Path) -> None:
    """Delete every checkpoint in ``folder`` (a changed config or ``--restart``)."""
    for path in checkpoints(folder):
        path.unlink(missing_ok=True)


def save_weights(model: nn.Module, path: Path) -> None:
    """Save ``model.state_dict()`` atomically (tensors only: it loads with ``weights_only=True``)."""
    save_state(model.state_dict(), path)


def save_state(state: dict[str, torch.Tensor], path: Path) -> None:
    """Save a state dict atomically (tensors only: it loads with ``weights_only=True``)."""
    atomic_write_bytes(path, _plain_bytes(state))


def save_log(frame: pd.DataFrame, path: Path) -> None:
    """Write a training log CSV atomically."""
    atomic_write_text(path, frame.to_csv(index=False))
