"""The performance suite (bench perf), peak-memory tracking, the MBNet reference and the fast-path switches.

These check that the suite measures what it says and writes well-formed output; no test asserts a speed.
Runs of the real sections are marked slow; the fast tests drive the suite with stand-in sections.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from torch import nn

import bench
from bench.cli import main
from bench.harness.config import parse_config
from relight_base.errors import BenchError
from bench.perf import suite
from bench.perf.breakdown import OTHER, part_times
from bench.perf.measure import interleaved
from bench.perf.report import CSV_COLUMNS, PerfReport
from bench.perf.suite import PerfOptions, format_table, resolve_device, run_perf, summarise_targets, write_csv


def _tiny_options(**overrides) -> PerfOptions:
    base = dict(
        models=["pgar"], sizes=[32], runs=1, small_runs=2, warmup=0, reference_size=32, reference_runs=1,
        train_model="pgar", train_size=32, train_batch=2, train_steps=1, train_rounds=1, memory_train_steps=1,
        loader_scenes=2, loader_epochs=2, metric_batch=2, matmul_size=64, optimizer_model="pgar",
        sections=["inference", "training", "data", "metrics"],
    )
    base.update(overrides)
    return PerfOptions(**base)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert "--step-model" in out and "train_step" in out  # the training-step breakdown and how to run it alone


def test_official_code_folder_errors_are_clear(tmp_path):
    from bench.perf.mbnet_reference import load_official_class

    with pytest.raises(BenchError, match="no hdfnet.py"):
        load_official_class(tmp_path)
    code = tmp_path / "code"
    code.mkdir()
    (code / "hdfnet.py").write_text("raise ImportError('needs something')\n")
    with pytest.raises(BenchError, match="importing .*hdfnet.py failed"):
        load_official_class(tmp_path)
    assert "hdfnet" not in sys.modules


@pytest.mark.slow
def test_official_code_with_other_weights_is_a_clear_error(tmp_path):
    """Builds our MBNet to compare weight names (seconds on 2 cores)."""
    from bench.perf.mbnet_reference import official_pair

    code = tmp_path / "code"
    code.mkdir()
    (code / "hdfnet.py").write_text("import torch\nclass HDFNet_Res50(torch.nn.Linear):\n"
                                    "    def __init__(self, pretrained=True):\n        super().__init__(2, 2)\n")
    with pytest.raises(BenchError, match="do not map onto"):
        official_pair(tmp_path)


@pytest.mark.slow
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


@pytest.mark.slow
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
    from bench.harness.optim import make_optimizer

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


class _Sleep(nn.Module):
    """Waits ``seconds`` and passes its input through."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return x


class _Toy(nn.Module):
    """Two encoders, a list of blocks and a head, each only waiting, so their times are known."""

    def __init__(self) -> None:
        super().__init__()
        self.enc_rgb, self.enc_depth = _Sleep(0.03), _Sleep(0.03)
        self.blocks = nn.ModuleList([_Sleep(0.01), _Sleep(0.01)])
        self.head = _Sleep(0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.enc_depth(self.enc_rgb(x))
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_part_times_groups_children_under_the_adapters_declared_labels():
    model = _Toy()
    times = part_times(model, lambda: model(torch.zeros(1)), {"enc": "encoders", "head": "output head"})
    assert set(times) == {"encoders", "output head", "blocks", OTHER}  # undeclared children keep their name
    assert times["encoders"] >= 0.06 and times["blocks"] >= 0.02 and times["output head"] >= 0.02
    assert list(times)[0] == "encoders"  # largest first
    assert times[OTHER] >= 0


def test_part_times_without_a_declaration_is_one_group_per_child():
    model = _Toy()
    times = part_times(model, lambda: model(torch.zeros(1)))
    assert set(times) == {"enc_rgb", "enc_depth", "blocks", "head", OTHER}
    assert times["enc_rgb"] >= 0.03 and times["blocks"] >= 0.02


def test_mbnet_declares_a_label_for_its_children():
    from models.registry import get_entry

    declared = get_entry("mbnet").capabilities.time_breakdown
    assert declared["rgb_encoder"] == "RGB ResNet-50"
    assert declared["ddpm"] == "DDPMs"


def test_interleaved_alternates_and_drops_the_warmup():
    calls: list[str] = []
    times = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, runs=2, warmup=1,
                        device=torch.device("cpu"))
    assert calls == ["a", "b"] * 3
    assert [len(v) for v in times.values()] == [2, 2] and all(t >= 0 for v in times.values() for t in v)


