"""`bench run` end to end on tiny synthetic data: a complete run folder, results that mean what they say."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from bench.cli import main
from relight_base.results import NAMES as RESULT_COLUMNS
from tests.data_helpers import one_conv_plugin

ONE_CONV_PLUGIN = one_conv_plugin("run_test_one_conv")


def tiny_config(tmp_path, experiments, plugins=(), **data):
    cfg = {
        "name": "tiny",
        "plugins": list(plugins),
        "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 32,
                 "synthetic": {"train": 3, "val": 2, "test": 2, "seed": 0, "size": 32}, **data},
        "train": {"steps": 2, "batch_size": 2},
        "eval": {"timing_rounds": 1, "timing_warmup": 0},
        "experiments": experiments,
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _png_psnr(a: Path, b: Path) -> float:
    """PSNR (data range 1) between two 8-bit PNGs' RGB channels, in dB."""
    with Image.open(a) as x, Image.open(b) as y:
        diff = np.asarray(x.convert("RGB"), np.float64) / 255 - np.asarray(y.convert("RGB"), np.float64) / 255
    return 10 * math.log10(1 / np.mean(diff**2))


def test_two_step_run_writes_a_complete_run_folder(tmp_path, monkeypatch, capsys):
    """A 2-step run of a one-conv plugin model and the identity: every file, numbers checked against the files."""
    (tmp_path / "run_test_plugin.py").write_text(ONE_CONV_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tiny_config(tmp_path, [{"name": "conv", "model": "run_test_one_conv", "extra_data": True, "residual": True},
                                 {"name": "identity", "model": "identity"}], plugins=["run_test_plugin"])
    code = main(["run", str(cfg), "--out", str(tmp_path / "runs"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    run_dir = tmp_path / "runs" / "tiny"
    results = pd.read_csv(run_dir / "results.csv")
    assert list(results.columns) == list(RESULT_COLUMNS)
    assert len(results) == 4 and set(results["split"]) == {"val", "test"}
    row = results[(results.experiment == "conv") & (results.split == "val")].iloc[0]
    assert row.status == "done" and row.steps == 2 and row.model == "run_test_one_conv"
    assert row.params_m == pytest.approx((4 * 3 * 9 + 3) / 1e6)
    assert row.gflops == pytest.approx(2 * (3 * 32 * 32) * (4 * 9) / 1e9)  # 1 multiply-add = 2 FLOPs, at 32x32
    assert 0 < row.ssim <= 1 and row.time_per_image_s > 0
    assert math.isnan(row.lpips) and math.isnan(row.mps), "no AlexNet weights here: LPIPS must be missing"
    assert row.perceptual_loss.startswith("dropped") and row.extra_data == "extra_input,mirror"
    assert row.data_source == "synthetic" and row.residual
    meta = json.loads((run_dir / "results.json").read_text())
    assert "mps" in meta["metric_conventions"] and meta["data"]["source"] == "synthetic"
    assert (run_dir / "config.yaml").exists() and (run_dir / "report.html").exists()
    data_root = Path(json.loads((run_dir / "data.json").read_text())["root"])

    exp_dir = run_dir / "conv" / "seed0"
    log = pd.read_csv(exp_dir / "train_log.csv")
    assert list(log["step"]) == [1, 2]
    # the trainer uses the default weights: 1 * Charbonnier + 1.1 * (-SSIM) (perceptual dropped, no VGG19 here)
    np.testing.assert_allclose(log["loss"], 1.0 * log["charbonnier"] + 1.1 * log["ssim"], rtol=1e-5)
    per_image = pd.read_csv(exp_dir / "metrics_val.csv")
    assert len(per_image) == 2 and per_image["psnr"].mean() == pytest.approx(row.psnr)
    predictions = exp_dir / "predictions" / "val"
    assert sorted(p.name for p in predictions.iterdir()) == sorted(per_image["scene_id"] + ".png")
    for scene, value in zip(per_image["scene_id"], per_image["psnr"]):  # the saved pictures are what was scored
        target = data_root / "track1_validation_gt" / f"{scene}.png"
        assert _png_psnr(predictions / f"{scene}.png", target) == pytest.approx(value, abs=0.05), scene
    assert set(torch.load(exp_dir / "model.pt")) == {"adapter.conv.weight", "adapter.conv.bias"}
    assert yaml.safe_load((exp_dir / "experiment.yaml").read_text())["experiment"]["residual"] is True

    # the identity row scores the input image itself against the target, computable from the files
    ident = results[(results.experiment == "identity") & (results.split == "val")].iloc[0]
    assert ident.steps == 0 and ident.params_m == 0
    scenes = sorted(p.stem for p in (data_root / "track1_validation").glob("*.png"))
    expected = np.mean([_png_psnr(data_root / "track1_validation" / f"{s}.png",
                                  data_root / "track1_validation_gt" / f"{s}.png") for s in scenes])
    assert len(scenes) == 2 and ident.psnr == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_two_step_mbnet_run(tmp_path, capsys):
    """MBNet itself end to end (about a minute on 2 CPU cores): its size and cost reach results.csv."""
    cfg = tiny_config(tmp_path, [{"name": "mbnet", "model": "mbnet", "extra_data": True, "residual": True}])
    code = main(["run", str(cfg), "--out", str(tmp_path / "runs"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    run_dir = tmp_path / "runs" / "tiny"
    row = pd.read_csv(run_dir / "results.csv").query("split == 'val'").iloc[0]
    assert row.status == "done" and row.steps == 2 and row.model == "mbnet"
    assert row.params_m == pytest.approx(153.19, abs=0.01)
    assert row.gflops == pytest.approx(57.03 / 64, rel=0.02)  # 32x32 pads to 32: FLOPs scale with pixels
    assert 0 < row.ssim <= 1 and math.isfinite(row.psnr)
    assert "random init" in row.weights
    log = pd.read_csv(run_dir / "mbnet" / "seed0" / "train_log.csv")
    assert list(log["step"]) == [1, 2] and log["loss"].notna().all()
    state = torch.load(run_dir / "mbnet" / "seed0" / "model.pt")
    assert any(k.startswith("adapter.rgb_encoder.") for k in state)


def _two_conv_config(tmp_path, monkeypatch, **eval_settings):
    """Three experiments (two of the one-conv plugin, the identity), two seeds, ``eval`` overrides."""
    (tmp_path / "run_test_plugin.py").write_text(ONE_CONV_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tiny_config(tmp_path, [{"name": "conv", "model": "run_test_one_conv"},
                                  {"name": "conv_res", "model": "run_test_one_conv", "residual": True},
                                  {"name": "identity", "model": "identity"}], plugins=["run_test_plugin"])
    cfg = yaml.safe_load(path.read_text())
    cfg["seeds"] = [0, 1]
    cfg["eval"].update(eval_settings)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(path: Path, tmp_path: Path, *overrides: str):
    from bench.harness.config import load_config
    from bench.harness.run import run_benchmark

    return run_benchmark(load_config(path, list(overrides)), tmp_path / "runs", progress=False)


def test_one_timing_phase_times_every_experiment_in_rotating_rounds(tmp_path, monkeypatch):
    """timing.csv holds rounds x models calls, each model in each position; results.csv's times are their summary."""
    path = _two_conv_config(tmp_path, monkeypatch, timing_rounds=3, timing_warmup=1, timing_size=24,
                            timing_threads=1)
    _run(path, tmp_path)
    run_dir = tmp_path / "runs" / "tiny"
    timing = pd.read_csv(run_dir / "timing.csv")
    meta = json.loads((run_dir / "timing.json").read_text())
    names = ["conv", "conv_res", "identity"]
    assert len(timing) == 3 * 3 and meta["timed"] == names and meta["skipped"] == {}
    assert (meta["rounds"], meta["warmup"], meta["size"], meta["threads"], meta["order"]) == (3, 1, 24, 1, "rotating")
    assert set(timing["phase"]) == {meta["phase"]} and set(timing["seed"]) == {0}, "the first seed is timed"
    for name in names:
        assert sorted(timing.loc[timing.experiment == name, "position"]) == [0, 1, 2]
    for _, one_round in timing.groupby("round"):
        assert sorted(one_round["experiment"]) == names
    results = pd.read_csv(run_dir / "results.csv")
    assert len(results) == 3 * 2 * 2 and set(results["timing_phase"]) == {meta["phase"]}
    for name in names:
        seconds = timing.loc[timing.experiment == name, "seconds"].to_numpy()
        rows = results[results.experiment == name]
        assert len(rows) == 4, "both seeds and both splits carry the experiment's timing"
        np.testing.assert_allclose(rows["time_per_image_s"], np.median(seconds), rtol=1e-9)
        np.testing.assert_allclose(rows["time_p90_s"], np.percentile(seconds, 90), rtol=1e-9)
        np.testing.assert_allclose(rows["time_q1_s"], np.percentile(seconds, 25), rtol=1e-9)
        np.testing.assert_allclose(rows["time_q3_s"], np.percentile(seconds, 75), rtol=1e-9)
    conv = results[results.experiment == "conv"].iloc[0]
    assert conv.gflops == pytest.approx(2 * (3 * 24 * 24) * (4 * 9) / 1e9), "GFLOPs at the timing size"
    assert (conv.timing_size, conv.timing_threads) == (24, 1)
    assert meta["phase"] in json.loads((run_dir / "results.json").read_text())["timing"]


def _refuse_training(monkeypatch):
    import bench.harness.train as train

    def no_training(*args, **kwargs):
        raise AssertionError("a rerun with other scoring or timing settings must not train")
    monkeypatch.setattr(train, "train_model", no_training)


def test_changing_scoring_or_timing_settings_trains_nothing(tmp_path, monkeypatch, caplog):
    """eval.ssim=uniform7 rescores every model.pt (SSIM changes, PSNR stays); other timing rounds only re-time."""
    path = _two_conv_config(tmp_path, monkeypatch, timing_rounds=2)
    _run(path, tmp_path)
    run_dir = tmp_path / "runs" / "tiny"
    first = pd.read_csv(run_dir / "results.csv")
    first_phase = json.loads((run_dir / "timing.json").read_text())["phase"]
    weights = (run_dir / "conv" / "seed1" / "model.pt").read_bytes()
    _refuse_training(monkeypatch)

    with caplog.at_level("INFO", logger="bench.harness.run"):
        _run(path, tmp_path, "eval.ssim=uniform7")
    assert caplog.text.count("rescoring its model.pt (no training)") == 3 * 2
    rescored = pd.read_csv(run_dir / "results.csv")
    np.testing.assert_allclose(rescored["psnr"], first["psnr"], rtol=1e-6)
    assert (np.abs(rescored["ssim"] - first["ssim"]) > 1e-4).all(), "the SSIM convention changed every value"
    per_image = pd.read_csv(run_dir / "conv" / "seed1" / "metrics_val.csv")
    row = rescored.query("experiment == 'conv' and seed == 1 and split == 'val'").iloc[0]
    assert per_image["ssim"].mean() == pytest.approx(row.ssim) and row.steps == 2
    assert "uniform7" in json.loads((run_dir / "results.json").read_text())["metric_conventions"]["mps"]
    assert (run_dir / "conv" / "seed1" / "model.pt").read_bytes() == weights

    caplog.clear()
    with caplog.at_level("INFO", logger="bench.harness.run"):
        _run(path, tmp_path, "eval.ssim=uniform7", "eval.timing_rounds=4")
    assert caplog.text.count("reusing its results") == 3 * 2 and "rescoring" not in caplog.text
    retimed = pd.read_csv(run_dir / "results.csv")
    pd.testing.assert_series_equal(retimed["ssim"], rescored["ssim"])
    assert len(pd.read_csv(run_dir / "timing.csv")) == 4 * 3
    assert set(retimed["timing_phase"]) == {json.loads((run_dir / "timing.json").read_text())["phase"]} != {first_phase}
