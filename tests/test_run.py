"""`bench run` end to end on tiny synthetic data: a complete run folder, results that mean what they say."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
import yaml

from bench.cli import main
from bench.harness.run import RESULT_COLUMNS


def tiny_config(tmp_path, experiments, **data):
    cfg = {
        "name": "tiny",
        "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 32,
                 "synthetic": {"train": 3, "val": 2, "test": 2, "seed": 0, "size": 32}, **data},
        "train": {"steps": 2, "batch_size": 2},
        "eval": {"timing_runs": 1, "timing_warmup": 0},
        "experiments": experiments,
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_step_mbnet_run_writes_a_complete_run_folder(tmp_path, capsys):
    cfg = tiny_config(tmp_path, [{"name": "mbnet", "model": "mbnet", "extra_data": True, "residual": True},
                                 {"name": "identity", "model": "identity"}])
    code = main(["run", str(cfg), "--out", str(tmp_path / "runs"), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    run_dir = tmp_path / "runs" / "tiny"
    results = pd.read_csv(run_dir / "results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert len(results) == 4 and set(results["split"]) == {"val", "test"}
    row = results[(results.experiment == "mbnet") & (results.split == "val")].iloc[0]
    assert row.status == "done" and row.steps == 2 and row.model == "mbnet"
    assert row.params_m == pytest.approx(153.19, abs=0.01)
    assert row.gflops == pytest.approx(57.03 / 64, rel=0.02)  # 32x32 pads to 32: FLOPs scale with pixels
    assert 0 < row.ssim <= 1 and math.isfinite(row.psnr) and row.time_per_image_s > 0
    assert math.isnan(row.lpips) and math.isnan(row.mps), "no AlexNet weights here: LPIPS must be missing"
    assert "random init" in row.weights and row.perceptual_loss.startswith("dropped")
    assert row.data_source == "synthetic" and row.extra_data == "extra_input,mirror"
    ident = results[(results.experiment == "identity") & (results.split == "val")].iloc[0]
    assert ident.steps == 0 and ident.params_m == 0
    meta = json.loads((run_dir / "results.json").read_text())
    assert "mps" in meta["metric_conventions"] and meta["data"]["source"] == "synthetic"
    exp_dir = run_dir / "mbnet" / "seed0"
    log = pd.read_csv(exp_dir / "train_log.csv")
    assert list(log["step"]) == [1, 2] and log["loss"].notna().all()
    per_image = pd.read_csv(exp_dir / "metrics_val.csv")
    assert len(per_image) == 2 and per_image["psnr"].mean() == pytest.approx(row.psnr)
    assert sorted(p.name for p in (exp_dir / "predictions" / "val").iterdir()) == list(per_image["scene_id"] + ".png")
    state = torch.load(exp_dir / "model.pt")
    assert any(k.startswith("adapter.rgb_encoder.") for k in state)
    assert yaml.safe_load((exp_dir / "experiment.yaml").read_text())["experiment"]["residual"] is True
    assert (run_dir / "config.yaml").exists() and (run_dir / "data.json").exists()


def test_identity_scores_equal_input_vs_target_psnr(tmp_path, capsys):
    """The identity row is the input image itself: its PSNR is computable from the files directly."""
    from bench.harness.config import load_config
    from bench.harness.data import build_split, prepare_data_root
    from bench.harness.metrics import psnr

    cfg_path = tiny_config(tmp_path, [{"name": "identity", "model": "identity"}])
    assert main(["run", str(cfg_path), "--out", str(tmp_path / "runs"), "--no-progress"]) == 0
    cfg = load_config(cfg_path)
    val = build_split(cfg.data, prepare_data_root(cfg.data, progress=False), "val")
    expected = sum(float(psnr(s["rgb"][None], s["target"][None])) for s in (val[i] for i in range(len(val)))) / len(val)
    results = pd.read_csv(tmp_path / "runs" / "tiny" / "results.csv")
    assert results[results.split == "val"].psnr.iloc[0] == pytest.approx(expected, rel=1e-5)


def test_residual_switch():
    from bench.harness.modeling import RelightingModel

    class Minus(torch.nn.Module):
        def forward(self, rgb, depth):
            return -2 * rgb

    rgb = torch.rand(1, 3, 4, 4)
    assert torch.equal(RelightingModel(Minus(), residual=False)(rgb, rgb[:, :1]), -2 * rgb)
    assert torch.equal(RelightingModel(Minus(), residual=True)(rgb, rgb[:, :1]), torch.relu(-rgb))
