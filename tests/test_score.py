"""`python -m bench score`: a folder of relit PNGs scored against ground truth with the harness's metric code.

The main check: scoring the PNGs a finished run wrote to ``predictions/val`` gives the numbers of its
``metrics_val.csv``.  Every bad input (missing counterpart, corrupt file, transparent alpha, size mismatch, empty
folder, ...) is tested through the CLI in ``tests/test_bad_inputs.py``, which docs/bad_inputs.md mirrors.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from torchvision.models import alexnet

from bench.cli import main
from datasets.io import write_rgba_png
from tests.data_helpers import one_conv_plugin

COLUMNS = ["scene_id", "psnr", "ssim", "lpips", "mps"]

PLUGIN = one_conv_plugin("score_test_one_conv")


def save_alexnet_trunk(path: Path) -> Path:
    """A torchvision-format AlexNet checkpoint of random values (``features.*``): LPIPS computed, values meaningless."""
    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"features.{k}": v for k, v in alexnet(weights=None).features.state_dict().items()}, path)
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 2-step run of a one-conv model, LPIPS on a saved random trunk; ground truth 48x48 scored at ``data.size`` 32.

    Module-scoped (one run for the file), with its own private caches as conftest gives each test.
    """
    root = tmp_path_factory.mktemp("score_run")
    trunk = save_alexnet_trunk(root / "alexnet.pth")
    (root / "score_test_plugin.py").write_text(PLUGIN)
    cfg = {
        "name": "tiny", "plugins": ["score_test_plugin"],
        "data": {"source": "synthetic", "root": str(root / "data"), "size": 32,
                 "synthetic": {"train": 2, "val": 5, "test": 1, "seed": 0, "size": 48}},
        "train": {"steps": 2, "batch_size": 2},
        "eval": {"splits": ["val"], "timing_rounds": 1, "timing_warmup": 0},
        "weights": {"lpips": str(trunk)},
        "experiments": [{"name": "conv", "model": "score_test_one_conv", "residual": True}],
    }
    (root / "c.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.MonkeyPatch.context() as patch:
        for name, folder in (("TORCH_HOME", "torch"), ("HF_HOME", "hf"), ("RELIGHT_BENCH_CACHE", "bench")):
            patch.setenv(name, str(root / "caches" / folder))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.syspath_prepend(str(root))
        code = main(["run", str(root / "c.yaml"), "--out", str(root / "runs"), "--no-progress"])
    assert code == 0
    exp = root / "runs" / "tiny" / "conv" / "seed0"
    return SimpleNamespace(predictions=exp / "predictions" / "val", metrics=exp / "metrics_val.csv",
                           gt=root / "data" / "track1_validation_gt", trunk=trunk)


def score(capsys, *args: str) -> tuple[int, str, str]:
    """``python -m bench score ARGS`` through the CLI's main: (exit status, stdout, stderr)."""
    code = main(["score", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_scoring_a_runs_written_pngs_gives_its_metrics_csv(finished_run, tmp_path, capsys):
    """The issue's test: the written PNGs, scored from disk (GT resized 48 -> 32 by --size), match metrics_val.csv."""
    out = tmp_path / "scores.csv"
    code, stdout, err = score(capsys, finished_run.predictions, finished_run.gt, "--size", 32, "--out", out,
                              "--lpips", finished_run.trunk)
    assert code == 0, err
    run_rows, scored = pd.read_csv(finished_run.metrics), pd.read_csv(out)
    assert list(scored.columns) == COLUMNS
    assert list(scored.scene_id) == list(run_rows.scene_id) and len(scored) == 5
    assert scored[COLUMNS[1:]].notna().all().all(), "LPIPS and MPS computed on the saved trunk"
    np.testing.assert_allclose(scored.psnr, run_rows.psnr, rtol=0, atol=1e-4)
    for metric in ("ssim", "lpips", "mps"):
        np.testing.assert_allclose(scored[metric], run_rows[metric], rtol=0, atol=1e-5, err_msg=metric)
    assert f"PSNR (dB)  {run_rows.psnr.mean():9.3f}  [" in stdout
    assert f"MPS        {run_rows.mps.mean():9.4f}  [" in stdout
    assert "95 % CI (bootstrap, 2000 resamples, seed 0)" in stdout and "nan" not in stdout.lower()


def test_without_size_a_size_mismatch_is_refused(finished_run, tmp_path, capsys):
    code, _, err = score(capsys, finished_run.predictions, finished_run.gt, "--out", tmp_path / "s.csv")
    assert code == 2 and "--size" in err and "Image" in err and "48x48" in err
    assert not (tmp_path / "s.csv").exists()


def test_printed_means_and_intervals_match_the_csv(finished_run, tmp_path, capsys):
    """The printed bounds are a bootstrap interval around the printed mean, from the per-image rows written."""
    out = tmp_path / "s.csv"
    code, stdout, err = score(capsys, finished_run.predictions, finished_run.gt, "--size", 32, "--out", out,
                              "--lpips", "false")
    assert code == 0, err
    rows = pd.read_csv(out)
    line = next(line for line in stdout.splitlines() if line.startswith("SSIM   "))
    mean, low, high = map(float, line.replace("[", " ").replace("]", " ").replace(",", " ").split()[1:4])
    assert mean == pytest.approx(rows.ssim.mean(), abs=5e-5)
    assert rows.ssim.min() - 1e-4 <= low < mean < high <= rows.ssim.max() + 1e-4
    assert "n/a (LPIPS not computed)" in stdout and "nan" not in stdout.lower()
    assert rows.lpips.isna().all() and rows.mps.isna().all()


def _write_pairs(tmp_path: Path, *, count: int = 3, hw: tuple[int, int] = (24, 36), rgba_gt: bool = False,
                 noise: int = 30) -> tuple[Path, Path, dict]:
    """``pred/ImageNNN.png`` (RGB) and ``gt/ImageNNN.png`` (RGB, or VIDIT's RGBA with alpha 255); returns the arrays."""
    rng = np.random.default_rng(3)
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir(), gt_dir.mkdir()
    arrays = {}
    for k in range(count):
        scene = f"Image{300 + k}"
        truth = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        pred = np.clip(truth.astype(np.int64) + rng.integers(-noise * (k + 1), noise * (k + 1) + 1, truth.shape), 0,
                       255).astype(np.uint8)
        Image.fromarray(pred).save(pred_dir / f"{scene}.png")
        if rgba_gt:
            write_rgba_png(gt_dir / f"{scene}.png", truth)
        else:
            Image.fromarray(truth).save(gt_dir / f"{scene}.png")
        arrays[scene] = (pred, truth)
    return pred_dir, gt_dir, arrays


def _psnr_by_hand(pred: np.ndarray, truth: np.ndarray) -> float:
    return 10 * math.log10(1 / np.mean((pred.astype(np.float64) / 255 - truth.astype(np.float64) / 255) ** 2))


def test_rgba_ground_truth_with_opaque_alpha_is_accepted(tmp_path, capsys):
    pred_dir, gt_dir, arrays = _write_pairs(tmp_path, rgba_gt=True)
    with Image.open(gt_dir / "Image300.png") as img:
        assert img.mode == "RGBA"
    out = tmp_path / "s.csv"
    code, _, err = score(capsys, pred_dir, gt_dir, "--out", out)
    assert code == 0, err
    rows = pd.read_csv(out)
    assert list(rows.scene_id) == ["Image300", "Image301", "Image302"]
    expected = [_psnr_by_hand(*arrays[s]) for s in rows.scene_id]
    np.testing.assert_allclose(rows.psnr, expected, rtol=0, atol=1e-4)


def test_uniform7_changes_ssim_to_scikit_images(tmp_path, capsys):
    from pytorch_msssim import ssim as gaussian_reference
    from skimage.metrics import structural_similarity

    pred_dir, gt_dir, arrays = _write_pairs(tmp_path, hw=(40, 48))
    save_alexnet_trunk(tmp_path / "alexnet.pth")
    scored = {}
    for kind in ("gaussian", "uniform7"):
        out = tmp_path / f"{kind}.csv"
        code, stdout, err = score(capsys, pred_dir, gt_dir, "--ssim", kind, "--out", out, "--lpips",
                                  tmp_path / "alexnet.pth")
        assert code == 0, err
        assert ("7x7 uniform window" in stdout) == (kind == "uniform7")
        scored[kind] = pd.read_csv(out)
    for row in scored["uniform7"].itertuples():
        pred, truth = arrays[row.scene_id]
        assert row.ssim == pytest.approx(structural_similarity(pred, truth, channel_axis=-1), abs=1e-6)
        assert row.mps == pytest.approx(0.5 * (row.ssim + 1 - row.lpips), abs=1e-6)
    for row in scored["gaussian"].itertuples():
        x, y = (torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255 for a in arrays[row.scene_id])
        assert row.ssim == pytest.approx(float(gaussian_reference(x, y, data_range=1.0)), abs=1e-6)
    assert (scored["gaussian"].ssim - scored["uniform7"].ssim).abs().max() > 1e-3
    pd.testing.assert_series_equal(scored["gaussian"].psnr, scored["uniform7"].psnr)
    pd.testing.assert_series_equal(scored["gaussian"].lpips, scored["uniform7"].lpips)


def test_size_resizes_both_sides_to_the_same_square(tmp_path, capsys):
    """A 24x36 prediction against a 48x72 ground truth of the same picture: --size 24 makes them comparable."""
    rng = np.random.default_rng(5)
    small = np.kron(rng.integers(0, 256, (12, 18, 3), dtype=np.uint8), np.ones((2, 2, 1), np.uint8))
    large = np.kron(small, np.ones((2, 2, 1), np.uint8))  # the same blocks at twice the size
    (tmp_path / "pred").mkdir(), (tmp_path / "gt").mkdir()
    Image.fromarray(small).save(tmp_path / "pred" / "Image001.png")
    Image.fromarray(large).save(tmp_path / "gt" / "Image001.png")
    code, _, err = score(capsys, tmp_path / "pred", tmp_path / "gt", "--out", tmp_path / "s.csv")
    assert code == 2 and "--size" in err
    code, _, err = score(capsys, tmp_path / "pred", tmp_path / "gt", "--size", 24, "--out", tmp_path / "s.csv")
    assert code == 0, err
    row = pd.read_csv(tmp_path / "s.csv").iloc[0]
    assert row.psnr > 20, "the same picture once both are 24x24 (a 36-wide side centre-cropped)"


def test_out_csv_is_written_atomically_with_the_users_umask(tmp_path, capsys):
    pred_dir, gt_dir, _ = _write_pairs(tmp_path)
    out = tmp_path / "results" / "scores.csv"
    old = os.umask(0o022)
    try:
        code, stdout, err = score(capsys, pred_dir, gt_dir, "--out", out)
    finally:
        os.umask(old)
    assert code == 0, err
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert [p.name for p in out.parent.iterdir()] == ["scores.csv"], "no temporary file left beside it"
    assert out.stat().st_mode & 0o777 == 0o644
    assert f"per-image scores: {out}" in stdout
    out.write_text("previous\n")
    (pred_dir / "Image301.png").write_bytes(b"\x89PNG broken")
    code, _, _ = score(capsys, pred_dir, gt_dir, "--out", out)
    assert code == 2 and out.read_text() == "previous\n", "a failed scoring leaves the old CSV untouched"


def test_default_out_is_scores_csv_in_the_prediction_folder_and_is_not_rescored(tmp_path, capsys):
    pred_dir, gt_dir, _ = _write_pairs(tmp_path)
    assert score(capsys, pred_dir, gt_dir)[0] == 0
    assert len(pd.read_csv(pred_dir / "scores.csv")) == 3
    assert score(capsys, pred_dir, gt_dir)[0] == 0, "the CSV beside the images is not taken for an image"


def test_degenerate_cases_print_na_with_a_reason_never_nan(tmp_path, capsys):
    pred_dir, gt_dir, _ = _write_pairs(tmp_path, count=1)
    code, stdout, err = score(capsys, pred_dir, gt_dir, "--out", tmp_path / "one.csv", "--lpips", "false")
    assert code == 0, err
    assert "n/a (one image)" in stdout and "nan" not in stdout.lower()
    same = tmp_path / "same"
    same.mkdir()
    for name in ("Image300.png", "Image301.png"):
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(same / name)
    code, stdout, err = score(capsys, same, same, "--out", tmp_path / "same.csv", "--lpips", "false")
    assert code == 0, err
    psnr_line = next(line for line in stdout.splitlines() if line.startswith("PSNR"))
    assert "inf" in psnr_line and "n/a (" in psnr_line
    ssim_line = next(line for line in stdout.splitlines() if line.startswith("SSIM   "))
    assert "1.0000  n/a (zero variance)" in ssim_line and "nan" not in stdout.lower()
