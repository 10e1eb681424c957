"""What users expect of a training loop: gradient accumulation, EMA weights, TensorBoard event files.

Each is checked against an independent computation: accumulation against one big batch, the moving average
against an average computed here from the weights of separate shorter runs, the event files against
``train_log.csv`` read back with TensorBoard's own reader, and EMA scores against a direct forward pass.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import Dataset

from bench.harness.config import parse_config
from bench.harness.distributed import DistContext
from bench.harness.train import per_rank_batch, seed_everything, train_model
from bench.harness.validation import Validation
from relight_base.errors import ConfigError
from tests.data_helpers import one_conv_plugin


class _Net(nn.Module):
    """RGB + depth -> RGB: two convolutions, with BatchNorm between them when ``norm``."""

    def __init__(self, norm: bool = False) -> None:
        super().__init__()
        layers = [nn.Conv2d(4, 6, 3, padding=1)] + ([nn.BatchNorm2d(6)] if norm else []) + [nn.ReLU(),
                                                                                             nn.Conv2d(6, 3, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([rgb, depth], dim=1))


class _Pairs(Dataset):
    """Eight fixed random 12x12 samples."""

    def __init__(self, n: int = 8) -> None:
        gen = torch.Generator().manual_seed(7)
        self.items = [{"rgb": torch.rand(3, 12, 12, generator=gen), "depth": torch.rand(1, 12, 12, generator=gen),
                       "target": torch.rand(3, 12, 12, generator=gen), "scene_id": f"Image{i:03d}",
                       "origin": "baseline", "index": i} for i in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def _config(steps: int = 3, batch: int = 4, accumulate: int = 1, ema: float | None = None, **train) -> object:
    settings = {"steps": steps, "batch_size": batch, "accumulate": accumulate, "lr": 0.01, "schedule": "constant",
                "ema_decay": ema, **train}
    return parse_config(yaml.safe_dump({"experiments": [{"name": "a", "model": "identity"}],
                                        "loss": {"perceptual": 0.0}, "train": settings}))


def _train(cfg, norm: bool = False, **kwargs):
    seed_everything(0)
    model = _Net(norm)
    result = train_model(model, _Pairs(), cfg, seed=0, ctx=DistContext(), progress=False, **kwargs)
    return model, result


def _close(a: dict, b: dict, atol: float = 1e-6) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


# --- gradient accumulation -------------------------------------------------------------------------------------

def test_two_micro_batches_of_two_equal_one_batch_of_four():
    whole, whole_run = _train(_config(batch=4, accumulate=1))
    split, split_run = _train(_config(batch=4, accumulate=2))
    assert _close(whole.state_dict(), split.state_dict()), "accumulated steps differ from one batch of four"
    np.testing.assert_allclose(split_run.log["loss"], whole_run.log["loss"], rtol=0, atol=1e-6)
    half, _ = _train(_config(batch=2, accumulate=1))  # guard: a batch of two alone ends elsewhere
    assert not _close(whole.state_dict(), half.state_dict())


def test_accumulation_counts_optimizer_steps_and_feeds_each_micro_batch_once(monkeypatch):
    import bench.harness.train_step as train_step

    seen: list[int] = []
    real = train_step._micro_step

    def record(run, sample, step, share):
        seen.append(len(sample["rgb"]))
        return real(run, sample, step, share)

    monkeypatch.setattr(train_step, "_micro_step", record)
    _, result = _train(_config(steps=3, batch=4, accumulate=4))
    assert result.steps == 3 and result.log["step"].tolist() == [1, 2, 3]
    assert seen == [1] * 12  # 3 optimizer steps x 4 micro-batches of one image


def test_epochs_count_optimizer_steps_with_accumulation():
    from bench.harness.train import total_steps

    cfg = parse_config("experiments: [{name: a, model: identity}]\ntrain: {epochs: 2, batch_size: 4, accumulate: 2}\n")
    assert total_steps(cfg, 8) == 4  # 8 pairs / 4 per step = 2 steps per epoch
    assert per_rank_batch(cfg, 1) == 2 and per_rank_batch(cfg, 2) == 1


@pytest.mark.parametrize("text, key", [
    ("train: {batch_size: 3, accumulate: 2}", "train.accumulate"),
    ("train: {accumulate: 0}", "train.accumulate"),
    ("train: {ema_decay: 1.0}", "train.ema_decay"),
    ("train: {ema_decay: 1.5}", "train.ema_decay"),
    ("train: {ema_decay: 0}", "train.ema_decay"),
    ("eval: {weights: ema_last}", "eval.weights"),
    ("train: {ema_decay: 0.9}\neval: {weights: ema_best}", "eval.weights"),
])
def test_bad_training_extras_are_refused_naming_the_key(text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config("experiments: [{name: a, model: identity}]\n" + text + "\n")


def test_bad_accumulate_exits_2_from_the_cli(tmp_path, capsys):
    from bench.cli import main

    (tmp_path / "c.yaml").write_text("experiments: [{name: a, model: identity}]\ntrain: {batch_size: 3, "
                                     "accumulate: 2}\n")
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs")]) == 2
    assert "train.accumulate" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


# --- EMA weights -----------------------------------------------------------------------------------------------

def test_ema_is_the_hand_computed_average_of_the_weights_after_each_step():
    """e_0 = initial weights, e_k = d e_(k-1) + (1 - d) w_k, for parameters and BatchNorm statistics alike; the
    w_k come from separate runs of k steps (same seed, constant lr: the same first k steps)."""
    decay, steps = 0.6, 3
    seed_everything(0)
    states = [{k: v.clone() for k, v in _Net(norm=True).state_dict().items()}]
    for k in range(1, steps + 1):
        model, _ = _train(_config(steps=k), norm=True)
        states.append(model.state_dict())
    expected = {}
    for name, initial in states[0].items():
        if not initial.is_floating_point():
            expected[name] = states[-1][name]  # integer buffers (num_batches_tracked) are copied
            continue
        value = initial.clone()
        for state in states[1:]:
            value = decay * value + (1 - decay) * state[name]
        expected[name] = value
    model, result = _train(_config(steps=steps, ema=decay), norm=True)
    assert result.ema_state is not None
    assert _close(result.ema_state, expected, atol=1e-6)
    assert not _close(result.ema_state, model.state_dict()), "the average must differ from the last weights"
    assert "body.1.running_mean" in expected


def test_ema_does_not_change_the_trained_weights():
    plain, _ = _train(_config(steps=3), norm=True)
    averaged, _ = _train(_config(steps=3, ema=0.9), norm=True)
    assert all(torch.equal(plain.state_dict()[k], v) for k, v in averaged.state_dict().items())


def test_ema_is_validated_and_its_best_kept(tmp_path):
    validation = Validation(_Pairs(4), every=1, best_path=tmp_path / "best.pt", quantize=False,
                            ema_best_path=tmp_path / "ema_best.pt")
    _, result = _train(_config(steps=4, ema=0.5), validation=validation)
    log = result.log
    assert {"holdout_psnr", "ema_holdout_psnr", "ema_holdout_ssim"} <= set(log.columns)
    best = int(log.loc[log["ema_holdout_psnr"].idxmax(), "step"])
    assert result.ema_best_step == best
    assert result.ema_best_value == pytest.approx(log["ema_holdout_psnr"].max())
    assert (tmp_path / "ema_best.pt").is_file()
    saved = torch.load(tmp_path / "ema_best.pt", weights_only=True)
    if best == 4:
        assert _close(saved, result.ema_state, atol=0)


def test_ema_resumes_bitwise_from_a_checkpoint(tmp_path, monkeypatch):
    import bench.harness.train as train

    cfg = _config(steps=6, ema=0.7, checkpoint_every=2)
    _, whole = _train(cfg, norm=True, checkpoint_dir=tmp_path / "whole", fingerprint="f")
    real = train._train_step
    calls = {"n": 0}

    def stop_after_four(run, group, step):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return real(run, group, step)

    with monkeypatch.context() as patch:
        patch.setattr(train, "_train_step", stop_after_four)
        with pytest.raises(KeyboardInterrupt):
            _train(cfg, norm=True, checkpoint_dir=tmp_path / "cut", fingerprint="f")
    _, resumed = _train(cfg, norm=True, checkpoint_dir=tmp_path / "cut", fingerprint="f")
    assert all(torch.equal(whole.ema_state[k], resumed.ema_state[k]) for k in whole.ema_state)


@pytest.fixture()
def ema_workspace(tmp_path, monkeypatch):
    (tmp_path / "ema_plugin.py").write_text(one_conv_plugin("ema_test_conv"))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = {"name": "e", "plugins": ["ema_plugin"],
           "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                    "synthetic": {"train": 6, "val": 2, "test": 1, "seed": 0, "size": 16}},
           "train": {"steps": 6, "batch_size": 2, "lr": 0.05, "schedule": "constant", "val_every": 2, "holdout": 2,
                     "ema_decay": 0.5},
           "eval": {"timing_rounds": 1, "timing_warmup": 0, "splits": ["val"], "weights": "ema_best",
                    "quantize": False},
           "experiments": [{"name": "conv", "model": "ema_test_conv"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def _run(root: Path, out: str, *overrides: str):
    from bench.harness.config import load_config
    from bench.harness.run import run_benchmark

    return run_benchmark(load_config(root / "c.yaml", list(overrides)), root / out, progress=False)


def _direct_psnr(weights: Path, data_root: Path) -> float:
    """Mean PSNR over the val split of a one-conv net loaded from ``weights``: a forward pass written here."""
    from bench.harness.prepare import prepare
    from bench.harness.config import load_config

    state = torch.load(weights, weights_only=True)
    conv = nn.Conv2d(4, 3, 3, padding=1)
    conv.load_state_dict({k.split("conv.")[-1]: v for k, v in state.items() if "conv." in k})
    prepared = prepare(load_config(data_root / "c.yaml"), data_root / "direct", progress=False)
    values = []
    for sample in prepared.splits["val"]:
        with torch.no_grad():
            pred = conv(torch.cat([sample["rgb"], sample["depth"]])[None]).clamp(0, 1)[0]
        mse = float(((pred - sample["target"]) ** 2).mean())
        values.append(10 * math.log10(1.0 / mse))
    return float(np.mean(values))


@pytest.mark.parametrize("which, file", [("ema_best", "ema_best.pt"), ("ema_last", "ema.pt")])
def test_eval_weights_ema_scores_the_moving_average(ema_workspace, which, file):
    outcome = _run(ema_workspace, "a", f"eval.weights={which}")
    folder = ema_workspace / "a" / "e" / "conv" / "seed0"
    row = outcome.results.iloc[0]
    assert row["eval_weights"] == which
    assert row["psnr"] == pytest.approx(_direct_psnr(folder / file, ema_workspace), abs=1e-4)
    assert row["psnr"] != pytest.approx(_direct_psnr(folder / "model.pt", ema_workspace), abs=1e-4)
    if which == "ema_best":
        log = pd.read_csv(folder / "train_log.csv")
        assert row["best_step"] == log.loc[log["ema_holdout_psnr"].idxmax(), "step"]


def test_switching_to_ema_weights_rescores_without_training(ema_workspace, monkeypatch):
    _run(ema_workspace, "a", "eval.weights=last")
    import bench.harness.train as train

    monkeypatch.setattr(train, "train_model", lambda *a, **k: pytest.fail("rescoring must not train"))
    row = _run(ema_workspace, "a", "eval.weights=ema_best").results.iloc[0]
    folder = ema_workspace / "a" / "e" / "conv" / "seed0"
    log = pd.read_csv(folder / "train_log.csv")
    assert row["eval_weights"] == "ema_best"
    assert row["best_step"] == log.loc[log["ema_holdout_psnr"].idxmax(), "step"]
    assert row["psnr"] == pytest.approx(_direct_psnr(folder / "ema_best.pt", ema_workspace), abs=1e-4)


# --- TensorBoard -----------------------------------------------------------------------------------------------

def _scalars(folder: Path) -> dict[str, dict[int, float]]:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}, events


def test_tensorboard_scalars_equal_the_training_log_and_change_no_weight(tmp_path):
    pytest.importorskip("tensorboard")
    from bench.harness.tensorboard_log import TensorBoardLog

    validation = Validation(_Pairs(4), every=2, quantize=False)
    board = TensorBoardLog(tmp_path / "tb")
    logged, result = _train(_config(steps=4, ema=0.5), validation=validation, board=board)
    board.close()
    plain, _ = _train(_config(steps=4, ema=0.5), validation=Validation(_Pairs(4), every=2, quantize=False))
    assert all(torch.equal(plain.state_dict()[k], v) for k, v in logged.state_dict().items())
    scalars, events = _scalars(tmp_path / "tb")
    frame = pd.read_csv(pd.io.common.StringIO(result.log.to_csv(index=False)))  # as train_log.csv holds it
    for column in frame.columns.drop("step"):
        expected = {int(s): float(v) for s, v in zip(frame["step"], frame[column]) if not math.isnan(v)}
        got = scalars[f"train_log/{column}"]
        assert got.keys() == expected.keys(), column
        assert all(got[s] == pytest.approx(v, rel=1e-6, abs=1e-9) for s, v in expected.items()), column
    assert set(scalars["time/step_seconds"]) == {2, 3, 4}
    assert "holdout/input_prediction_target" in events.Tags()["images"]


def test_tensorboard_without_the_package_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import importlib.util

    from bench.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else
                        real(name, *a))
    (tmp_path / "c.yaml").write_text("experiments: [{name: a, model: identity}]\ntrain: {tensorboard: true}\n")
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs")]) == 2
    assert '.[tensorboard]' in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_run_with_tensorboard_writes_event_files_per_unit_and_hparams(ema_workspace):
    pytest.importorskip("tensorboard")
    _run(ema_workspace, "a", "train.tensorboard=true")
    folder = ema_workspace / "a" / "e" / "conv" / "seed0" / "tensorboard"
    scalars, _ = _scalars(folder)
    log = pd.read_csv(folder.parent / "train_log.csv")
    assert sorted(scalars["train_log/loss"]) == log["step"].tolist()
    hparams, _ = _scalars(folder / "hparams")
    results = pd.read_csv(ema_workspace / "a" / "e" / "results.csv")
    assert hparams["final/val_psnr"][0] == pytest.approx(results["psnr"].iloc[0], rel=1e-6)


# --- fingerprints ----------------------------------------------------------------------------------------------

def test_new_keys_at_their_defaults_and_tensorboard_stay_out_of_the_fingerprint():
    from bench.harness.fingerprints import experiment_fingerprint

    base = parse_config("experiments: [{name: a, model: identity}]\n")
    exp = base.experiments[0]
    same = [parse_config("experiments: [{name: a, model: identity}]\ntrain: {" + t + "}\n")
            for t in ("accumulate: 1", "ema_decay: null", "tensorboard: true")]
    other = [parse_config("experiments: [{name: a, model: identity}]\ntrain: {" + t + "}\n")
             for t in ("accumulate: 3", "ema_decay: 0.999")]
    reference = experiment_fingerprint(base, exp, 0)
    assert all(experiment_fingerprint(c, exp, 0) == reference for c in same)
    assert all(experiment_fingerprint(c, exp, 0) != reference for c in other)
