"""Kill a real `bench run` with SIGKILL mid-training, rerun the same command: the final weights and metrics
are bitwise identical to an uninterrupted run (its net uses dropout, so the generator states must be restored too).
Also: finished experiments are reused, a changed config starts over, --restart forces it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # real `bench run` subprocesses, killed and rerun: about a minute

SLOW_PLUGIN = textwrap.dedent('''
    """A tiny fusion net whose forward sleeps, so a test can kill training between steps; its dropout draws from
    torch's generator every step, so only a resume that restores the generator state matches."""
    import time
    import torch
    from torch import nn
    from bench import register_model


    class SlowFusion(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.3),
                                      nn.Conv2d(8, 3, 3, padding=1))

        def forward(self, rgb, depth):
            if self.training:
                time.sleep(0.15)
            return self.body(torch.cat([rgb, depth], dim=1))


    @register_model("slow_fusion")
    def slow_fusion() -> nn.Module:
        """Tiny conv net that sleeps in training (resume test)."""
        return SlowFusion()
''')

STEPS = 8


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    (root / "slow_plugin.py").write_text(SLOW_PLUGIN)
    cfg = {"name": "resume", "plugins": ["slow_plugin"],
           "data": {"source": "synthetic", "root": str(root / "data"), "size": 16,
                    "synthetic": {"train": 3, "val": 2, "test": 1, "size": 16}},
           "train": {"steps": STEPS, "batch_size": 2, "checkpoint_every": 1, "keep_checkpoints": 2, "lr": 0.01},
           "eval": {"timing_rounds": 1, "timing_warmup": 0, "splits": ["val"]},
           "experiments": [{"name": "slow", "model": "slow_fusion", "extra_data": True, "residual": True}]}
    (root / "c.yaml").write_text(yaml.safe_dump(cfg))
    return root


def _bench(root: Path, out: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{root}", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "bench", "run", str(root / "c.yaml"), "--out", str(root / out),
                             "--no-progress", *extra], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]
    return output


def _kill_after_checkpoint(root: Path, out: str, step: int, *extra: str) -> None:
    ckpt = root / out / "resume" / "slow" / "seed0" / "checkpoints" / f"step_{step:08d}.pt"
    proc = _bench(root, out, *extra)
    deadline = time.monotonic() + 120
    while not ckpt.exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _weights(root: Path, out: str, name: str = "model.pt") -> dict[str, torch.Tensor]:
    return torch.load(root / out / "resume" / "slow" / "seed0" / name, weights_only=True)


def test_killed_runs_resume_bitwise_identically(workspace):
    _finish(_bench(workspace, "ref"))  # uninterrupted (this also generates the data once)
    _kill_after_checkpoint(workspace, "killed", 2)
    _kill_after_checkpoint(workspace, "killed", 5)
    output = _finish(_bench(workspace, "killed"))
    assert "resuming from step" in output
    ref, resumed = _weights(workspace, "ref"), _weights(workspace, "killed")
    assert ref.keys() == resumed.keys()
    assert all(torch.equal(ref[k], resumed[k]) for k in ref), "resumed weights differ from the uninterrupted run"
    metrics = ["psnr", "ssim", "steps"]
    a = pd.read_csv(workspace / "ref" / "resume" / "results.csv")[metrics]
    b = pd.read_csv(workspace / "killed" / "resume" / "results.csv")[metrics]
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    log_a = pd.read_csv(workspace / "ref" / "resume" / "slow" / "seed0" / "train_log.csv")
    log_b = pd.read_csv(workspace / "killed" / "resume" / "slow" / "seed0" / "train_log.csv")
    assert list(log_b["step"]) == list(range(1, STEPS + 1))
    assert (log_a["loss"].to_numpy() == log_b["loss"].to_numpy()).all()
    assert not list((workspace / "killed" / "resume" / "slow" / "seed0" / "checkpoints").glob("*.pt"))


def test_finished_experiment_is_reused_changed_config_reruns_restart_forces(workspace):
    if not (workspace / "ref" / "resume" / "results.csv").exists():
        _finish(_bench(workspace, "ref"))
    output = _finish(_bench(workspace, "ref"))
    assert "reusing its results" in output
    changed = _finish(_bench(workspace, "ref", "--set", "train.lr=0.02"))
    assert "config changed since it finished" in changed
    forced = _finish(_bench(workspace, "ref", "--set", "train.lr=0.02", "--restart"))
    assert "reusing its results" not in forced and "Traceback" not in forced


def test_killed_runs_with_ema_resume_bitwise_identically(workspace):
    """With train.ema_decay the moving average is in the checkpoints: ema.pt and ema_best.pt after two SIGKILLs
    equal the uninterrupted run's bit for bit, and so do the held-out scores of the average."""
    ema = ("--set", "train.ema_decay=0.8", "--set", "train.val_every=3", "--set", "train.holdout=1")
    _finish(_bench(workspace, "ema_ref", *ema))
    _kill_after_checkpoint(workspace, "ema_killed", 2, *ema)
    _kill_after_checkpoint(workspace, "ema_killed", 5, *ema)
    assert "resuming from step" in _finish(_bench(workspace, "ema_killed", *ema))
    for name in ("ema.pt", "ema_best.pt", "model.pt"):
        ref, resumed = _weights(workspace, "ema_ref", name), _weights(workspace, "ema_killed", name)
        assert ref.keys() == resumed.keys() and all(torch.equal(ref[k], resumed[k]) for k in ref), name
    logs = [pd.read_csv(workspace / out / "resume" / "slow" / "seed0" / "train_log.csv") for out in
            ("ema_ref", "ema_killed")]
    assert logs[0]["ema_holdout_psnr"].notna().sum() == 3  # steps 3, 6 and the last (8)
    pd.testing.assert_series_equal(logs[0]["ema_holdout_psnr"], logs[1]["ema_holdout_psnr"], check_exact=True)
