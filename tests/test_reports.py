"""The reporter: tables with CIs and paired Δ from hand-made run folders, timing phases, merging and its refusal,
extra rows scored from published images, output formats, the page in a browser.

Run folders are written file by file here (results.csv, results.json, data.json, config.yaml, per-image
metrics_<split>.csv, timing.csv/.json), never by training a model; every expected number is computed in the test
from the per-image values it wrote.
"""

from __future__ import annotations

import html.parser
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.cli import main
from relight_base.results import NAMES as RESULT_COLUMNS
from reports.errors import ReportError
from reports.render import build_report, render_report
from reports.writers import to_csv, to_latex, to_markdown

SCENES = [f"Image{i:03d}" for i in range(24)]
FAST = {"bootstrap_resamples": 500}  # the report: section of the test configs (intervals stay seeded)


def make_row(experiment, model, seed, split, psnr, ssim, lpips=math.nan, **extra):
    row = {c: "" for c in RESULT_COLUMNS}
    row.update(experiment=experiment, model=model, seed=seed, split=split, status="done", psnr=psnr, ssim=ssim,
               lpips=lpips, mps=0.5 * (ssim + 1 - lpips), time_per_image_s=0.5, time_p90_s=0.6, time_q1_s=0.45,
               time_q3_s=0.55, timing_phase="", timing_size=32, timing_threads=2, params_m=153.19, gflops=14.26,
               steps=2, train_seconds=1.0, residual=False, extra_data="none", data_source="synthetic", data_size=32,
               device="cpu", weights="resnet50: random init (x)", perceptual_loss="dropped (x)",
               lpips_weights="LPIPS not computed: not found locally", message="")
    row.update(extra)
    return row


def scores(psnr, ssim, lpips=None, scenes=SCENES) -> pd.DataFrame:
    """A per-image metrics frame as `bench run` / `bench score` write it."""
    psnr = np.asarray(psnr, dtype=float)
    ssim = np.asarray(ssim, dtype=float)
    lpips = np.full(len(psnr), np.nan) if lpips is None else np.asarray(lpips, dtype=float)
    return pd.DataFrame({"scene_id": list(scenes)[:len(psnr)], "psnr": psnr, "ssim": ssim, "lpips": lpips,
                         "mps": 0.5 * (ssim + 1 - lpips)})


