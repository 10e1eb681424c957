"""Contained failures: a busy run folder, out-of-memory during training."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.harness.config import parse_config
from bench.harness.distributed import DistContext
from bench.harness.lock import RunFolderBusy, UnitLock
from bench.harness.train import TrainingOutOfMemory, train_model

REPO = Path(__file__).resolve().parent.parent

HOLDER = """
import sys, time
from bench.harness.lock import UnitLock
lock = UnitLock(sys.argv[1]); lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_second_writer_of_a_unit_is_refused_and_a_killed_holder_frees_it(tmp_path, monkeypatch):
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=f"pid {proc.pid}"):
            UnitLock(tmp_path).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (tmp_path / ".unit.lock").exists()  # a killed holder leaves its file behind ...
    with UnitLock(tmp_path):  # ... which is taken over, since its pid is gone
        assert f'"pid": {os.getpid()}' in (tmp_path / ".unit.lock").read_text()
    assert not (tmp_path / ".unit.lock").exists()  # released: removed
    with UnitLock(tmp_path):  # and a released lock can be taken again
        pass


class _OOMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, rgb, depth):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


class _Pairs(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"rgb": torch.rand(3, 16, 16), "depth": torch.rand(1, 16, 16), "target": torch.rand(3, 16, 16),
                "scene_id": f"Image{i:03d}", "origin": "baseline", "index": i}


def test_out_of_memory_names_batch_size_and_image_size():
    cfg = parse_config("experiments: [{name: a, model: identity}]\ntrain: {steps: 1, batch_size: 2}\ndata: {size: 16}\nloss: {perceptual: 0}")
    with pytest.raises(TrainingOutOfMemory) as err:
        train_model(_OOMNet(), _Pairs(), cfg, seed=0, ctx=DistContext(), progress=False)
    msg = str(err.value)
    assert "train.batch_size=2" in msg and "data.size=16" in msg and "step 1" in msg and "Lower train.batch_size" in msg


def test_bench_run_refuses_a_folder_in_use(tmp_path, capsys):
    import yaml

    from bench.cli import main

    cfg = {"name": "busy", "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                                    "synthetic": {"train": 1, "val": 1, "test": 1, "size": 16}},
           "experiments": [{"name": "identity", "model": "identity"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run_dir = tmp_path / "runs" / "busy"
    run_dir.mkdir(parents=True)
    with UnitLock(run_dir / "identity" / "seed0"):
        assert main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs"), "--no-progress"]) == 2
    assert "is in use by another `bench run`" in capsys.readouterr().err
    assert not (run_dir / "results.csv").exists()
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs"), "--no-progress"]) == 0


NAN_PLUGIN = '''
import torch
from torch import nn
from bench import register_model


class NaNAfterFirstStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 1)
        self.calls = 0

    def forward(self, rgb, depth):
        out = self.conv(torch.cat([rgb, depth], dim=1))
        if self.training:
            self.calls += 1
            if self.calls >= 2:
                out = out * float("nan")
        return out


@register_model("nan_after_first_step")
def nan_after_first_step() -> nn.Module:
    """Produces NaN from its second training step (test plugin)."""
    return NaNAfterFirstStep()
'''


def test_non_finite_loss_fails_one_experiment_and_the_others_run(tmp_path, capsys, monkeypatch):
    import pandas as pd
    import yaml

    from bench.cli import main

    (tmp_path / "nan_plugin_mod.py").write_text(NAN_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = {"name": "nan", "plugins": ["nan_plugin_mod"],
           "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                    "synthetic": {"train": 2, "val": 1, "test": 1, "size": 16}},
           "train": {"steps": 3, "batch_size": 2, "checkpoint_every": 1}, "loss": {"perceptual": 0},
           "eval": {"timing_rounds": 1, "timing_warmup": 0},
           "experiments": [{"name": "broken", "model": "nan_after_first_step"}, {"name": "identity", "model": "identity"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    code = main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3 and "failed: broken (seed 0)" in err
    results = pd.read_csv(tmp_path / "runs" / "nan" / "results.csv")
    broken = results[results.experiment == "broken"].iloc[0]
    assert broken.status == "failed" and "non-finite loss at step 2" in broken.message and "charbonnier=" in broken.message
    assert (results[results.experiment == "identity"].status == "done").all()
    exp_dir = tmp_path / "runs" / "nan" / "broken" / "seed0"
    assert (exp_dir / "checkpoints" / "step_00000001.pt").exists(), "the last good checkpoint is kept"
    assert not (exp_dir / "model.pt").exists()
    assert "Failed experiments (no numbers): broken." in (tmp_path / "runs" / "nan" / "report.html").read_text()
