"""Smoke tests of the measurement scripts in benchmarks/: each runs as ``python -m benchmarks.NAME`` with tiny
arguments and prints the table it promises.  They check that the scripts still run, not what they measure:
performance claims come from the scripts themselves and ``python -m bench perf`` (docs/performance.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.data_helpers import one_conv_plugin

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300  # each script takes a few seconds; generous for a loaded 2-core machine

pytestmark = pytest.mark.slow  # real subprocesses, each importing torch: about 35 s in all on 2 CPU cores

SMALL_MODEL = "ian"  # the smallest registered network (2.7 M parameters) the scripts can build by name
NUMBER = r"\d+\.\d+"


def _run(*args: str, cwd: Path = REPO, extra_path: Path | None = None) -> str:
    """Run ``python *args`` in a subprocess (one thread); assert it succeeded; return stdout and stderr."""
    pythonpath = str(REPO) if extra_path is None else f"{REPO}{os.pathsep}{extra_path}"
    env = {**os.environ, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


def _row(output: str, first: str) -> list[str]:
    """The fields of the table row whose first field is ``first`` and second a number (exactly one such line)."""
    rows = [f for f in map(str.split, output.splitlines()) if f[:1] == [first] and len(f) > 1
            and re.fullmatch(NUMBER, f[1])]
    assert len(rows) == 1, output
    return rows[0]


def test_allocator_effect():
    out = _run("-m", "benchmarks.allocator_effect", "--model", SMALL_MODEL, "--size", "32", "--runs", "1",
               "--blocks", "1")
    assert f"{SMALL_MODEL} inference at 32x32, 1 threads, 1 passes per block" in out
    assert re.search(r"allocator\s+median s\s+max/min\s+sys s\s+faults/pass", out), out
    for label in ("default", "steady"):
        row = _row(out, label)
        assert len(row) == 5 and float(row[1]) > 0, out


def test_conv_speed():
    out = _run("-m", "benchmarks.conv_speed", "--shapes", "32x32@16", "--runs", "1", "--warmup", "0")
    assert re.search(r"shape\s+direct s\s+GFLOP/s\s+winograd s", out), out
    row = _row(out, "32x32@16")
    assert len(row) == 7 and float(row[1]) > 0 and float(row[3]) > 0, out
    assert float(row[6]) < 1e-3, "Winograd's output should match the direct convolution's"


def test_inference_speed():
    out = _run("-m", "benchmarks.inference_speed", "--models", SMALL_MODEL, "--size", "32", "--runs", "1",
               "--warmup", "0")
    assert "1 threads, 32x32, batch 1, 1 runs after 0 warm-up" in out
    assert re.search(r"model\s+plain median\s+plain p90\s+prepared median\s+prepared p90\s+ratio", out), out
    assert re.search(rf"^{SMALL_MODEL}\s+{NUMBER}s\s+{NUMBER}s\s+{NUMBER}s\s+{NUMBER}s\s+{NUMBER}$", out, re.M), out


def test_synth_speed(tmp_path):
    data = tmp_path / "data"
    out = _run("-m", "benchmarks.synth_speed", "--scenes", "8", "--size", "16", "--workers", "1", "--keep", str(data))
    assert re.search(rf"8 scenes \(6/1/1\), 16 px, .* 1 workers on \d+ cores: {NUMBER} s, {NUMBER} scenes/s", out), out
    assert len(list((data / "track1_train" / "input").glob("*.png"))) == 6
    assert len(list((data / "track1_validation").glob("*.png"))) == 1


def test_training_step():
    out = _run("-m", "benchmarks.training_step", "--model", SMALL_MODEL, "--size", "32", "--batch", "1",
               "--steps", "1", "--rounds", "1", "--warmup", "0", "--variants", "plain,channels_last")
    assert f"{SMALL_MODEL} at 32 px, batch 1, 1 threads" in out
    assert re.search(r"variant\s+data\s+forward\s+backward\s+optim\s+step\s+x plain\s+\(median s over 1 steps\)",
                     out), out
    plain, channels_last = _row(out, "plain"), _row(out, "channels_last")
    assert len(plain) == len(channels_last) == 7 and float(plain[5]) > 0, out
    assert plain[6] == "1.000", out


def test_timing_agreement(tmp_path):
    """On a finished 1-step run: two experiments of a one-conv plugin model (one residual) and the identity."""
    model = "benchmarks_test_one_conv"
    (tmp_path / "benchmarks_test_plugin.py").write_text(one_conv_plugin(model))
    cfg = {
        "name": "tiny",
        "plugins": ["benchmarks_test_plugin"],
        "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 16,
                 "synthetic": {"train": 3, "val": 2, "test": 2, "seed": 0, "size": 16}},
        "train": {"steps": 1, "batch_size": 1},
        "eval": {"timing_rounds": 2, "timing_warmup": 0, "splits": ["val"]},
        "experiments": [{"name": "conv", "model": model},
                        {"name": "conv_res", "model": model, "residual": True},
                        {"name": "identity", "model": "identity"}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    _run("-m", "bench", "run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs"), "--no-progress",
         cwd=tmp_path, extra_path=tmp_path)
    run_dir = tmp_path / "runs" / "tiny"
    assert (run_dir / "timing.csv").is_file()

    out = _run("-m", "benchmarks.timing_agreement", str(run_dir), "--model", model, "--repeats", "1",
               "--plugin", "benchmarks_test_plugin",
               extra_path=tmp_path)
    assert f"experiments conv, conv_res (model {model}); 2 rounds, 0 warm-up" in out, out
    assert "all 3 experiments timed together" in out, out
    pair = rf"conv {NUMBER}  conv_res {NUMBER}  spread -?{NUMBER} %"
    assert re.search(rf"^run's own phase\s+{pair}$", out, re.M), out
    assert re.search(rf"^phase 1 of 1\s+{pair}$", out, re.M), out
    assert re.search(rf"spreads of the 1 repeated phases: {NUMBER} %; largest {NUMBER} %", out), out