class RunBuilder:
    """Result rows plus the per-image files behind them, for one hand-made run folder."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.images: dict[tuple[str, int, str], pd.DataFrame] = {}

    def add(self, experiment, model, seed, split, frame: pd.DataFrame, **extra) -> "RunBuilder":
        self.images[(experiment, seed, split)] = frame
        self.rows.append(make_row(experiment, model, seed, split, float(frame.psnr.mean()), float(frame.ssim.mean()),
                                  float(frame.lpips.mean()), **extra))
        return self

    def write(self, folder: Path, **kwargs) -> Path:
        write_run(folder, pd.DataFrame(self.rows, columns=RESULT_COLUMNS), **kwargs)
        for (experiment, seed, split), frame in self.images.items():
            path = folder / experiment / f"seed{seed}" / f"metrics_{split}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
        return folder


def write_run(folder: Path, results: pd.DataFrame, *, size: int = 32, val_samples: int = 24, report=None,
              evaluation=None, conventions=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    results.to_csv(folder / "results.csv", index=False)
    conventions = conventions or {"clamp": "clamped", "quantize": "predictions rounded to 8 bits",
                                  "ssim": "gaussian words", "mps": "0.5 * (SSIM + 1 - LPIPS)"}
    (folder / "results.json").write_text(json.dumps({
        "written": "2026-11-23T12:00:00+0000", "config_hash": "abc", "git": {"commit": "0" * 40, "dirty": False},
        "software": {"torch": "x"}, "machine": {"device": "cpu", "device_name": "test cpu", "cpu_threads": 2},
        "train": {"batch_size": 3, "lr": 1e-4}, "metric_conventions": conventions,
        "lpips": "LPIPS not computed: not found locally", "timing": "forward only"}))
    (folder / "data.json").write_text(json.dumps({
        "source": "synthetic", "root": str(folder / "no-data"), "size": size, "input": "6500_N", "target": "4500_E",
        "splits": {"val": {"samples": val_samples, "scenes": val_samples}, "test": {"samples": 24, "scenes": 24}}}))
    config = {"name": folder.name, "seeds": [0, 1], "data": {"size": size}, "report": report or dict(FAST),
              "eval": evaluation or {"ssim": "gaussian", "quantize": True},
              "experiments": [{"name": "x", "model": "identity"}]}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def write_timing(folder: Path, phase: str, times: dict[str, list[float]], device: str = "test cpu") -> None:
    """timing.csv/.json of one phase: ``times[experiment][round]`` seconds."""
    rows = [{"phase": phase, "round": r, "position": k, "experiment": exp, "seed": 0, "seconds": s}
            for k, (exp, values) in enumerate(times.items()) for r, s in enumerate(values)]
    pd.DataFrame(rows).to_csv(folder / "timing.csv", index=False)
    (folder / "timing.json").write_text(json.dumps({
        "phase": phase, "device": device, "threads": 2, "size": 32, "rounds": len(next(iter(times.values()))),
        "warmup": 1, "order": "rotating", "timed": list(times), "skipped": {}}))
    results = pd.read_csv(folder / "results.csv", dtype={"timing_phase": object})
    for exp, values in times.items():
        sel = results.experiment == exp
        results.loc[sel, "timing_phase"] = phase
        results.loc[sel, "time_per_image_s"] = float(np.median(values))
        results.loc[sel, "time_q1_s"] = float(np.percentile(values, 25))
        results.loc[sel, "time_q3_s"] = float(np.percentile(values, 75))
    results.to_csv(folder / "results.csv", index=False)


def standard_run(rng_seed: int = 0, seeds=(0, 1)) -> RunBuilder:
    """baseline and mbnet (MBNet, mbnet far ahead), pgar (fewer params), identity (the floor), on val and test."""
    rng = np.random.default_rng(rng_seed)
    base_psnr = rng.normal(18.0, 1.0, len(SCENES))
    base_ssim = rng.uniform(0.6, 0.75, len(SCENES))
    run = RunBuilder()
    for seed in seeds:
        noise = lambda scale=0.2: rng.normal(0, scale, len(SCENES))  # noqa: E731
        for split in ("val", "test"):
            run.add("baseline", "mbnet", seed, split, scores(base_psnr + noise(), base_ssim + noise(0.01)))
            run.add("mbnet", "mbnet", seed, split, scores(base_psnr + 2.0 + noise(), base_ssim + 0.05 + noise(0.01)),
                    extra_data="extra_input,mirror", residual=True)
        run.add("pgar", "pgar", seed, "val", scores(base_psnr - 0.5 + noise(), base_ssim - 0.01 + noise(0.01)),
                params_m=16.2, gflops=5.0, time_per_image_s=0.1)
    run.add("identity", "identity", 0, "val", scores(base_psnr - 3.0, base_ssim - 0.1), params_m=0.0, gflops=0.0)
    run.add("identity", "identity", 0, "test", scores(base_psnr - 3.0, base_ssim - 0.1), params_m=0.0, gflops=0.0)
    return run


def seed_averaged(folder: Path, experiment: str, split: str, metric: str) -> pd.Series:
    """Computed here from the written files: each image averaged over the experiment's seeds."""
    frames = [pd.read_csv(p).set_index("scene_id")[metric] for p in sorted((folder / experiment).glob(f"seed*/metrics_{split}.csv"))]
    return pd.concat(frames, axis=1).mean(axis=1)


@pytest.fixture(scope="module")
def standard(tmp_path_factory) -> Path:
    return standard_run().write(tmp_path_factory.mktemp("std") / "run")