def _stand_in_sections(report: PerfReport) -> None:
    """Rows a real run's inference, reference and training sections would add, with known values."""
    report.add("inference", "toy", 32, "achieved", 10.0, "GFLOP/s")
    report.add("inference", "toy", 32, "achieved / matmul", math.nan, "x")
    report.add("reference", "ours / reference", 32, "time ratio", 0.6, "x")
    report.add("training", "harness / bare", 32, "throughput ratio", 0.98, "x", "median of per-round ratios")


def test_run_perf_relates_rates_to_the_faster_matmul_and_notes_the_targets(monkeypatch):
    monkeypatch.setitem(suite.SECTIONS, "inference", _stand_in_sections)
    frame = run_perf(PerfOptions(models=["pgar"], train_model="pgar", matmul_size=64, device="cpu",
                                 sections=["inference"])).frame()
    rates = frame[frame.quantity.str.startswith("GFLOP/s (")].value
    assert len(rates) == 2  # start and end
    ratio = frame[frame.quantity == "achieved / matmul"].value.item()
    assert ratio == pytest.approx(10.0 / rates.max())
    notes = dict(zip(frame.quantity, frame.note))
    assert notes["time ratio"] == "target <= 0.55"
    assert notes["throughput ratio"] == "median of per-round ratios; target >= 0.97"
    assert frame.section.iloc[-1] == "machine" and frame.quantity.iloc[-1] == "wall time"


def test_targets_summary_says_met_or_missed():
    frame = pd.DataFrame(
        [("reference", "ours / reference", 32, "time ratio", 0.5, "x", ""),
         ("training", "harness / bare", 32, "throughput ratio", 0.9, "x", ""),
         ("metrics", "share of pgar inference", 32, "metrics / inference time", 0.25, "x", ""),
         ("metrics", "share of atst inference", 32, "metrics / inference time", 0.05, "x", "")],
        columns=CSV_COLUMNS)
    assert summarise_targets(frame) == [
        "MBNet vs official formulation: 0.500x the time (target <= 0.55): met",
        "harness training throughput: 0.900x the bare loop (target >= 0.97): missed",
        "metrics share of pgar inference: 0.250 (target <= 0.10): missed",
        "metrics share of atst inference: 0.050 (target <= 0.10): met",
    ]


def test_table_separates_sections_and_leaves_missing_sizes_blank():
    frame = pd.DataFrame([("machine", "matmul", None, "GFLOP/s (start)", 1234.5, "GFLOP/s", ""),
                          ("inference", "pgar", 32, "median", 0.012345, "s", "note")], columns=CSV_COLUMNS)
    lines = format_table(frame).splitlines()
    assert len(lines) == 5 and lines[3] == ""  # header, rule, machine row, blank, inference row
    assert "1,234" in lines[2] and lines[2].split()[:2] == ["machine", "matmul"]
    assert "   32  " in lines[4] and "0.01235" in lines[4]


def test_device_flag_uses_the_harness_rule_and_names_the_flag():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(BenchError, match="^--device: expected auto, cpu, cuda or cuda:N, got 'gpu7'"):
        resolve_device("gpu7")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(BenchError, match="^--device: 'cuda' .*no usable CUDA GPU"):
            resolve_device("cuda")
