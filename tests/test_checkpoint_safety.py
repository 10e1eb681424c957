"""No code runs from a checkpoint: every file training writes holds tensors and plain values only, every
checkpoint is loaded with ``weights_only=True``, and one that cannot be loaded that way stops the run with a
:class:`CheckpointError` naming the file, instead of being skipped or executed.

Real payloads: a planted ``step_00000002.pt`` whose unpickling would write a marker file is refused, unread, both
by :func:`load_latest` and through ``bench run``; the marker never appears.  Checkpoints written before this
format (NumPy's legacy RNG tuple with an ndarray) still resume: ``tests/fixtures/checkpoints/old_format`` holds
one written by that code (``_train(folder, steps=4)`` of tests/test_checkpoints.py, torch 2.14, NumPy 2.4).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from bench.cli import main
from bench.harness import checkpoint as ckpt
from bench.harness import train as train_module
from bench.harness.distributed import DistContext
from bench.harness.train import seed_everything, train_model
from bench.harness.validation import Validation
from tests.data_helpers import one_conv_plugin
from tests.test_checkpoints import EVERY, _DropoutNet, _Pairs, _train, tiny_train_config

OLD_FORMAT = Path(__file__).parent / "fixtures" / "checkpoints" / "old_format"
NUMPY_GLOBALS = {"numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype"}


class _Payload:
    """Unpickling it would call ``call(*args)``: a checkpoint that runs code when loaded unsafely."""

    def __init__(self, call, *args) -> None:
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _plant(folder: Path, marker: Path, how: str = "open", step: int = 2) -> Path:
    """Write ``folder/step_<step>.pt``: a torch file whose loading by pickle would create ``marker``."""
    payload = (_Payload(open, str(marker), "w") if how == "open"
               else _Payload(exec, f"open({str(marker)!r}, 'w').close()"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:08d}.pt"
    torch.save({"fingerprint": "f", "step": step, "rng": payload}, path)
    return path


def _unsafe(path: Path) -> set[str]:
    return set(torch.serialization.get_unsafe_globals_in_checkpoint(path))


@pytest.fixture
def cpu_grad_scaler(monkeypatch):
    """Training runs with an enabled (CPU) GradScaler, so checkpoints hold a real scaler state."""
    build = train_module._build_run

    def with_scaler(*args, **kwargs):
        run = build(*args, **kwargs)
        run.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
        return run

    monkeypatch.setattr(train_module, "_build_run", with_scaler)


@pytest.mark.parametrize("schedule", ["step", "constant", "cosine"])  # MultiStepLR, LambdaLR, LambdaLR
def test_every_file_training_writes_holds_plain_values_only(tmp_path, schedule, cpu_grad_scaler):
    seed_everything(0)
    model = _DropoutNet()
    folder = tmp_path / "checkpoints"
    validation = Validation(_Pairs(), every=1, best_path=tmp_path / "best.pt")
    train_model(model, _Pairs(), tiny_train_config(4, schedule, every=1), seed=0, ctx=DistContext(),
                progress=False, checkpoint_dir=folder, fingerprint="f", validation=validation)
    ckpt.save_weights(model, tmp_path / "model.pt")
    written = [*ckpt.checkpoints(folder), tmp_path / "model.pt", tmp_path / "best.pt"]
    assert [p.name for p in written[:3]] == ["step_00000001.pt", "step_00000002.pt", "step_00000003.pt"]
    for path in written:
        assert _unsafe(path) == set(), path
        torch.load(path, weights_only=True)  # no allowlist needed
    state = torch.load(written[2], weights_only=True)
    assert state["scaler"]["scale"] == 2.0**8 and state["rows"][-1]["holdout_psnr"] > 0
    assert ("milestones" in state["scheduler"]) == (schedule == "step")
    assert ("lr_lambdas" in state["scheduler"]) == (schedule != "step")


def test_a_checkpoint_with_anything_else_is_not_written(tmp_path):
    """save_checkpoint refuses a state weights_only could not load, before anything reaches the folder."""
    with pytest.raises(TypeError, match=r"numpy\.ndarray|numpy\._core"):
        ckpt.save_checkpoint(tmp_path, {"step": 1, "fingerprint": "f", "key": np.zeros(3)}, keep=2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["open", "exec"])
def test_a_planted_checkpoint_is_refused_unread_and_not_skipped(tmp_path, how):
    """The newest checkpoint would run code: an error naming it, the marker absent, no fallback to step 1."""
    folder, marker = tmp_path / "checkpoints", tmp_path / "marker"
    _train(folder, steps=2, every=1)  # a genuine step_00000001.pt below the planted one
    planted = _plant(folder, marker, how)
    assert _unsafe(planted) & {"builtins.open", "io.open", "builtins.exec"}
    with pytest.raises(ckpt.CheckpointError) as caught:
        ckpt.load_latest(folder, "f")
    message = str(caught.value)
    assert str(planted) in message and "could run code" in message and "--restart" in message
    assert "it was not loaded" in message
    with pytest.raises(ckpt.CheckpointError, match="step_00000002.pt"):  # training neither resumes nor retrains
        _train(folder, steps=4, every=1)
    assert not marker.exists()
    assert planted.exists() and len(ckpt.checkpoints(folder)) == 2


@pytest.mark.parametrize("damage", ["cut in half", "empty", "text"])
def test_a_damaged_checkpoint_is_an_error_naming_the_file(tmp_path, damage):
    folder = tmp_path / "checkpoints"
    _train(folder, steps=3, every=1)
    newest = ckpt.checkpoints(folder)[-1]
    data = newest.read_bytes()
    newest.write_bytes({"cut in half": data[: len(data) // 2], "empty": b"", "text": b"not a checkpoint\n"}[damage])
    with pytest.raises(ckpt.CheckpointError) as caught:
        _train(folder, steps=4, every=1)
    message = str(caught.value)
    assert str(newest) in message and "cut short" in message and "--restart" in message


def test_a_checkpoint_that_does_not_fit_is_an_error_naming_the_file(tmp_path):
    """Plain data with the right fingerprint but no usable state: an error, not a crash or a fresh start."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save({"fingerprint": "f", "step": 3, "model": {}}, folder / "step_00000003.pt")
    with pytest.raises(ckpt.CheckpointError, match=r"step_00000003\.pt: it does not fit this experiment"):
        _train(folder)