@pytest.fixture(scope="module")
def standard_report(standard):
    return build_report([standard])


def table(report, name):
    return next(t for t in report.tables if t.name == name)


def test_quality_cells_carry_ci_over_seed_averaged_images(standard, standard_report):
    t1 = table(standard_report, "table1")
    mbnet = t1.frame.loc[t1.frame.experiment == "mbnet"].iloc[0]
    per_image = seed_averaged(standard, "mbnet", "val", "psnr")
    assert mbnet["val_psnr_mean"] == pytest.approx(per_image.mean(), rel=1e-12)
    assert mbnet["val_psnr_ci_low"] < per_image.mean() < mbnet["val_psnr_ci_high"]
    assert mbnet["val_psnr_n"] == len(SCENES) and mbnet["seeds"] == 2
    assert mbnet["val_psnr_seed_std"] > 0, "the spread over seeds is kept, labelled, apart from the CI"
    md = to_markdown(t1)
    assert f"{per_image.mean():.3f} [{mbnet['val_psnr_ci_low']:.3f}, {mbnet['val_psnr_ci_high']:.3f}]" in md
    caption = " ".join(t1.caption)
    assert "n = 24 validation images" in caption and "2 seeds" in caption and "averaged over its seeds first" in caption
    assert "SSIM gaussian" in caption and "8-bit" in caption


def test_clear_lead_is_bold_alone_and_its_delta_excludes_zero(standard, standard_report):
    t1 = table(standard_report, "table1")
    rows = t1.frame.set_index("experiment")
    assert rows.loc["mbnet", "best"].split(",") == ["val_psnr", "val_ssim"] and rows.loc["baseline", "best"] == ""
    diff = seed_averaged(standard, "mbnet", "val", "psnr") - seed_averaged(standard, "baseline", "val", "psnr")
    assert rows.loc["mbnet", "delta_val_psnr"] == pytest.approx(np.mean(diff.to_numpy()), rel=1e-12)
    assert bool(rows.loc["mbnet", "delta_val_psnr_excludes_0"]) and rows.loc["mbnet", "delta_val_psnr_ci_low"] > 0
    assert rows.loc["baseline", "delta_val_psnr_note"] == "reference"
    assert rows.loc["mbnet", "floor_delta_val_psnr_ci_low"] > 0, "better than doing nothing, with a CI"
    md = to_markdown(t1)
    assert re.search(r"\*\*\d+\.\d{3} \[[\d.]+, [\d.]+\]\*\*", md), "the leader's cell is bold"
    assert "†" in md and "Δ vs baseline" in md and "Δ vs identity" in md


def test_rows_equal_in_distribution_are_tied(tmp_path):
    rng = np.random.default_rng(3)
    run = RunBuilder()
    for exp in ("baseline", "mbnet"):
        run.add(exp, "mbnet", 0, "val", scores(rng.normal(18, 1, 24), rng.uniform(0.6, 0.7, 24)))
    report = build_report([run.write(tmp_path / "r")])
    rows = table(report, "table1").frame.set_index("experiment")
    assert rows.loc["mbnet", "delta_val_psnr_ci_low"] < 0 < rows.loc["mbnet", "delta_val_psnr_ci_high"]
    assert not bool(rows.loc["mbnet", "delta_val_psnr_excludes_0"])
    assert set(rows["tied"].str.split(",").str[0]) == {"val_psnr"} and (rows["best"] == "").all()
    assert "(tied)" in to_markdown(table(report, "table1"))


