"""The performance suite (bench perf), peak-memory tracking, the MBNet reference and the fast-path switches.

These check that the suite measures what it says and writes well-formed output; no test asserts a speed.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest
import torch

import bench
from bench.cli import main
from bench.harness.config import parse_config
from relight_base.errors import BenchError
from bench.perf.suite import CSV_COLUMNS, PerfOptions, format_table, run_perf, summarise_targets, write_csv


def _tiny_options(**overrides) -> PerfOptions:
    base = dict(
        models=["pgar"], sizes=[32], runs=1, small_runs=2, warmup=0, reference_size=32, reference_runs=1,
        train_model="pgar", train_size=32, train_batch=2, train_steps=1, train_rounds=1, memory_train_steps=1,
        loader_scenes=2, loader_epochs=2, metric_batch=2, matmul_size=64, optimizer_model="pgar",
        sections=["inference", "training", "data", "metrics"],
    )
    base.update(overrides)
    return PerfOptions(**base)


def test_perf_suite_measures_every_section_and_writes_csv(tmp_path):
    report = run_perf(_tiny_options())
    frame = report.frame()
    assert list(frame.columns) == CSV_COLUMNS
    assert {"machine", "inference", "training", "data", "metrics"} <= set(frame.section)
    assert frame.value.map(math.isfinite).all()
    pick = lambda section, quantity: frame[(frame.section == section) & (frame.quantity == quantity)].value.tolist()
    median, p90 = pick("inference", "median")[0], pick("inference", "p90")[0]
    assert 0 < median <= p90
    # achieved GFLOP/s is the counted FLOPs over the measured median
    assert pick("inference", "achieved")[0] == pytest.approx(pick("inference", "GFLOPs")[0] / median)
    bare, harness = pick("training", "throughput")[:2]
    assert pick("training", "throughput ratio")[0] == pytest.approx(harness / bare)
    assert pick("metrics", "metrics / inference time")[0] > 0
    assert all(v > 0 for v in pick("inference", "peak RSS"))
    path = write_csv(frame, tmp_path / "perf.csv")
    again = pd.read_csv(path)
    assert len(again) == len(frame) and list(again.columns) == CSV_COLUMNS
    table = format_table(frame)
    assert "achieved / matmul" in table and "throughput ratio" in table
    assert any(line.startswith("harness training throughput") for line in summarise_targets(frame))


def test_reference_section_races_mbnet_against_the_official_formulation():
    frame = run_perf(_tiny_options(models=["pgar"], sections=["reference"])).frame()
    ref = frame[frame.section == "reference"]
    diff = ref[ref.quantity == "max |difference|"].value.item()
    assert diff < 1e-4  # same weights, same inputs: same output
    flops = ref[ref.quantity == "GFLOPs"].value.tolist()
    assert flops[0] == pytest.approx(flops[1])  # same work on both sides
    times = ref[ref.quantity == "median"].value.tolist()
    assert ref[ref.quantity == "time ratio"].value.item() == pytest.approx(times[1] / times[0])
    parts = ref[ref.quantity == "time in one pass"]
    assert {"ours: RGB ResNet-50", "ours: depth ResNet-50", "ours: DenseTransLayers", "ours: DDPMs"} <= set(parts.item)
    assert (parts.value >= 0).all()


def test_metric_share_skips_models_without_compute():
    frame = run_perf(_tiny_options(models=["identity"], sections=["inference", "metrics"])).frame()
    assert not frame.item.str.contains("share of identity").any()


def test_unknown_section_and_model_are_input_errors(capsys):
    assert main(["perf", "--sections", "inference,bogus"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main(["perf", "--models", "mbnte", "--sections", "inference"]) == 2
    assert "mbnet" in capsys.readouterr().err  # the did-you-mean
    assert main(["perf", "--sizes", "256,abc"]) == 2
    assert "--sizes" in capsys.readouterr().err
    assert main(["perf", "--device", "gpu7", "--sections", "metrics"]) == 2
    assert "--device" in capsys.readouterr().err


def test_perf_help_names_the_targets(capsys):
    with pytest.raises(SystemExit):
        main(["perf", "--help"])
    out = capsys.readouterr().out
    assert "--official-code" in out and "docs/performance.md" in out


def test_official_code_folder_errors_are_clear(tmp_path):
    from bench.perf.mbnet_reference import load_official_class, official_pair

    with pytest.raises(BenchError, match="no hdfnet.py"):
        load_official_class(tmp_path)
    code = tmp_path / "code"
    code.mkdir()
    (code / "hdfnet.py").write_text("import torch\nclass HDFNet_Res50(torch.nn.Linear):\n"
                                    "    def __init__(self, pretrained=True):\n        super().__init__(2, 2)\n")
    with pytest.raises(BenchError, match="do not map onto"):
        official_pair(tmp_path)
    (code / "hdfnet.py").write_text("raise ImportError('needs something')\n")
    with pytest.raises(BenchError, match="importing .*hdfnet.py failed"):
        load_official_class(tmp_path)
    assert "hdfnet" not in sys.modules


def test_track_peak_sees_a_large_allocation():
    """In a fresh interpreter (a long-lived one may reuse resident freed memory): a 256 MiB block raises the peak."""
    code = (
        "import torch\n"
        "from bench.perf.memory import track_peak\n"
        "with track_peak() as small:\n    torch.ones(10)\n"
        "with track_peak() as big:\n    block = torch.ones(64 * 2**20)\n    block += 1\n"
        "print(big.peak.rss_resettable, big.peak.rss_mib - small.peak.rss_mib, big.peak.cuda_max_allocated_mib)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    resettable, grew, cuda = out[0] == "True", float(out[1]), out[2]
    if not resettable:
        pytest.skip("this OS cannot reset the RSS peak")
    assert grew > 200
    assert cuda == "None"


def test_autocast_is_a_cuda_switch_and_compile_wraps():
    model = bench.create_model("pgar")
    with pytest.raises(ValueError, match="CUDA"):
        bench.prepare_for_inference(model, autocast="bf16")
    with pytest.raises(ValueError, match="autocast must be"):
        bench.prepare_for_inference(model, autocast="fp8")
    compiled = bench.prepare_for_inference(model, compile=True)
    assert type(compiled).__name__ == "OptimizedModule"


def test_eval_switches_are_config_keys():
    cfg = parse_config("experiments: [{name: a, model: identity}]\n", overrides=["eval.autocast=bf16", "eval.compile=true"])
    assert cfg.eval.autocast == "bf16" and cfg.eval.compile is True
    with pytest.raises(BenchError, match="eval.autocast"):
        parse_config("experiments: [{name: a, model: identity}]\neval: {autocast: fp8}\n")


def test_fused_adam_takes_the_same_step_as_the_loop():
    from bench.harness.train import make_optimizer

    cfg = parse_config("experiments: [{name: a, model: identity}]\n")
    torch.manual_seed(0)
    a = torch.nn.Linear(8, 4)
    b = torch.nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    fused = make_optimizer(a, cfg)
    assert fused.defaults.get("fused") is True
    loop = torch.optim.Adam(b.parameters(), lr=cfg.train.lr, betas=tuple(cfg.train.betas), foreach=False)
    x = torch.randn(5, 8)
    for _ in range(3):
        for model, opt in ((a, fused), (b, loop)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)
