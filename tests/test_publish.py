"""`bench publish`: the report with the raw files behind it, local paths redacted, and a standalone script that
recomputes the tables from those files alone.

One tiny benchmark (two one-conv experiments and the identity, 3 seeds, 2 training steps on 16 px synthetic
data) is run once for the module and published once; each test reads that publish (or a copy it may change).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

from bench.cli import main
from reports.errors import ReportError
from reports.loading import load_run
from reports.publish import MARKER, RAW_DIR, RECOMPUTE, REDACTED, publish
from reports.redaction import Redactor
from reports.render import render_report
from tests.data_helpers import one_conv_plugin

SEEDS = [0, 1, 2]
RUN_FILES = ["results.csv", "results.json", "data.json", "config.yaml", "protocol.yaml", "timing.csv", "timing.json"]
UNIT_FILES = ["experiment.yaml", "train_log.csv", "metrics_val.csv", "metrics_test.csv"]
SLURM_SETUP = "source {root}/site/venv/bin/activate"


def _config(root: Path) -> dict:
    return {
        "name": "tiny", "plugins": ["publish_test_plugin"], "seeds": SEEDS,
        "data": {"source": "synthetic", "root": str(root / "data"), "size": 16,
                 "synthetic": {"train": 3, "val": 6, "test": 6, "seed": 0, "size": 16}},
        "train": {"steps": 2, "batch_size": 2},
        "eval": {"timing_rounds": 1, "timing_warmup": 0},
        "report": {"table1_reference": None, "table2_reference": "conv", "bootstrap_resamples": 200},
        "launcher": {"slurm": {"setup": [SLURM_SETUP.format(root=root)]}},
        "experiments": [{"name": "conv", "model": "publish_test_one_conv"},
                        {"name": "conv_res", "model": "publish_test_one_conv", "residual": True},
                        {"name": "identity", "model": "identity"}],
    }


def _add_protocol(run_dir: Path) -> None:
    """A protocol.yaml as `bench run` writes it, unless the run wrote one already."""
    if (run_dir / "protocol.yaml").exists():
        return
    from reports.protocol import KEYS, PROTOCOL_FORMAT, keys_of_config

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    document = {"format": PROTOCOL_FORMAT, "written": "2026-01-01T00:00:00+0000", "fixed_from": "the run's first start",
                KEYS: keys_of_config(config)}
    (run_dir / "protocol.yaml").write_text("# protocol.yaml: written once\n" + yaml.safe_dump(document, sort_keys=False))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """``(root, run_dir, dest)``: the tiny run under ``root`` and its publish in ``dest``."""
    from bench.harness.config import load_config
    from bench.harness.data import validation_scenes
    from bench.harness.run import run_benchmark

    root = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as mp:
        for name, folder in (("TORCH_HOME", "torch"), ("HF_HOME", "hf"), ("RELIGHT_BENCH_CACHE", "cache")):
            mp.setenv(name, str(root / folder))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("HF_HUB_CACHE", raising=False)
        (root / "publish_test_plugin.py").write_text(one_conv_plugin("publish_test_one_conv"))
        mp.syspath_prepend(str(root))
        (root / "c.yaml").write_text(yaml.safe_dump(_config(root)))
        run_dir = run_benchmark(load_config(root / "c.yaml", []), root / "runs", progress=False).run_dir
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        config["weights"]["backbone"] = str(root / "site" / "weights" / "resnet50.pth")  # a local weights file
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        _add_protocol(run_dir)
        dest = root / "published"
        page = publish(run_dir, dest, load_scenes=validation_scenes)
    assert page == dest / "report.html"
    return root, Path(run_dir), dest


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def test_publish_writes_the_report_and_the_raw_files_without_weights(site):
    root, run_dir, dest = site
    assert (dest / "report.html").is_file() and (dest / "tables" / "table2.csv").is_file()
    assert (dest / RECOMPUTE).is_file() and (dest / RAW_DIR / "README.md").is_file()
    raw = dest / RAW_DIR
    for name in RUN_FILES:
        assert (raw / name).is_file(), name
    for experiment in ("conv", "conv_res", "identity"):
        for seed in SEEDS:
            for name in UNIT_FILES:
                assert (raw / experiment / f"seed{seed}" / name).is_file(), (experiment, seed, name)
    names = {p.name for p in _files(dest)}
    assert (run_dir / "conv" / "seed0" / "model.pt").is_file() and (run_dir / "conv" / "seed0" / "predictions").is_dir()
    assert not list(dest.rglob("*.pt")), "no weights are published"
    assert not names & {"unit.json", "result.json", "unit.log", ".unit.lock", ".shared.lock", "submission.zip"}
    assert not list(dest.rglob("predictions")) and not list(dest.rglob("checkpoints"))
    assert not [p for p in _files(dest) if p.is_symlink()] and not list(root.glob(".published.*")), "no staging left"
    assert (raw / "protocol.yaml").read_bytes() == (run_dir / "protocol.yaml").read_bytes(), "nothing to redact"
    record = json.loads((dest / MARKER).read_text())
    assert record["published_by"] == "relight-bench publish" and record["source"] == run_dir.name
    assert "conv/seed0/metrics_val.csv" in record["raw_files"]
    readme = (raw / "README.md").read_text()
    assert "config.yaml: data.root" in readme and "model.pt" in readme and REDACTED in readme


def test_no_local_path_is_left_in_any_published_file(site):
    root, run_dir, dest = site
    data_root = root / "data"
    assert json.loads((run_dir / "data.json").read_text())["root"] == str(data_root)
    local = {str(root), str(root.resolve()), str(run_dir), str(data_root)}
    for path in _files(dest):
        content = path.read_bytes()
        for text in local:
            assert text.encode() not in content, f"{path.relative_to(dest)} names {text}"
    results = (run_dir / "results.csv").read_text()
    assert str(root / "torch") in results, "the run names local paths in its free text (looked for ...)"


def test_redacted_files_stay_valid_and_keep_every_number(site):
    _, run_dir, dest = site
    raw = dest / RAW_DIR
    config = yaml.safe_load((raw / "config.yaml").read_text())
    assert config["data"]["root"] == REDACTED and config["launcher"]["slurm"]["setup"] == [REDACTED]
    assert config["weights"]["backbone"] == REDACTED and config["weights"]["lpips"] == "auto"
    assert config["data"]["folders"]["val_input"] == "track1_validation", "relative dataset folders stay"
    assert json.loads((raw / "results.json").read_text())["data"]["root"] == REDACTED
    assert json.loads((raw / "data.json").read_text())["root"] == REDACTED
    loaded = load_run(raw)
    assert len(loaded.results) == 3 * len(SEEDS) * 2
    published = pd.read_csv(raw / "results.csv")
    original = pd.read_csv(run_dir / "results.csv")
    numeric = original.select_dtypes("number").columns
    pd.testing.assert_frame_equal(published[numeric], original[numeric])
    assert published["lpips_weights"].str.contains(REDACTED, regex=False).all()
    for name in ("metrics_val.csv", "train_log.csv"):
        assert (raw / "conv" / "seed1" / name).read_bytes() == (run_dir / "conv" / "seed1" / name).read_bytes()


def test_the_raw_folder_renders_the_same_tables_again(site, tmp_path, monkeypatch):
    from bench.harness.data import validation_scenes

    _, _, dest = site
    monkeypatch.chdir(tmp_path)
    page = render_report([dest / RAW_DIR], tmp_path / "again", load_scenes=validation_scenes)
    assert page.is_file()
    for name in ("table2", "table3"):
        again = (tmp_path / "again" / "tables" / f"{name}.csv").read_text()
        assert again == (dest / "tables" / f"{name}.csv").read_text(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"], "the redacted data root is never created"


def test_publishing_into_the_run_folder_or_a_foreign_folder_is_refused(site, tmp_path, capsys):
    _, run_dir, _ = site
    for dest, words in ((run_dir, "outside the run folder"), (run_dir / "published", "outside the run folder"),
                        (run_dir.parent, "holds the run folder")):
        with pytest.raises(ReportError, match=words):
            publish(run_dir, dest)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["publish", str(run_dir), str(foreign)]) == 2
    assert "not empty and holds no previous publish" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and (foreign / "notes.txt").read_text() == "mine"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ReportError, match="not a folder"):
        publish(run_dir, tmp_path / "a-file")
    assert not (run_dir / "published").exists() and not list(run_dir.glob(".published*"))


def test_republishing_replaces_a_previous_publish_and_never_follows_links(site, tmp_path):
    _, run_dir, dest = site
    run_copy = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, run_copy, symlinks=True)
    secret = tmp_path / "secret.csv"
    secret.write_text("step,epoch,lr,loss,charbonnier,ssim,seconds\n1,0,0.0001,987654.321,0.5,0.1,0.01\n")
    (run_copy / "conv" / "seed0" / "train_log.csv").unlink()
    os.symlink(secret, run_copy / "conv" / "seed0" / "train_log.csv")
    target = tmp_path / "target"
    shutil.copytree(dest, target)
    (target / "stale.txt").write_text("from an older publish")
    publish(run_copy, target)
    assert not (target / "stale.txt").exists(), "a previous publish is replaced whole"
    assert not (target / RAW_DIR / "conv" / "seed0" / "train_log.csv").exists()
    assert (target / RAW_DIR / "conv" / "seed1" / "train_log.csv").is_file()
    assert not any(b"987654" in p.read_bytes() for p in _files(target / RAW_DIR)), "a linked file is never copied"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".target")], "no staging or old copy left"


def _recompute(folder: Path, target: Path | None = None) -> subprocess.CompletedProcess:
    """``python folder/recompute.py target`` in a fresh interpreter, outside the checkout."""
    command = [sys.executable, str(folder / RECOMPUTE), str(target or folder)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=folder, check=False,
                          env={**os.environ, "PYTHONPATH": ""})


def test_recompute_script_agrees_and_catches_a_changed_number(site, tmp_path):
    _, _, dest = site
    copy = tmp_path / "copy"
    shutil.copytree(dest, copy)
    done = _recompute(copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all numbers agree" in done.stdout and "table2 | conv_res | delta_val_psnr" in done.stdout
    table = pd.read_csv(copy / "tables" / "table2.csv")
    row = table.index[table["experiment"] == "conv_res"][0]
    table.loc[row, "val_psnr_mean"] *= 1 + 1e-6
    table.to_csv(copy / "tables" / "table2.csv", index=False)
    changed = _recompute(copy)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "FAIL  table2 | conv_res | val_psnr_mean" in changed.stdout
    elsewhere = _recompute(copy, tmp_path / "nothing")
    assert elsewhere.returncode == 2 and "not a published run" in elsewhere.stderr


def _seed_means(raw: Path, experiment: str, split: str, metric: str) -> pd.Series:
    results = pd.read_csv(raw / "results.csv")
    rows = results[(results["experiment"] == experiment) & (results["split"] == split) & (results["status"] == "done")]
    return rows.set_index("seed")[metric].sort_index()


def test_a_row_is_recomputed_from_the_published_files_alone(site):
    _, _, dest = site
    raw = dest / RAW_DIR
    table = pd.read_csv(dest / "tables" / "table2.csv").set_index("experiment")
    seeds = _seed_means(raw, "conv_res", "val", "psnr")
    assert list(seeds.index) == SEEDS
    per_seed = [pd.read_csv(raw / "conv_res" / f"seed{s}" / "metrics_val.csv").set_index("scene_id")["psnr"]
                for s in SEEDS]
    for seed, images in zip(SEEDS, per_seed):
        assert seeds[seed] == pytest.approx(images.mean(), rel=1e-6), "a seed's mean is the mean of its images"
    row = table.loc["conv_res"]
    assert row["val_psnr_seed_mean"] == pytest.approx(seeds.mean(), rel=1e-12)
    assert row["val_psnr_seed_std"] == pytest.approx(seeds.std(ddof=1), rel=1e-12)
    assert row["val_psnr_seeds"] == len(SEEDS)
    images = pd.concat(per_seed, axis=1).mean(axis=1).sort_index()
    assert row["val_psnr_n"] == len(images) == 6
    assert row["val_psnr_mean"] == pytest.approx(images.mean(), rel=1e-12)
    settings = json.loads((dest / "tables" / "table2.json").read_text())["bootstrap"]
    ci = scipy.stats.bootstrap((images.to_numpy(),), np.mean, n_resamples=settings["resamples"], vectorized=True,
                               confidence_level=settings["confidence"], method="BCa",
                               rng=settings["seed"]).confidence_interval
    assert (row["val_psnr_ci_low"], row["val_psnr_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_a_seed_level_interval_is_recomputed_from_the_published_files_alone(site):
    _, _, dest = site
    table = pd.read_csv(dest / "tables" / "table2.csv").set_index("experiment")
    confidence = json.loads((dest / "tables" / "table2.json").read_text())["bootstrap"]["confidence"]
    row, reference = (_seed_means(dest / RAW_DIR, e, "val", "psnr") for e in ("conv_res", "conv"))
    ci = scipy.stats.ttest_1samp(row.to_numpy(), 0.0).confidence_interval(confidence)
    cell = table.loc["conv_res"]
    assert (cell["val_psnr_seed_ci_low"], cell["val_psnr_seed_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert cell["delta_val_psnr_seed_test"] == "paired", "the same model trained on the same pairs, seed by seed"
    result = scipy.stats.ttest_rel(row.to_numpy(), reference.to_numpy())
    ci = result.confidence_interval(confidence)
    assert cell["delta_val_psnr_seed"] == pytest.approx(row.mean() - reference.mean(), rel=1e-9)
    assert (cell["delta_val_psnr_seed_ci_low"], cell["delta_val_psnr_seed_ci_high"]) == pytest.approx(
        (ci.low, ci.high), rel=1e-9)
    assert cell["delta_val_psnr_seed_p"] == pytest.approx(result.pvalue, rel=1e-9)


@pytest.mark.parametrize("text, expected", [
    ("looked for /home/ann/.cache/torch/x.pth)", f"looked for {REDACTED})"),
    ("dataset in ~/vidit/track1", f"dataset in {REDACTED}"),
    ("C:\\Users\\ann\\data here", f"{REDACTED} here"),
    ("10*log10(1/MSE), a / b, https://example.org/a/b", "10*log10(1/MSE), a / b, https://example.org/a/b"),
    ("<td>x</td> track1_train/input", "<td>x</td> track1_train/input"),
    ("phase 1 (/runs/tiny): P1", "phase 1 (raw): P1"),
    ("/runs/tiny/conv/seed0/x.csv and /runs/tiny2/a", f"raw/conv/seed0/x.csv and {REDACTED}"),
])
def test_redactor_replaces_local_paths_and_keeps_other_text(text, expected):
    redactor = Redactor((("/runs/tiny", "raw"),))
    assert redactor.scrub(text)[0] == expected


def test_publish_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["publish", "--help"])
    out = capsys.readouterr().out
    assert "RUN_DIR" in out and "DEST" in out and "examples:" in out and "recompute.py" in out


@pytest.mark.parametrize("name", ["relighting", "tuned_study", "tuned_study_untuned"])
def test_the_published_runs_recompute_from_their_raw_files(name):
    """docs/results/<name>/ as committed: its recompute.py agrees with every number of its tables."""
    published = Path(__file__).resolve().parents[1] / "docs" / "results" / name
    assert (published / "published.json").is_file(), f"docs/results/{name}/ must be a `bench publish` folder"
    done = subprocess.run([sys.executable, str(published / "recompute.py"), str(published)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "all numbers agree" in done.stdout
    assert not list(published.rglob("*.pt")), "no weights are published"