def test_two_seed_report_shows_params_once_and_csv_carries_ci_and_delta(standard, standard_report):
    t2 = table(standard_report, "table2")
    md, tex = to_markdown(t2), to_latex(t2)
    assert "153.19" in md and not re.search(r"± 0\.00(?!\d)", md) and "153.19 ±" not in md
    assert "| 153.19 |" in md and "& 153.19 &" in tex
    header = to_csv(t2).splitlines()[0].split(",")
    for column in ("val_psnr_mean", "val_psnr_ci_low", "val_psnr_ci_high", "val_psnr_n", "delta_val_psnr",
                   "delta_val_psnr_ci_low", "delta_val_psnr_ci_high", "floor_delta_val_psnr_ci_high", "params_m",
                   "time_median_s", "time_q1_s", "time_q3_s", "timing_phase"):
        assert column in header, column
    assert "val_psnr_std" not in header
    best = dict(zip(t2.frame.experiment, t2.frame.best))
    assert set(best["pgar"].split(",")) >= {"params_m", "gflops"} and best["identity"] == ""


def test_companion_json_documents_every_csv_column(standard, tmp_path):
    render_report([standard], tmp_path / "out")
    for name in ("table1", "table2", "table3"):
        columns = pd.read_csv(tmp_path / "out" / "tables" / f"{name}.csv").columns
        guide = json.loads((tmp_path / "out" / "tables" / f"{name}.json").read_text())
        assert set(columns) == set(guide["columns"]), name
        assert guide["references"] == {"delta": "baseline" if name == "table1" else "mbnet", "floor_delta": "identity"}
    html = (tmp_path / "out" / "report.html").read_text()
    assert "How to read the tables" in html and "confidence interval" in html and "SSIM convention" in html


def test_captions_state_the_ssim_convention_and_float_scoring(tmp_path):
    run = RunBuilder().add("pgar", "pgar", 0, "val", scores(np.linspace(17, 18, 24), np.linspace(0.6, 0.7, 24)))
    conventions = {"clamp": "clamped", "quantize": "predictions scored as clamped floats", "ssim": "uniform7 words"}
    folder = run.write(tmp_path / "r", evaluation={"ssim": "uniform7", "quantize": False}, conventions=conventions)
    report = build_report([folder])
    for t in report.tables:
        words = " ".join(t.caption)
        assert "SSIM uniform7 (scikit-image's default" in words and "float (not quantised)" in words, t.name
    render_report([folder])
    html = (folder / "report.html").read_text()
    assert "predictions scored as clamped floats" in html and "uniform7" in html


def test_missing_reference_gives_a_note_not_a_crash(tmp_path):
    run = RunBuilder().add("pgar", "pgar", 0, "val", scores(np.linspace(17, 18, 24), np.linspace(0.6, 0.7, 24)))
    run.add("atst", "atst", 0, "val", scores(np.linspace(17, 19, 24), np.linspace(0.6, 0.72, 24)))
    report = build_report([run.write(tmp_path / "r")])
    t2 = table(report, "table2")
    assert t2.deltas == [] and not any(c.startswith("delta_") for c in to_csv(t2).splitlines()[0].split(","))
    assert any("No Δ vs mbnet" in n for n in t2.notes) and any("No Δ vs identity" in n for n in t2.notes)
    assert "Δ vs" not in to_markdown(t2).split("- ")[0]


def test_degenerate_cells_are_na_never_nan_text(tmp_path):
    run = RunBuilder()
    run.add("mbnet", "mbnet", 0, "val", scores([18.0], [0.7]), residual=True)          # one image
    run.add("pgar", "pgar", 0, "val", scores([17.0] * 1, [0.7]), params_m=16.2)       # zero variance, NaN LPIPS
    run.add("pgar", "pgar", 0, "test", scores([17.0], [0.7]), params_m=16.2)
    report = build_report([run.write(tmp_path / "r", val_samples=1)])
    for t in report.tables:
        for text in (to_markdown(t), to_latex(t), to_csv(t).replace(",nan", "")):
            assert "nan" not in text.lower().replace("n/a", ""), t.name
        assert "[n/a]" in to_markdown(t) or t.frame.empty
    t3 = table(report, "table3")
    assert t3.frame.loc[t3.frame.experiment == "pgar", "test_lpips_mean"].isna().all()
    assert "| n/a |" in to_markdown(t3)