def _as_old_format(path: Path) -> None:
    """Rewrite checkpoint ``path`` as the code before plain-value checkpoints wrote it: NumPy's RNG state as its
    legacy tuple (``np.random.get_state()``) with the key as a uint32 ndarray, the whole dict through torch.save."""
    state = torch.load(path, weights_only=True)
    new = state["rng"]["numpy"]
    state["rng"]["numpy"] = ("MT19937", new["state"]["key"].numpy().astype(np.uint32), new["state"]["pos"],
                             new["has_gauss"], new["gauss"])
    torch.save(state, path)


def test_an_old_format_checkpoint_resumes_bitwise(tmp_path):
    uninterrupted = _train(tmp_path / "whole")
    folder = tmp_path / "old"
    _train(folder)
    _as_old_format(ckpt.checkpoints(folder)[-1])
    assert _unsafe(ckpt.checkpoints(folder)[-1]) == NUMPY_GLOBALS  # what the old code wrote
    resumed = _train(folder, init_seed=1)
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted), "resumed weights differ"


def _numpy1_names(src: Path, dst: Path) -> None:
    """``src`` as NumPy 1 pickled it: the array rebuilt by ``numpy.core.multiarray._reconstruct``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/data.pkl"):
                data = data.replace(b"numpy._core.multiarray\n_reconstruct", b"numpy.core.multiarray\n_reconstruct")
            zout.writestr(info.filename, data)


@pytest.mark.parametrize("numpy_names", ["numpy 2", "numpy 1"])
def test_the_frozen_old_checkpoint_resumes(tmp_path, numpy_names):
    """The fixture (written by the old code) resumes exactly like the same state saved in today's format."""
    fixture = OLD_FORMAT / f"step_{EVERY:08d}.pt"
    assert _unsafe(fixture) == NUMPY_GLOBALS
    old = tmp_path / "old"
    old.mkdir()
    if numpy_names == "numpy 1":
        _numpy1_names(fixture, old / fixture.name)
        assert "numpy.core.multiarray._reconstruct" in _unsafe(old / fixture.name)
    else:
        shutil.copy(fixture, old)
    state = ckpt.load_latest(old, "f")
    assert state["step"] == EVERY and isinstance(state["rng"]["numpy"], tuple)
    ckpt.set_rng_state(state["rng"])  # the state today's format stores: NumPy's key as a tensor
    state["rng"] = ckpt.rng_state()
    ckpt.save_checkpoint(tmp_path / "new", state, keep=1)
    from_old, from_new = _train(old, init_seed=1), _train(tmp_path / "new", init_seed=2)
    assert all(torch.equal(from_old[k], from_new[k]) for k in from_old), "the old checkpoint resumes otherwise"


SAFETY_PLUGIN = one_conv_plugin("safety_test_one_conv")


def _tiny_run_config(tmp_path: Path) -> Path:
    cfg = {
        "name": "tiny", "plugins": ["safety_test_plugin"],
        "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                 "synthetic": {"train": 2, "val": 1, "test": 1, "seed": 0, "size": 16}},
        "train": {"steps": 2, "batch_size": 2, "checkpoint_every": 1},
        "eval": {"timing_rounds": 1, "timing_warmup": 0},
        "experiments": [{"name": "conv", "model": "safety_test_one_conv"}],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_bench_run_refuses_a_planted_checkpoint(tmp_path, monkeypatch, capsys):
    """``bench run`` reads the checkpoints of an output folder to tell whether they are stale: a planted one is
    refused (exit 2, named), not executed and not discarded; ``--restart`` deletes it unread and trains."""
    (tmp_path / "safety_test_plugin.py").write_text(SAFETY_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    config, out, marker = _tiny_run_config(tmp_path), tmp_path / "runs", tmp_path / "marker"
    planted = _plant(out / "tiny" / "conv" / "seed0" / "checkpoints", marker)
    code = main(["run", str(config), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(planted) in err and "--restart" in err
    assert not marker.exists() and planted.exists()
    code = main(["run", str(config), "--out", str(out), "--no-progress", "--restart"])
    assert code == 0, capsys.readouterr().err
    assert not marker.exists() and not planted.exists()
    assert (out / "tiny" / "conv" / "seed0" / "model.pt").is_file()


def test_old_format_globals_rebuild_arrays_only():
    """The allowlist for old checkpoints: NumPy's array rebuilding, nothing that calls or imports."""
    names = {name if isinstance(name, str) else f"{name.__module__}.{name.__qualname__}"
             for name in (g[1] if isinstance(g, tuple) else g for g in ckpt.OLD_FORMAT_GLOBALS)}
    assert names == {"numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct", "numpy.ndarray",
                     "numpy.dtype", "numpy.dtypes.UInt32DType"}
