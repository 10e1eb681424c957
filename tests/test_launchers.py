"""Launchers without Slurm: the local launcher, many writers in one run folder, unit records and `bench status`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench.cli import main
from bench.harness import unit_state
from bench.harness.config import parse_config
from bench.harness.lock import RunFolderBusy, SharedFilesLock, UnitLock
from bench.launch.finish import _ending
from bench.launch.jobs import expand_array_id
from bench.launch.local import slot_environments
from tests.launch_helpers import (REPO, THREE_EXPERIMENTS, install_plugin, result_metrics, run_inline_single_thread,
                                  write_config)


@pytest.mark.slow  # unit processes of their own: about 5-20 s each
def test_local_launcher_with_two_jobs_gives_the_inline_metrics(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch)
    config = write_config(tmp_path, THREE_EXPERIMENTS)
    inline = run_inline_single_thread(config, tmp_path / "inline")
    assert inline.returncode == 0, inline.stderr[-3000:]
    import bench.launch.local as local_launcher

    given_plans = []

    class SpyProgress(local_launcher.UnitProgress):
        def __init__(self, units, stream=None, plans=None):
            given_plans.append(plans)
            super().__init__(units, stream, plans)

    monkeypatch.setattr(local_launcher, "UnitProgress", SpyProgress)
    assert main(["run", str(config), "--out", str(tmp_path / "local"), "--launcher", "local", "--jobs", "2",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    # the pool's progress lines estimate from the prepared run's plan, not from a reread of the run folder
    assert given_plans and given_plans[0] is not None
    assert sorted(p.folder.parent.name for p in given_plans[0]) == ["conv", "conv_extra", "identity"]
    assert "3 unit(s) to run" in out and "OMP_NUM_THREADS=" in out
    local, reference = result_metrics(tmp_path / "local" / "launch"), result_metrics(tmp_path / "inline" / "launch")
    assert list(local.status) == ["done"] * 6
    pd.testing.assert_frame_equal(local, reference, check_exact=False, atol=1e-4, rtol=0)
    run_dir = tmp_path / "local" / "launch"
    assert (run_dir / "report.html").is_file() and (run_dir / "timing.json").is_file()
    for exp in ("identity", "conv", "conv_extra"):
        assert unit_state.read_state(run_dir / exp / "seed0")["state"] == "done"
        assert (run_dir / exp / "seed0" / "unit.log").is_file()
    # a rerun starts nothing and ends with the same numbers
    assert main(["run", str(config), "--out", str(tmp_path / "local"), "--launcher", "local", "--no-progress"]) == 0
    assert "0 unit(s) to run, 3 already finished" in capsys.readouterr().out
    pd.testing.assert_frame_equal(result_metrics(run_dir), local)


COUNTER_WRITER = """
import sys
from pathlib import Path
from bench.harness.lock import SharedFilesLock
run_dir, n = Path(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    with SharedFilesLock(run_dir):
        path = run_dir / "counter.txt"
        value = int(path.read_text()) if path.exists() else 0
        path.write_text(str(value + 1))   # read-modify-write: loses updates unless the lock excludes others
"""


def test_shared_files_lock_excludes_concurrent_writers(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER_WRITER, str(tmp_path), "60"], cwd=REPO)
             for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert int((tmp_path / "counter.txt").read_text()) == 180
    assert not (tmp_path / ".shared.lock").exists()


@pytest.mark.slow  # unit processes of their own: about 5-20 s each
def test_two_units_write_one_run_folder_at_once(tmp_path, monkeypatch):
    """Two `bench unit` processes of one run start together; the shared files are rebuilt from both."""
    install_plugin(tmp_path, monkeypatch)
    config = write_config(tmp_path, THREE_EXPERIMENTS[1:])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "bench", "unit", str(config), "--out", str(tmp_path / "runs"),
                               "--experiment", name, "--seed", "0", "--no-progress"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name in ("conv", "conv_extra")]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    run_dir = tmp_path / "runs" / "launch"
    for name in ("conv", "conv_extra"):
        record = json.loads((run_dir / name / "seed0" / "result.json").read_text())
        assert [r["split"] for r in record["rows"]] == ["val", "test"]
        assert not (run_dir / name / "seed0" / ".unit.lock").exists()
    from bench.harness.config import load_config
    from bench.harness.prepare import prepare
    from bench.harness.shared_results import rebuild_results

    rows = rebuild_results(prepare(load_config(config), tmp_path / "runs", progress=False))
    assert sorted({r["experiment"] for r in rows}) == ["conv", "conv_extra"]
    assert len(pd.read_csv(run_dir / "results.csv")) == 4


@pytest.mark.slow  # unit processes of their own: about 5-20 s each
def test_a_unit_stopped_by_sigterm_records_cancelled_and_shows_in_the_results(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch)
    config = write_config(tmp_path, [{"name": "slow", "model": "launch_slow_conv"}], steps=200)
    unit_dir = tmp_path / "runs" / "launch" / "slow" / "seed0"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "unit", str(config), "--out", str(tmp_path / "runs"),
                             "--experiment", "slow", "--seed", "0", "--no-progress"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while unit_state.read_state(unit_dir)["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    record = unit_state.read_state(unit_dir)
    assert record["state"] == "cancelled" and "SIGTERM" in record["message"], output[-2000:]
    assert not (unit_dir / "result.json").exists() and not (unit_dir / ".unit.lock").exists()
    assert main(["status", str(tmp_path / "runs" / "launch")]) == 0  # status reads it (checked below by value)
    from bench.launch.status import run_status

    assert list(run_status(tmp_path / "runs" / "launch").state) == ["cancelled"]


def test_finish_gives_unfinished_units_rows_with_their_state(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch)
    config = write_config(tmp_path, THREE_EXPERIMENTS[:2])
    run_dir = tmp_path / "runs" / "launch"
    unit_state.write_state(run_dir / "conv" / "seed0", "cancelled", job="7_1", message="Slurm job 7_1 cancelled")
    from bench.harness.config import load_config
    from bench.launch.finish import finish_run

    cfg = load_config(config)
    assert main(["unit", str(config), "--out", str(tmp_path / "runs"), "--experiment", "identity", "--seed", "0",
                 "--no-progress"]) == 0
    outcome, report = finish_run(cfg, tmp_path / "runs")
    frame = pd.read_csv(run_dir / "results.csv")
    conv = frame[frame.experiment == "conv"]
    assert list(conv.status) == ["cancelled", "cancelled"] and conv.psnr.isna().all()
    assert "Slurm job 7_1 cancelled" in conv.message.iloc[0]
    assert list(frame[frame.experiment == "identity"].status) == ["done", "done"]
    assert outcome.failed == ["conv (seed 0): cancelled"]
    assert "did not finish" in report.read_text() and "conv" in report.read_text()


@pytest.mark.parametrize("record, slurm, code, expected", [
    ({"state": "running", "job": "5_0"}, "RUNNING", None, None),
    ({"state": "pending", "job": "5_0"}, "CANCELLED", None, "cancelled"),
    ({"state": "running", "job": "5_0"}, "TIMEOUT", None, "killed"),
    ({"state": "running", "job": "5_0"}, "OUT_OF_MEMORY", None, "killed"),
    ({"state": "running", "host": "elsewhere", "pid": 1}, None, -9, "killed"),
    ({"state": "pending"}, None, 1, "killed"),
])
def test_silent_endings_are_named_from_slurm_or_the_exit_status(record, slurm, code, expected):
    ending = _ending(record, slurm, code)
    assert (ending[0] if ending else None) == expected
    if code == -9:
        assert "signal 9" in ending[1]


def test_array_ids_from_sacct_are_expanded():
    assert expand_array_id("12_[0-2,5%4]") == ["12_0", "12_1", "12_2", "12_5"]
    assert expand_array_id("12_3") == ["12_3"] and expand_array_id("40") == ["40"]


def test_local_slots_pin_devices_and_split_cpu_threads():
    cfg = parse_config("experiments: [{name: a, model: identity}]\nlauncher: {jobs: 2}")
    assert slot_environments(cfg.launcher, cuda_devices=0, cores=8) == [
        {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}] * 2
    gpus = slot_environments(cfg.launcher, cuda_devices=2, cores=8)
    assert [s["CUDA_VISIBLE_DEVICES"] for s in gpus] == ["0", "1"]
    cfg.launcher.devices = ["0,1", "2,3"]
    assert [s["CUDA_VISIBLE_DEVICES"] for s in slot_environments(cfg.launcher, 4, 8)] == ["0,1", "2,3"]
    cfg.launcher.devices = ["0"]
    with pytest.raises(Exception, match="launcher.devices: 1 entries for launcher.jobs 2"):
        slot_environments(cfg.launcher, 4, 8)


def test_launcher_settings_are_checked():
    base = "experiments: [{name: a, model: identity}]\n"
    with pytest.raises(Exception, match="signal_delay_s: 90 s is not below the time limit"):
        parse_config(base + "launcher: {type: slurm, slurm: {time_min: 1}}")
    with pytest.raises(Exception, match="one task per GPU"):
        parse_config(base + "launcher: {slurm: {gpus_per_job: 2, tasks_per_job: 4}}")
    with pytest.raises(Exception, match="launcher.type"):
        parse_config(base + "launcher: {type: kubernetes}")


def test_no_wait_without_slurm_is_a_clear_error(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch)
    config = write_config(tmp_path, THREE_EXPERIMENTS[:1])
    assert main(["run", str(config), "--out", str(tmp_path / "r"), "--no-wait"]) == 2
    assert "--no-wait needs --launcher slurm" in capsys.readouterr().err
    assert main(["run", str(config), "--out", str(tmp_path / "r"), "--launcher", "local", "--no-wait"]) == 2
    assert "--no-wait needs --launcher slurm" in capsys.readouterr().err
    assert not (tmp_path / "r" / "launch" / "results.csv").exists()


def test_lock_of_a_live_owner_elsewhere_is_busy_and_of_a_requeued_job_is_taken_back(tmp_path, monkeypatch):
    lock_file = tmp_path / ".unit.lock"
    lock_file.write_text(json.dumps({"host": "other-node", "pid": 1, "job": None, "since": "x",
                                     "created": time.time()}))
    with pytest.raises(RunFolderBusy, match="pid 1 on other-node"):
        UnitLock(tmp_path).acquire()
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    lock_file.write_text(json.dumps({"host": "other-node", "pid": 1, "job": "77", "since": "x", "created": time.time()}))
    with UnitLock(tmp_path):  # the same job, requeued onto this node: its earlier life is over
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    lock_file.write_text(json.dumps({"host": "other-node", "pid": 1, "job": "76", "since": "x", "created": time.time()}))
    monkeypatch.setattr("bench.harness.lock.slurm_job_active", lambda job: False)
    with UnitLock(tmp_path):  # another job that Slurm no longer knows: gone
        pass
    monkeypatch.setattr("bench.harness.lock.slurm_job_active", lambda job: True)
    lock_file.write_text(json.dumps({"host": "other-node", "pid": 1, "job": "76", "since": "x", "created": time.time()}))
    with pytest.raises(RunFolderBusy, match="Slurm job 76"):
        UnitLock(tmp_path).acquire()
    stale = {"host": "other-node", "pid": 1, "job": "76", "since": "x", "created": time.time() - 3600}
    (tmp_path / ".shared.lock").write_text(json.dumps(stale))
    with SharedFilesLock(tmp_path, wait_s=0):  # a shared-files lock an hour old is taken over whoever holds it
        pass


def test_a_lock_whose_slurm_job_cannot_be_checked_is_kept(tmp_path, monkeypatch):
    """No answer from Slurm (squeue missing, timing out, failing): the holder may be alive, so the lock is busy
    and never taken over; the shared-files lock is still taken over once it is older than its limit."""
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("bench.harness.lock.slurm_job_active", lambda job: None)
    holder = {"host": "other-node", "pid": 1, "job": "76", "since": "x", "created": time.time() - 3600}
    lock_file = tmp_path / ".unit.lock"
    lock_file.write_text(json.dumps(holder))
    with pytest.raises(RunFolderBusy, match="Slurm job 76"):
        UnitLock(tmp_path).acquire()
    assert json.loads(lock_file.read_text()) == holder, "the unknown holder's lock is left as it was"
    assert UnitLock(tmp_path).live_holder() == holder
    (tmp_path / ".shared.lock").write_text(json.dumps({**holder, "created": time.time()}))
    with pytest.raises(RunFolderBusy, match="shared-files lock"):
        SharedFilesLock(tmp_path, wait_s=0).acquire()
    (tmp_path / ".shared.lock").write_text(json.dumps(holder))  # an hour old: past SHARED_STALE_S whatever Slurm says
    with SharedFilesLock(tmp_path, wait_s=0):
        pass


def test_squeue_that_gives_no_answer_means_unknown(tmp_path, monkeypatch):
    """``slurm_job_active``: None when squeue is missing, fails or times out; False only for an unknown job id."""
    from bench.harness import lock

    monkeypatch.setattr(lock.shutil, "which", lambda name: None)
    assert lock.slurm_job_active("5") is None
    monkeypatch.setattr(lock.shutil, "which", lambda name: "/usr/bin/squeue")

    def answer(returncode, stdout="", stderr=""):
        return lambda *a, **k: subprocess.CompletedProcess(a, returncode, stdout, stderr)

    monkeypatch.setattr(lock.subprocess, "run", answer(1, stderr="slurm_load_jobs error: Unable to contact controller"))
    assert lock.slurm_job_active("5") is None
    monkeypatch.setattr(lock.subprocess, "run", answer(1, stderr="slurm_load_jobs error: Invalid job id specified"))
    assert lock.slurm_job_active("5") is False
    monkeypatch.setattr(lock.subprocess, "run", answer(0, stdout="RUNNING\n"))
    assert lock.slurm_job_active("5") is True

    def timeout(*a, **k):
        raise subprocess.TimeoutExpired("squeue", 30)

    monkeypatch.setattr(lock.subprocess, "run", timeout)
    assert lock.slurm_job_active("5") is None


def test_slurm_launcher_without_sbatch_says_so_before_preparing_anything(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch)
    config = write_config(tmp_path, THREE_EXPERIMENTS[:1])
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    code = main(["run", str(config), "--out", str(tmp_path / "r"), "--launcher", "slurm"])
    err = capsys.readouterr().err
    assert code == 2 and ("sbatch is not on PATH" in err or "needs submitit" in err), err
    assert not (tmp_path / "data").exists() and not (tmp_path / "r").exists()


def test_status_of_a_folder_that_is_no_run_is_a_clear_error(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "is not a run folder: it has no config.yaml" in capsys.readouterr().err