def test_timing_tie_and_clear_lead_from_timing_csv(tmp_path):
    run = standard_run(seeds=(0,))
    tie = run.write(tmp_path / "tie")
    write_timing(tie, "P-tie", {"baseline": [0.20, 0.21, 0.19, 0.22, 0.20], "mbnet": [0.21, 0.19, 0.22, 0.20, 0.20],
                                "pgar": [0.22, 0.20, 0.21, 0.19, 0.21], "identity": [1e-4] * 5})
    t2 = table(build_report([tie]), "table2")
    marks = t2.frame.set_index("experiment")
    assert "time_median_s" not in ",".join(marks["best"]), "a lead within the spread is no winner"
    assert {e for e in marks.index if "time_median_s" in marks.loc[e, "tied"]} == {"baseline", "mbnet", "pgar"}
    lead = run.write(tmp_path / "lead")
    write_timing(lead, "P-lead", {"baseline": [0.20, 0.21, 0.19, 0.22, 0.20], "mbnet": [0.21, 0.19, 0.22, 0.20, 0.20],
                                  "pgar": [0.10, 0.12, 0.09, 0.11, 0.10], "identity": [1e-4] * 5})
    t2 = table(build_report([lead]), "table2")
    marks = t2.frame.set_index("experiment")
    assert "time_median_s" in marks.loc["pgar", "best"] and "time_median_s" not in ",".join(marks["tied"])
    md = to_markdown(t2)
    assert "0.1000 (0.1000–0.1100)" in md and "P-lead" in md


def test_merged_report_never_ranks_across_timing_phases(tmp_path):
    run = standard_run(seeds=(0,))
    results = pd.DataFrame(run.rows, columns=RESULT_COLUMNS)
    a = RunBuilder()
    a.rows = [r for r in run.rows if r["experiment"] in ("baseline", "mbnet")]
    a.images = {k: v for k, v in run.images.items() if k[0] in ("baseline", "mbnet")}
    b = RunBuilder()
    b.rows = [r for r in run.rows if r["experiment"] in ("pgar", "identity")]
    b.images = {k: v for k, v in run.images.items() if k[0] in ("pgar", "identity")}
    assert len(a.rows) + len(b.rows) == len(results)
    folder_a, folder_b = a.write(tmp_path / "a"), b.write(tmp_path / "b")
    write_timing(folder_a, "phase-A", {"baseline": [0.50, 0.52, 0.49], "mbnet": [0.20, 0.21, 0.19]}, device="machine A")
    write_timing(folder_b, "phase-B", {"pgar": [0.05, 0.06, 0.05], "identity": [1e-4] * 3}, device="machine B")
    t2 = table(build_report([folder_a, folder_b]), "table2")
    marks = t2.frame.set_index("experiment")
    assert "time_median_s" in marks.loc["mbnet", "best"], "ranked within its own phase"
    assert "time_median_s" not in marks.loc["pgar", "best"] + marks.loc["pgar", "tied"], "never against phase A"
    notes = " ".join(t2.notes)
    assert "machine A" in notes and "machine B" in notes and "never ranked against each other" in notes
    assert re.search(r"phase-A.*rows timed in it: baseline, mbnet", notes)
    assert "Timing phase" in to_markdown(t2)


def test_old_run_without_timing_or_per_image_files_still_renders(tmp_path):
    old_columns = [c for c in RESULT_COLUMNS if c not in ("time_q1_s", "time_q3_s", "timing_phase", "timing_size",
                                                          "timing_threads")]
    run = standard_run(seeds=(0,))
    folder = write_run(tmp_path / "old", pd.DataFrame(run.rows)[old_columns],
                       conventions={"mps": "0.5 * (SSIM + 1 - LPIPS)"}, evaluation={})
    page = render_report([folder])
    t2 = table(build_report([folder]), "table2")
    assert "0.5" in to_markdown(t2) and "time_median_s" not in ",".join(t2.frame.best) + ",".join(t2.frame.tied)
    assert any("older run folder without timing.csv" in n for n in t2.notes)
    assert "float (not quantised)" in " ".join(t2.caption)
    assert "[n/a]" in to_markdown(t2) and page.is_file()


