"""The reporter: tables from hand-made results, merging and its refusal, output formats, the page in a browser."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.harness.run import RESULT_COLUMNS
from reports.render import ReportError, build_report, render_report
from reports.tables import build_table, to_latex, to_markdown


def make_row(experiment, model, seed, split, psnr, ssim, lpips=math.nan, **extra):
    row = {c: "" for c in RESULT_COLUMNS}
    row.update(experiment=experiment, model=model, seed=seed, split=split, status="done", psnr=psnr, ssim=ssim,
               lpips=lpips, mps=0.5 * (ssim + 1 - lpips), time_per_image_s=0.5, time_p90_s=0.6, params_m=153.19,
               gflops=14.26, steps=2, train_seconds=1.0, residual=False, extra_data="none", data_source="synthetic",
               data_size=32, device="cpu", weights="resnet50: random init (x)", perceptual_loss="dropped (x)",
               lpips_weights="LPIPS not computed: not found locally", message="")
    row.update(extra)
    return row


def hand_made_results() -> pd.DataFrame:
    rows = [
        make_row("baseline", "mbnet", 0, "val", 18.0, 0.68),
        make_row("baseline", "mbnet", 1, "val", 18.2, 0.70),
        make_row("mbnet", "mbnet", 0, "val", 19.0, 0.71, extra_data="extra_input,mirror", residual=True),
        make_row("mbnet", "mbnet", 1, "val", 19.4, 0.73, extra_data="extra_input,mirror", residual=True),
        make_row("identity", "identity", 0, "val", 17.0, 0.74, params_m=0.0, gflops=0.0, time_per_image_s=0.0001),
        make_row("pgar", "pgar", 0, "val", 17.6, 0.67, params_m=16.2, gflops=5.0, time_per_image_s=0.1, time_p90_s=0.2),
        make_row("baseline", "mbnet", 0, "test", 17.5, 0.66),
        make_row("mbnet", "mbnet", 0, "test", 18.5, 0.69, extra_data="extra_input,mirror", residual=True),
        make_row("identity", "identity", 0, "test", 16.0, 0.72),
    ]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def write_run(folder: Path, results: pd.DataFrame, *, size: int = 32, val_samples: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    results.to_csv(folder / "results.csv", index=False)
    (folder / "results.json").write_text(json.dumps({
        "written": "2026-11-23T12:00:00+0000", "config_hash": "abc", "git": {"commit": "0" * 40, "dirty": False},
        "software": {"torch": "x"}, "machine": {"device": "cpu", "device_name": "test cpu", "cpu_threads": 2},
        "train": {"batch_size": 3, "lr": 1e-4}, "metric_conventions": {"mps": "0.5 * (SSIM + 1 - LPIPS)"},
        "lpips": "LPIPS not computed: not found locally", "timing": "forward only"}))
    (folder / "data.json").write_text(json.dumps({
        "source": "synthetic", "root": str(folder / "no-data"), "size": size, "input": "6500_N", "target": "4500_E",
        "splits": {"val": {"samples": val_samples, "scenes": val_samples}, "test": {"samples": 2, "scenes": 2}}}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"name": folder.name, "seeds": [0, 1], "data": {"size": size},
                                                        "experiments": [{"name": "x", "model": "identity"}]}))
    return folder


def test_table1_mean_std_and_best():
    t1 = build_table("table1", hand_made_results())
    assert list(t1.rows["experiment"]) == ["baseline", "mbnet"], "Table 1 holds the MBNet experiments only"
    base = t1.rows.loc[t1.rows.experiment == "baseline"].iloc[0]
    assert base["val_psnr_mean"] == pytest.approx(18.1)
    assert base["val_psnr_std"] == pytest.approx(0.14142135, rel=1e-6)
    assert base["val_psnr_n"] == 2
    best = t1.rows.loc[t1.rows.experiment == "mbnet", "best"].iloc[0]
    assert set(best.split(",")) == {"val_psnr", "val_ssim"}
    assert "+ Extra data + Residual learning" in t1.rows.loc[t1.rows.experiment == "mbnet", "label"].iloc[0]
    md = to_markdown(t1)
    assert "**19.2000 ± 0.2828**" in md and "18.1000 ± 0.1414" in md
    assert "reported in the paper (VIDIT, 1024²)" in md and "19.3558" in md


def test_table2_lower_is_better_columns_and_unranked_reference():
    t2 = build_table("table2", hand_made_results())
    best = dict(zip(t2.rows["experiment"], t2.rows["best"]))
    assert set(best["pgar"].split(",")) == {"val_params_m", "val_gflops", "val_time_per_image_s", "val_time_p90_s"}
    assert set(best["mbnet"].split(",")) == {"val_psnr", "val_ssim"}
    assert best["identity"] == "", "the parameter-free identity row is shown but not ranked"


def test_table3_missing_lpips_is_na_and_warned(tmp_path):
    t3 = build_table("table3", hand_made_results())
    assert t3.rows["test_lpips_mean"].isna().all() and "test_lpips" not in ",".join(t3.rows["best"])
    assert "| n/a |" in to_markdown(t3)
    report = build_report([write_run(tmp_path / "r", hand_made_results())])
    assert any("LPIPS and MPS are n/a" in w for w in report.warnings)


def test_markdown_rows_have_equal_cells_and_latex_is_balanced():
    for name in ("table1", "table2", "table3"):
        table = build_table(name, hand_made_results())
        md_rows = [line for line in to_markdown(table).splitlines() if line.startswith("|")]
        assert len({line.count("|") - line.count("\\|") for line in md_rows}) == 1, name
        tex = to_latex(table)
        assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 1
        ncols = len(re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1))
        body = [line for line in tex.splitlines() if line.endswith("\\\\") and "multicolumn" not in line]
        assert all(line.count(" & ") == ncols - 1 for line in body), name
        assert tex.count("{") == tex.count("}")


def test_merge_two_runs_and_refuse_incomparable(tmp_path):
    results = hand_made_results()
    a = write_run(tmp_path / "a", results[results.experiment != "identity"])
    b = write_run(tmp_path / "b", results[results.experiment == "identity"])
    page = render_report([a, b], tmp_path / "merged")
    table2 = pd.read_csv(tmp_path / "merged" / "tables" / "table2.csv")
    assert set(table2["experiment"]) == {"baseline", "mbnet", "identity", "pgar"}
    assert page.read_text().count('class="measured"') >= 3
    c = write_run(tmp_path / "c", results[results.experiment == "identity"], size=64)
    with pytest.raises(ReportError, match="size differs"):
        render_report([a, c], tmp_path / "bad")
    d = write_run(tmp_path / "d", results[results.experiment == "identity"], val_samples=5)
    with pytest.raises(ReportError, match="val splits differ"):
        render_report([a, d], tmp_path / "bad")
    e = write_run(tmp_path / "e", results[results.experiment == "baseline"])
    with pytest.raises(ReportError, match="appears in both"):
        render_report([a, e], tmp_path / "bad")
    with pytest.raises(ReportError, match="given twice"):
        render_report([a, a], tmp_path / "bad")
    with pytest.raises(ReportError, match="needs --out"):
        render_report([a, b])


def test_report_of_missing_folder_is_a_clear_cli_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "run folder does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tinyrun")
    cfg = {"name": "tiny", "data": {"source": "synthetic", "root": str(root / "data"), "size": 32,
                                    "synthetic": {"train": 2, "val": 2, "test": 2, "size": 32}},
           "train": {"steps": 1, "batch_size": 2}, "eval": {"timing_rounds": 1, "timing_warmup": 0},
           "experiments": [{"name": "identity", "model": "identity"}, {"name": "tinyref", "model": "identity", "extra_data": True}]}
    (root / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(root / "c.yaml"), "--out", str(root / "runs"), "--no-progress"]) == 0
    return root / "runs" / "tiny"


def test_run_renders_report_and_report_regenerates_identically(tiny_run, capsys):
    page = tiny_run / "report.html"
    assert page.is_file()
    before = {p: p.read_bytes() for p in [page, *sorted((tiny_run / "tables").iterdir()), *sorted((tiny_run / "figures").iterdir())]}
    assert main(["report", str(tiny_run)]) == 0
    after = {p: p.read_bytes() for p in before}
    assert before == after
    html = page.read_text()
    for section in ("Provenance", "Table 1", "Table 2", "Table 3", "Visual comparison", "<svg", "synthetic"):
        assert section in html
    assert 'src="figures/visual_' in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_report_in_headless_chromium(tiny_run, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`; .ci/run installs it where it can)")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", (tiny_run / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'data-checked="yes"' in dom, "the page's load handler did not run"
    assert 'data-images-failed=""' in dom, re.search(r'data-images-failed="[^"]*"', dom).group(0)
    total = int(re.search(r'data-images-total="(\d+)"', dom).group(1))
    assert total == len(list((tiny_run / "figures").glob("*.png"))) >= 1
    assert dom.count('<table class="results"') == 3
