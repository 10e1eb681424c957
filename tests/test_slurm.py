"""The Slurm launcher on a real Slurm (marked `slurm`; CI starts one with scripts/local_slurm.sh).

Run them with ``python -m pytest -m slurm`` where ``sinfo``/``sbatch``/``sacct`` reach a cluster whose default
partition can run 2 one-CPU jobs at once.  Without Slurm they skip and say why; with ``CI=true`` they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.cli import main
from bench.harness import unit_state
from bench.harness.config import load_config
from bench.harness.lock import RunFolderBusy
from bench.launch.coordinator import launch_run
from bench.launch.jobs import ACTIVE_STATES, slurm_states
from bench.launch.status import newest_checkpoint_step
from tests.launch_helpers import THREE_EXPERIMENTS, install_plugin, result_metrics, run_inline_single_thread, write_config

pytestmark = pytest.mark.slurm
QUICK = ["--set", "launcher.poll_s=1", "--set", "launcher.slurm.time_min=10", "--set", "launcher.slurm.gpus_per_job=0",
         "--set", "launcher.slurm.mem_gb=2"]


def _slurm_problem() -> str | None:
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed (pip install -e \".[slurm]\")"
    for command in ("sinfo", "sbatch", "sacct", "scontrol"):
        if shutil.which(command) is None:
            return f"{command} is not on PATH"
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not any(s.strip("*") in ("idle", "mixed") for s in out.stdout.split()):
        return f"no idle Slurm node (sinfo: {out.stdout.strip() or out.stderr.strip()})"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    problem = _slurm_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the slurm tests need a running Slurm in CI: {problem}")
        pytest.skip(f"no usable Slurm ({problem}); start the local one with `sudo scripts/local_slurm.sh start`")


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.5)


def _job_ended(job: str) -> bool:
    return slurm_states([job]).get(job, "PENDING") not in ACTIVE_STATES


def _unit_job(unit_dir: Path) -> str:
    return unit_state.read_state(unit_dir)["job"]


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_job_array_gives_the_inline_metrics(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch)
    config = write_config(tmp_path, THREE_EXPERIMENTS)
    inline = run_inline_single_thread(config, tmp_path / "inline")
    assert inline.returncode == 0, inline.stderr[-3000:]
    assert main(["run", str(config), "--out", str(tmp_path / "slurm"), "--launcher", "slurm", "--no-progress",
                 *QUICK]) == 0
    out = capsys.readouterr().out
    assert "submitted job array" in out and "identity s0 -> " in out
    run_dir = tmp_path / "slurm" / "launch"
    got, reference = result_metrics(run_dir), result_metrics(tmp_path / "inline" / "launch")
    assert list(got.status) == ["done"] * 6
    pd.testing.assert_frame_equal(got, reference, check_exact=False, atol=1e-4, rtol=0)
    assert (run_dir / "report.html").is_file()
    assert {unit_state.read_state(run_dir / e["name"] / "seed0")["state"] for e in THREE_EXPERIMENTS} == {"done"}


def test_requeued_unit_resumes_and_ends_bitwise_equal(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch)
    monkeypatch.setenv("LAUNCH_TEST_DELAY", "0.3")
    config = write_config(tmp_path, [{"name": "slow", "model": "launch_slow_conv"}], steps=60, checkpoint_every=5)
    reference = run_inline_single_thread(config, tmp_path / "inline")
    assert reference.returncode == 0, reference.stderr[-3000:]
    cfg = load_config(config, ["launcher.type=slurm", *QUICK[1::2]])
    launched = launch_run(cfg, tmp_path / "slurm", no_wait=True, progress=False)
    unit_dir = tmp_path / "slurm" / "launch" / "slow" / "seed0"
    job = _unit_job(unit_dir)
    _wait_for(lambda: int(newest_checkpoint_step(unit_dir) or 0) >= 10, 180, "a checkpoint at step 10")
    subprocess.run(["scontrol", "requeue", job], check=True, timeout=60)
    _wait_for(lambda: _job_ended(launched.jobs[-1]), 300, "the final step")
    history = subprocess.run(["sacct", "-D", "-n", "-X", "-P", "-o", "State", "-j", job], capture_output=True,
                             text=True, timeout=60).stdout
    assert "REQUEUED" in history, history
    record = unit_state.read_state(unit_dir)
    assert record["state"] == "done"
    assert "slow s0: resuming from step" in Path(record["log"]).read_text()  # not a second run from scratch
    got, expected = _weights(unit_dir / "model.pt"), _weights(tmp_path / "inline" / "launch" / "slow" / "seed0" / "model.pt")
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    assert list(result_metrics(tmp_path / "slurm" / "launch").status) == ["done", "done"]


def test_cancelled_unit_is_reported_and_a_rerun_completes_only_it(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch)
    monkeypatch.setenv("LAUNCH_TEST_DELAY", "0.3")
    config = write_config(tmp_path, [{"name": "identity", "model": "identity"},
                                     {"name": "slow", "model": "launch_slow_conv"}], steps=400, checkpoint_every=20)
    cfg = load_config(config, ["launcher.type=slurm", *QUICK[1::2]])
    launched = launch_run(cfg, tmp_path / "slurm", no_wait=True, progress=False)
    with pytest.raises(RunFolderBusy, match="slow s0: Slurm job"):  # never the same unit in two jobs at once
        launch_run(cfg, tmp_path / "slurm", no_wait=True, progress=False)
    run_dir = tmp_path / "slurm" / "launch"
    slow = run_dir / "slow" / "seed0"
    _wait_for(lambda: unit_state.read_state(slow)["state"] == "running", 180, "the slow unit to start")
    subprocess.run(["scancel", _unit_job(slow)], check=True, timeout=60)
    _wait_for(lambda: _job_ended(launched.jobs[-1]), 300, "the final step")
    frame = pd.read_csv(run_dir / "results.csv")
    assert list(frame[frame.experiment == "slow"].status) == ["cancelled", "cancelled"]
    assert frame[frame.experiment == "slow"].psnr.isna().all()
    assert list(frame[frame.experiment == "identity"].status) == ["done", "done"]
    assert "cancelled" in (run_dir / "report.html").read_text()
    capsys.readouterr()
    monkeypatch.setenv("LAUNCH_TEST_DELAY", "0")  # not part of the config: the rerun resumes the same unit, faster
    assert main(["run", str(config), "--out", str(tmp_path / "slurm"), "--launcher", "slurm", "--no-progress",
                 *QUICK]) == 0
    assert "1 unit(s) to run, 1 already finished" in capsys.readouterr().out
    assert list(result_metrics(run_dir).status) == ["done"] * 4


def test_two_task_unit_trains_with_ddp_over_gloo(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch)
    config = write_config(tmp_path, [{"name": "conv", "model": "launch_conv"}], steps=4)
    reference = run_inline_single_thread(config, tmp_path / "inline")
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert main(["run", str(config), "--out", str(tmp_path / "slurm"), "--launcher", "slurm", "--no-progress",
                 *QUICK, "--set", "launcher.slurm.tasks_per_job=2"]) == 0
    unit_dir = tmp_path / "slurm" / "launch" / "conv" / "seed0"
    record = unit_state.read_state(unit_dir)
    assert record["state"] == "done"
    assert "joined gloo process group: rank 0 of 2" in Path(record["log"]).read_text()
    got, expected = _weights(unit_dir / "model.pt"), _weights(tmp_path / "inline" / "launch" / "conv" / "seed0" / "model.pt")
    assert all(torch.allclose(got[k], expected[k], atol=1e-5) for k in got), "2 ranks x 1 image = 1 rank x 2 images"


def test_tuning_on_slurm_proposes_and_chooses_as_inline(tmp_path, monkeypatch):
    """`bench tune --launcher slurm`: one job array per round, the same trials (QMC points do not depend on the
    scores) and the same held-out scores, within float noise of one CPU thread, as an inline tuning."""
    pytest.importorskip("optuna")
    import yaml

    install_plugin(tmp_path, monkeypatch)
    config = write_config(tmp_path, [{"name": "conv", "model": "launch_conv"}, {"name": "identity", "model": "identity"}])
    tune = ["--set", "tune.trials=2", "--set", "tune.steps=2", "--set", "tune.holdout=1", "--set", "tune.val_every=1",
            "--set", "tune.parallel=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    inline = subprocess.run([sys.executable, "-m", "bench", "tune", str(config), "--out", str(tmp_path / "inline"),
                             "--no-progress", *tune], capture_output=True, text=True, env=env, timeout=600)
    assert inline.returncode == 0, inline.stderr[-3000:]
    assert main(["tune", str(config), "--out", str(tmp_path / "slurm"), "--launcher", "slurm", "--no-progress",
                 *tune, *QUICK]) == 0
    a, b = (yaml.safe_load((tmp_path / out / "launch-tune" / "tuned.yaml").read_text())["experiments"]["conv"]
            for out in ("inline", "slurm"))
    assert [t["lr"] for t in a["trials"]] == [t["lr"] for t in b["trials"]]
    assert [t["held_out"] for t in a["trials"]] == pytest.approx([t["held_out"] for t in b["trials"]], rel=1e-4)
    assert a["budget"] == b["budget"]
    for number in (0, 1):
        job = _unit_job(tmp_path / "slurm" / "launch-tune" / f"conv-t{number:03d}" / "seed1000")
        assert job and "_" in job, "each trial ran as an element of a Slurm job array"