def test_extra_row_scored_from_published_images(standard, tmp_path):
    base = seed_averaged(standard, "mbnet", "val", "psnr")
    published = scores(base.to_numpy() + 0.01, np.full(24, 0.8), scenes=base.index)
    published.to_csv(tmp_path / "s3net.csv", index=False)
    report = build_report([standard], extras=[f"s3net={tmp_path / 's3net.csv'}"])
    for name in ("table1", "table2", "table3"):
        t = table(report, name)
        assert "s3net (scored from published images)" in t.frame.index, name
    t2 = table(report, "table2").frame.set_index("experiment")
    assert t2.loc["s3net", "val_psnr_n"] == 24 and t2.loc["s3net", "delta_val_psnr"] == pytest.approx(0.01, abs=1e-9)
    assert "val_ssim" in t2.loc["s3net", "best"], "a published row is ranked like the others"
    assert "scored from published images" in " ".join(table(report, "table2").caption)
    t3 = table(build_report([standard], extras=[f"s3net={tmp_path / 's3net.csv'}", f"s3net:test={tmp_path / 's3net.csv'}"]),
               "table3").frame.set_index("experiment")
    assert t3.loc["s3net", "val_psnr_n"] == t3.loc["s3net", "test_psnr_n"] == 24, "one row, both splits"
    assert math.isnan(t2.loc["s3net", "params_m"]) and "n/a" in to_markdown(table(report, "table2"))


def test_bad_extra_is_a_clear_error(standard, tmp_path, capsys):
    good = tmp_path / "ok.csv"
    scores([18.0] * 3, [0.7] * 3).to_csv(good, index=False)
    (tmp_path / "bad.csv").write_text("scene_id,psnr\nImage000,18\n")
    (tmp_path / "elsewhere.csv").write_text("scene_id,psnr,ssim,lpips,mps\nImage999,18,0.7,,\n")
    cases = {"s3net": "expected NAME=CSV", f"s3net={tmp_path / 'none.csv'}": "does not exist",
             f"s3net={tmp_path / 'bad.csv'}": "missing column", f"mbnet={good}": "already an experiment",
             f"s3net:train={good}": "is not one of val, test", f"s3net={tmp_path / 'elsewhere.csv'}": "none of its"}
    for spec, message in cases.items():
        with pytest.raises(ReportError, match=message) as error:
            build_report([standard], extras=[spec])
        assert "--extra" in str(error.value), spec
    with pytest.raises(ReportError, match="given twice for the val split"):
        build_report([standard], extras=[f"x={good}", f"x:val={good}"])
    assert main(["report", str(standard), "--out", str(tmp_path / "o"), "--extra", "nonsense"]) == 2
    assert "--extra 'nonsense'" in capsys.readouterr().err


def test_markdown_rows_have_equal_cells_and_latex_is_balanced(standard_report):
    for t in standard_report.tables:
        md = to_markdown(t)
        for block in md.split("\n\n"):
            rows = [line for line in block.splitlines() if line.startswith("|")]
            assert len({line.count("|") - line.count("\\|") for line in rows}) <= 1, t.name
        tex = to_latex(t)
        assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") >= 2
        for spec, body in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", tex, flags=re.S):
            lines = [line for line in body.splitlines() if line.endswith("\\\\") and "multicolumn" not in line]
            assert all(line.count(" & ") == len(spec) - 1 for line in lines), t.name
        assert tex.count("{") == tex.count("}")


