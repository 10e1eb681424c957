"""`bench run` end to end on tiny synthetic data: a complete run folder, results that mean what they say."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from bench.cli import main
from bench.harness.run import RESULT_COLUMNS

ONE_CONV_PLUGIN = textwrap.dedent('''
    """A one-layer fusion net from outside the package (test plugin)."""
    import torch
    from torch import nn
    from bench import register_model


    class OneConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 3, 3, padding=1)

        def forward(self, rgb, depth):
            return self.conv(torch.cat([rgb, depth], dim=1))


    @register_model("run_test_one_conv")
    def run_test_one_conv() -> nn.Module:
        """A 3x3 convolution on RGB + depth (test plugin)."""
        return OneConv()
''')


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
    assert list(results.columns) == RESULT_COLUMNS
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
