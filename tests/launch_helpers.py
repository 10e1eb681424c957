"""What the launcher tests share: a plugin with fast (and deliberately slow) models, tiny configs, references."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
PLUGIN = "launch_test_plugin"
METRICS = ["psnr", "ssim"]

PLUGIN_SOURCE = '''"""Launcher-test models: a 3x3 convolution, and the same one sleeping in every training forward."""
import os
import time

import torch
from torch import nn
from bench import register_model


class Conv(nn.Module):
    def __init__(self, delay=0.0):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 3, padding=1)
        self.delay = delay

    def forward(self, rgb, depth):
        if self.training and self.delay:
            time.sleep(self.delay)  # a slow unit, so a test can interrupt it mid-training
        return self.conv(torch.cat([rgb, depth], dim=1))


@register_model("launch_conv")
def launch_conv() -> nn.Module:
    """A 3x3 convolution on RGB + depth (test plugin)."""
    return Conv()


@register_model("launch_slow_conv")
def launch_slow_conv() -> nn.Module:
    """launch_conv, sleeping LAUNCH_TEST_DELAY seconds (default 0.2) in every training forward (test plugin)."""
    return Conv(float(os.environ.get("LAUNCH_TEST_DELAY", "0.2")))
'''


def install_plugin(tmp_path: Path, monkeypatch) -> None:
    """Write the plugin into ``tmp_path`` and put it on the path of this process and of every child or job."""
    (tmp_path / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    paths = [str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


def write_config(tmp_path: Path, experiments: list[dict], name: str = "launch", **train) -> Path:
    """A tiny synthetic benchmark (16 px, a few steps) using the plugin's models."""
    cfg = {
        "name": name,
        "plugins": [PLUGIN],
        "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                 "synthetic": {"train": 4, "val": 2, "test": 2, "seed": 0, "size": 16}},
        "train": {"steps": 3, "batch_size": 2, "lr": 1e-2, **train},
        "loss": {"perceptual": 0.0},
        "eval": {"timing_rounds": 2, "timing_warmup": 1},
        "experiments": experiments,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


THREE_EXPERIMENTS = [{"name": "identity", "model": "identity"},
                     {"name": "conv", "model": "launch_conv"},
                     {"name": "conv_extra", "model": "launch_conv", "extra_data": True, "residual": True}]


def run_inline_single_thread(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``bench run`` inline in a child process with one CPU thread, as each launched unit trains here."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "bench", "run", str(config), "--out", str(out), "--no-progress",
                           *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def result_metrics(run_dir: Path) -> pd.DataFrame:
    """``results.csv``'s identifying columns and metrics, in a fixed order."""
    frame = pd.read_csv(run_dir / "results.csv")
    return frame[["experiment", "seed", "split", "status", *METRICS]].sort_values(
        ["experiment", "seed", "split"]).reset_index(drop=True)