def test_rendering_is_deterministic(standard, tmp_path):
    render_report([standard], tmp_path / "one")
    render_report([standard], tmp_path / "two")
    for path in sorted((tmp_path / "one" / "tables").iterdir()):
        assert path.read_bytes() == (tmp_path / "two" / "tables" / path.name).read_bytes(), path.name


def test_merge_two_runs_and_refuse_incomparable(tmp_path):
    run = standard_run(seeds=(0,))
    results = pd.DataFrame(run.rows, columns=RESULT_COLUMNS)
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
    f = write_run(tmp_path / "f", results[results.experiment == "identity"], evaluation={"ssim": "uniform7"})
    with pytest.raises(ReportError, match="scored differently"):
        render_report([a, f], tmp_path / "bad")
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
                                    "synthetic": {"train": 2, "val": 3, "test": 3, "size": 32}},
           "train": {"steps": 1, "batch_size": 2}, "eval": {"timing_rounds": 2, "timing_warmup": 0},
           "report": dict(FAST),
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
    for section in ("Provenance", "Table 1", "Table 2", "Table 3", "Visual comparison", "<svg", "synthetic",
                    "How to read the tables", "Timing phase"):
        assert section in html, section
    assert 'src="figures/visual_' in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert ">nan<" not in html.lower() and " nan " not in html.lower()


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
    assert dom.count('<table class="results"') == 4  # Tables 1-4


# --------------------------------------------------------------------------- the level asked, and the page's cells
PINNED_PSNR = np.array([17.2, 18.9, 16.4, 19.8, 21.3, 18.1, 17.7, 20.6, 15.9, 19.2, 22.4, 18.6])  # tests/test_statistics.py


class _Cells(html.parser.HTMLParser):
    """Every ``<table>`` of a page as its rows, each row the texts of its cells (``<td>``/``<th>``), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_the_report_confidence_setting_sets_every_interval(tmp_path):
    """report.confidence 0.8 with 999 resamples, seed 0: the cell's bounds are the pinned 80 % BCa bounds."""
    run = RunBuilder().add("baseline", "mbnet", 0, "val", scores(PINNED_PSNR, np.full(12, 0.7), scenes=SCENES[:12]))
    folder = run.write(tmp_path / "r", report={"confidence": 0.8, "bootstrap_resamples": 999, "bootstrap_seed": 0})
    row = table(build_report([folder]), "table1").frame.iloc[0]
    assert (row["val_psnr_ci_low"], row["val_psnr_ci_high"]) == (pytest.approx(18.075, rel=1e-9),
                                                                   pytest.approx(19.491666666666667, rel=1e-9))


def test_every_quality_cell_of_the_page_shows_the_csv_value_and_interval(standard, tmp_path):
    """The HTML cell text of each Table 1 and Table 3 row: ``mean [low, high]`` from the table's CSV, rounded here."""
    render_report([standard], tmp_path / "out")
    parser = _Cells()
    parser.feed((tmp_path / "out" / "report.html").read_text())
    checked = 0
    for name, header, columns in (("table1", ["Experiment", "PSNR", "SSIM"], ("val_psnr", "val_ssim")),
                                  ("table3", ["Experiment", "Val SSIM", "Val PSNR", "Test MPS"],
                                   ("val_ssim", "val_psnr", "test_mps"))):
        main = next(t for t in parser.tables if t and t[0][:len(header)] == header)  # the first: the table itself
        cells = {row[0]: row[1:] for row in main[1:]}
        frame = pd.read_csv(tmp_path / "out" / "tables" / f"{name}.csv")
        for _, row in frame.iterrows():
            for k, key in enumerate(columns):
                digits = 3 if key.endswith("psnr") else 4
                mean, low, high = row[f"{key}_mean"], row[f"{key}_ci_low"], row[f"{key}_ci_high"]
                if not np.isfinite(mean):
                    continue
                expected = f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
                shown = cells[row["label"]][k]
                assert shown.startswith(expected), (name, row["label"], key, shown, expected)
                checked += 1
    assert checked >= 10
