"""Validation during training: held-out scenes, the held-out log, best.pt, eval.weights, and resume keeping the best."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from bench.harness.config import parse_config
from datasets.holdout import held_out_scenes, holdout_count, holdout_split, without_scenes
from datasets.pairs import PairSpec
from datasets.dataset import RelightingDataset
from relight_base.errors import ConfigError
from tests.data_helpers import one_conv_plugin

STEPS = 8


def _pair(scene: str, origin: str) -> PairSpec:
    return PairSpec(scene, origin, Path(f"{scene}_{origin}.png"), Path(f"{scene}.npy"), Path(f"{scene}_t.png"),
                    origin == "mirror", "6500_N", "4500_E")


def test_holdout_count_defaults_and_refuses_to_hold_out_everything():
    assert holdout_count(None, validating=False, scenes=24) == 0
    assert holdout_count(None, validating=True, scenes=24) == 3  # 10 % of 24 is 2.4, rounded up
    assert holdout_count(None, validating=True, scenes=5) == 1  # at least one
    assert holdout_count(4, validating=False, scenes=24) == 4  # an explicit count holds out even without validation
    with pytest.raises(ConfigError, match="train.holdout: holding out 3 of the 3 training scenes"):
        holdout_count(3, validating=True, scenes=3)


def test_held_out_scenes_are_spread_over_the_sorted_ids_and_independent_of_order():
    ids = [f"Image{i:03d}" for i in range(10)]
    assert held_out_scenes(ids, 2) == ["Image002", "Image007"]  # the middles of 0-4 and 5-9
    assert held_out_scenes(list(reversed(ids)) + ids, 2) == ["Image002", "Image007"]
    assert held_out_scenes(ids, 0) == []
    assert len(set(held_out_scenes(ids, 10))) == 10


def test_held_out_scenes_leave_training_with_every_origin_and_validate_on_plain_pairs_only():
    pairs = [_pair(s, o) for s in ("A", "B", "C") for o in ("baseline", "extra_input", "mirror")]
    train = RelightingDataset(pairs, 16, split="train")
    rest = without_scenes(train, ["B"])
    assert [(p.scene_id, p.origin) for p in rest.pairs] == [(s, o) for s in ("A", "C")
                                                            for o in ("baseline", "extra_input", "mirror")]
    held = holdout_split(train, ["B"])
    assert [(p.scene_id, p.origin) for p in held.pairs] == [("B", "baseline")]
    assert held.split == "holdout"


def test_held_out_scene_ids_leave_every_training_split_and_are_never_reported(tmp_path):
    """A prepared run with plain and extra-data experiments: the held-out ids, checked against every pair by id."""
    from bench.harness.prepare import HOLDOUT, prepare

    cfg = parse_config(yaml.safe_dump({
        "name": "h", "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                              "synthetic": {"train": 8, "val": 3, "test": 3, "seed": 0, "size": 16}},
        "train": {"val_every": 2, "holdout": 3},
        "experiments": [{"name": "plain", "model": "identity"}, {"name": "extra", "model": "identity", "extra_data": True},
                        {"name": "mirror", "model": "identity", "extra_data": ["mirror"]}]}))
    prepared = prepare(cfg, tmp_path / "runs", progress=False)
    held = {p.scene_id for p in prepared.splits[HOLDOUT].pairs}
    assert len(held) == 3 and {p.origin for p in prepared.splits[HOLDOUT].pairs} == {"baseline"}
    training = {key: ds for key, ds in prepared.splits.items() if key.startswith("train:")}
    assert set(training) == {"train:", "train:extra_input,mirror", "train:mirror"}
    for key, ds in training.items():
        origins = {p.origin for p in ds.pairs}
        assert origins == {"baseline", *key.removeprefix("train:").split(",")} - {""}, key  # every origin present
        assert held.isdisjoint(p.scene_id for p in ds.pairs), f"{key}: trains on a held-out scene"
    all_training = {p.scene_id for ds in training.values() for p in ds.pairs}
    assert len(all_training | held) == 8, "held-out scenes are training scenes, and only they left training"
    for split in ("val", "test"):
        assert held.isdisjoint(p.scene_id for p in prepared.splits[split].pairs), f"held-out scenes in {split}"


def test_best_weights_need_validation():
    with pytest.raises(ConfigError, match="eval.weights: best needs train.val_every > 0"):
        parse_config("experiments: [{name: a, model: identity}]\neval: {weights: best}\n")


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    """A one-conv residual net that learns for a few steps, then (lr 0.2) collapses: its best step is not its last."""
    (tmp_path / "val_plugin.py").write_text(one_conv_plugin("val_test_conv"))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = {"name": "v", "plugins": ["val_plugin"],
           "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                    "synthetic": {"train": 6, "val": 2, "test": 1, "seed": 0, "size": 16}},
           "train": {"steps": STEPS, "batch_size": 2, "lr": 0.2, "schedule": "constant", "val_every": 1,
                     "holdout": 2},
           "eval": {"timing_rounds": 1, "timing_warmup": 0, "splits": ["val"]},
           "experiments": [{"name": "conv", "model": "val_test_conv", "residual": True}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def _run(root: Path, out: str, *overrides: str):
    from bench.harness.config import load_config
    from bench.harness.run import run_benchmark

    return run_benchmark(load_config(root / "c.yaml", list(overrides)), root / out, progress=False)


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_best_pt_holds_the_weights_of_the_best_held_out_step_not_the_last(workspace):
    outcome = _run(workspace, "a")
    folder = workspace / "a" / "v" / "conv" / "seed0"
    log = pd.read_csv(folder / "train_log.csv")
    assert log["step"].tolist() == list(range(1, STEPS + 1))
    best = int(log.loc[log["holdout_psnr"].idxmax(), "step"])
    assert best != STEPS, "precondition: this setup's held-out PSNR must peak before the last step"
    row = outcome.results.iloc[0]
    assert (row["best_step"], row["eval_weights"]) == (best, "last")
    assert row["best_holdout"] == pytest.approx(log["holdout_psnr"].max())
    # Independently: train only ``best`` steps without validation (same held-out scenes, so the same data).
    _run(workspace, "b", f"train.steps={best}", "train.val_every=0")
    short = _state(workspace / "b" / "v" / "conv" / "seed0" / "model.pt")
    kept = _state(folder / "best.pt")
    assert all(torch.equal(kept[k], short[k]) for k in short)
    assert not all(torch.equal(kept[k], v) for k, v in _state(folder / "model.pt").items())


def test_eval_weights_best_rescores_with_best_pt_without_training(workspace, monkeypatch):
    _run(workspace, "a")
    best = int(pd.read_csv(workspace / "a" / "v" / "conv" / "seed0" / "train_log.csv")
               .pipe(lambda f: f.loc[f["holdout_psnr"].idxmax(), "step"]))
    short = _run(workspace, "b", f"train.steps={best}", "train.val_every=0").results.iloc[0]
    import bench.harness.train as train

    monkeypatch.setattr(train, "train_model", lambda *a, **k: pytest.fail("rescoring must not train"))
    rescored = _run(workspace, "a", "eval.weights=best").results.iloc[0]
    assert rescored["eval_weights"] == "best"
    assert rescored["psnr"] == pytest.approx(short["psnr"], abs=1e-9)
    last = pd.read_csv(workspace / "a" / "v" / "results.csv")
    assert set(last["eval_weights"]) == {"best"}


def test_holdout_scenes_are_never_trained_on_and_never_a_reported_split(workspace):
    _run(workspace, "a")
    import json

    data = json.loads((workspace / "a" / "v" / "data.json").read_text())
    train = data["splits"]["train:"]
    assert (train["scenes"], data["splits"]["holdout"]["scenes"]) == (4, 2)
    assert data["splits"]["val"]["scenes"] == 2


def test_a_resumed_run_keeps_the_best_so_far(workspace):
    """Interrupted after the best step and resumed from a checkpoint: same best.pt, same log, same best step."""
    full = _run(workspace, "a").results.iloc[0]
    folder = workspace / "a" / "v" / "conv" / "seed0"
    import bench.harness.train as train

    real_step = train._train_step
    calls = {"n": 0}

    def stop_after_six(run, sample, step):
        calls["n"] += 1
        if calls["n"] > 6:
            raise KeyboardInterrupt  # like a killed process, after the checkpoint of step 6
        return real_step(run, sample, step)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "_train_step", stop_after_six)
        with pytest.raises(KeyboardInterrupt):
            _run(workspace, "r", "train.checkpoint_every=2")
    assert (workspace / "r" / "v" / "conv" / "seed0" / "checkpoints" / "step_00000006.pt").is_file()
    resumed = _run(workspace, "r", "train.checkpoint_every=2").results.iloc[0]
    other = workspace / "r" / "v" / "conv" / "seed0"
    assert resumed["best_step"] == full["best_step"] and not math.isnan(resumed["best_step"])
    a, b = _state(folder / "best.pt"), _state(other / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    np.testing.assert_array_equal(pd.read_csv(folder / "train_log.csv")["holdout_psnr"],
                                  pd.read_csv(other / "train_log.csv")["holdout_psnr"])


def test_the_report_plots_held_out_psnr_and_says_which_weights_it_scored(workspace):
    from reports.render import render_report

    _run(workspace, "a", "eval.weights=best")
    page = render_report([workspace / "a" / "v"]).read_text()
    assert "Held-out PSNR during training" in page
    assert "best (best.pt, best held-out score): conv" in page
    assert "every 1 steps and at the last, PSNR/SSIM on 2 training scenes held out" in page
