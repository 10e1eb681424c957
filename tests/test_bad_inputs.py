"""Every malformed input a user can give, in one table per command (`bench run`, `bench score`): exit status 2,
a message naming the file or key and what was expected, no traceback, no partial results.  docs/bad_inputs.md
lists the same cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.cli import main
from datasets.io import write_depth_npy, write_rgba_png
from datasets.synthetic import SyntheticSpec, generate
from tests.test_safe_reading import forged_npy_header, forged_png, payload_npy

TRAIN_IN = Path("track1_train/input")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("pristine") / "vidit", SyntheticSpec(train=2, val=1, test=1, size=16),
                    workers=1, progress=False)


def _config(tmp_path: Path, data_root: Path, **over) -> Path:
    cfg = {"name": "bad", "data": {"source": "vidit", "root": str(data_root), "size": 16},
           "train": {"steps": 1, "batch_size": 2}, "experiments": [{"name": "ref", "model": "identity"}]}
    cfg.update(over)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _none(*_effects) -> list[str]:
    """Breakers that only change files return no extra CLI arguments."""
    return []


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _write_16bit_grey(path: Path) -> None:
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(path)


def _overwrite(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _plant_payload(path: Path, marker: Path) -> None:
    """A depth file whose pickle would create ``marker`` (``open(marker, "w")``) if it were unpickled."""
    path.write_bytes(payload_npy("open", marker))


# case id -> (what to break, expected message fragment); each function gets (tmp_path, data_root, config_path)
# and returns the extra CLI arguments.
CASES = {
    "yaml_syntax": (lambda t, d, c: _none(c.write_text("name: x\nexperiments: [\n")), "YAML syntax error"),
    "unknown_key": (lambda t, d, c: _none(c.write_text(c.read_text() + "trian: {steps: 1}\n")), "did you mean 'train'"),
    "wrong_type": (lambda t, d, c: _none(c.write_text(c.read_text().replace("steps: 1", "steps: many"))),
                   "train.steps: expected an integer"),
    "unknown_model": (lambda t, d, c: ["--set", "experiments.ref.model=mbnett"], "Did you mean 'mbnet'"),
    "unknown_plugin": (lambda t, d, c: ["--set", "plugins=[no_such_module_xyz]"], "cannot import 'no_such_module_xyz'"),
    "set_unknown_key": (lambda t, d, c: ["--set", "data.sizee=8"], "did you mean 'data.size'"),
    "missing_data_folder": (lambda t, d, c: _none(shutil.rmtree(d)), "does not exist"),
    "empty_data_folder": (lambda t, d, c: _none([p.unlink() for p in (d / TRAIN_IN).iterdir()]), "no input images found"),
    "corrupt_png": (lambda t, d, c: _none((d / TRAIN_IN / "Image000.png").write_bytes(b"\x89PNG garbage")), "Image000.png"),
    "truncated_png": (lambda t, d, c: _none(_truncate(d / TRAIN_IN / "Image001.png")), "Image001.png"),
    "16bit_png": (lambda t, d, c: _none(_write_16bit_grey(d / TRAIN_IN / "Image000.png")), "16-bit"),
    "wrong_shape_depth": (lambda t, d, c: _none(write_depth_npy(d / TRAIN_IN / "Image000.npy", np.zeros((8, 16)))),
                          "Image000.npy"),
    "nonfinite_depth": (lambda t, d, c: _none(write_depth_npy(d / TRAIN_IN / "Image001.npy", np.full((16, 16), np.nan))),
                        "non-finite"),
    "npy_not_depth": (lambda t, d, c: _none(np.save(d / TRAIN_IN / "Image000.npy", np.array("hello"))), "Image000.npy"),
    "truncated_npy": (lambda t, d, c: _none(_truncate(d / TRAIN_IN / "Image001.npy")), "Image001.npy"),
    "pickle_payload_npy": (lambda t, d, c: _none(_plant_payload(d / TRAIN_IN / "Image001.npy", t / "marker")),
                           "Image001.npy: refused to load io.open"),
    "not_npy_depth": (lambda t, d, c: _none(_overwrite(d / TRAIN_IN / "Image000.npy", b"\x80\x03N.")),
                      "Image000.npy: not a readable .npy depth file (no .npy signature"),
    "huge_npy_header": (lambda t, d, c: _none(_overwrite(d / TRAIN_IN / "Image000.npy", forged_npy_header((10**5,) * 2))),
                        "Image000.npy: its .npy header promises an array of shape (100000, 100000)"),
    "oversized_depth_file": (lambda t, d, c: _none(write_depth_npy(d / TRAIN_IN / "Image001.npy", np.zeros((200, 200)))),
                             "Image001.npy: pickled depth file is"),
    "png_bomb_header": (lambda t, d, c: _none(_overwrite(d / TRAIN_IN / "Image000.png", forged_png(30000, 30000))),
                        "Image000.png: image is 30000x30000"),
    "png_over_max_pixels": (lambda t, d, c: ["--set", "data.max_pixels=100"], "more than the limit of 100 pixels"),
    "size_mismatch": (lambda t, d, c: _none(Image.new("RGBA", (12, 16)).save(d / "track1_train/target/Image000.png")),
                      "Image000.png"),
    "missing_target": (lambda t, d, c: _none((d / "track1_train/target/Image001.png").unlink()), "Image001.png"),
    "best_without_validation": (lambda t, d, c: ["--set", "eval.weights=best"], "eval.weights: best needs train.val_every"),
    "holdout_too_large": (lambda t, d, c: ["--set", "train.holdout=2"], "train.holdout: holding out 2 of the 2"),
    "ema_decay_outside": (lambda t, d, c: ["--set", "train.ema_decay=1.5"], "train.ema_decay: expected a decay in"),
    "accumulate_zero": (lambda t, d, c: ["--set", "train.accumulate=0"], "train.accumulate: expected an integer >= 1"),
    "accumulate_not_dividing": (lambda t, d, c: ["--set", "train.batch_size=3", "--set", "train.accumulate=2"],
                                "train.accumulate: 2 micro-batches do not split train.batch_size 3"),
    "ema_weights_without_ema": (lambda t, d, c: ["--set", "eval.weights=ema_last"],
                                "eval.weights: ema_last scores the moving average"),
    "unwritable_output": (lambda t, d, c: _none((t / "runs").write_text("a file")), "not writable"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_answered(case, pristine, tmp_path, capsys):
    data_root = tmp_path / "vidit"
    shutil.copytree(pristine, data_root)
    config = _config(tmp_path, data_root)
    breaker, expected = CASES[case]
    extra = breaker(tmp_path, data_root, config)
    code = main(["run", str(config), "--out", str(tmp_path / "runs"), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err, err
    assert not list(tmp_path.glob("runs/**/results.csv")), "no partial results"


def test_grey_8bit_png_is_accepted(pristine, tmp_path, capsys):
    data_root = tmp_path / "vidit"
    shutil.copytree(pristine, data_root)
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(data_root / TRAIN_IN / "Image000.png")
    code = main(["data", "check", str(_config(tmp_path, data_root))])
    assert code == 0, capsys.readouterr().err


# --- `bench score PRED_DIR GT_DIR` ------------------------------------------------------------------------------


@pytest.fixture
def score_folders(tmp_path) -> tuple[Path, Path]:
    """``pred/`` and ``gt/`` with Image300..302: 16x16 RGB predictions, VIDIT-style RGBA ground truth (alpha 255)."""
    rng = np.random.default_rng(0)
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir(), gt.mkdir()
    for scene in ("Image300", "Image301", "Image302"):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(pred / f"{scene}.png")
        write_rgba_png(gt / f"{scene}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return pred, gt


def _see_through_alpha(path: Path) -> None:
    rgba = np.full((16, 16, 4), 255, np.uint8)
    rgba[:2, :3, 3] = 128
    Image.fromarray(rgba, mode="RGBA").save(path)


def _shrink_all(folder: Path, side: int) -> None:
    for path in folder.glob("*.png"):
        Image.new("RGB", (side, side)).save(path)


# case id -> (what to break, expected message fragment); each function gets (tmp_path, pred_dir, gt_dir) and returns
# the extra CLI arguments.
SCORE_CASES = {
    "score_missing_folder": (lambda t, p, g: _none(shutil.rmtree(p)), "prediction folder"),
    "score_empty_folder": (lambda t, p, g: _none([f.unlink() for f in p.iterdir()]), "no prediction images found"),
    "score_missing_counterpart": (lambda t, p, g: _none((g / "Image301.png").unlink()),
                                  "its ground truth " + "{gt}/Image301.png is missing"),
    "score_duplicate_scene": (lambda t, p, g: _none(shutil.copy(p / "Image300.png", p / "Image300.PNG")),
                              "appears twice"),
    "score_corrupt_png": (lambda t, p, g: _none((p / "Image300.png").write_bytes(b"\x89PNG garbage")), "Image300.png"),
    "score_truncated_png": (lambda t, p, g: _none(_truncate(g / "Image301.png")), "Image301.png"),
    "score_16bit_png": (lambda t, p, g: _none(_write_16bit_grey(p / "Image302.png")), "16-bit"),
    "score_transparent_alpha": (lambda t, p, g: _none(_see_through_alpha(g / "Image300.png")),
                                "alpha channel is not opaque"),
    "score_size_mismatch": (lambda t, p, g: _none(Image.new("RGB", (20, 16)).save(g / "Image302.png")),
                            "pass --size S"),
    "score_too_small": (lambda t, p, g: _none(_shrink_all(p, 8), _shrink_all(g, 8)), "too small for the gaussian SSIM"),
    "score_bad_size": (lambda t, p, g: ["--size", "0"], "--size: expected a positive number"),
    "score_out_is_folder": (lambda t, p, g: ["--out", str(t)], "--out"),
    "score_unwritable_out": (lambda t, p, g: _none((t / "blocked").write_text("a file"))
                             + ["--out", str(t / "blocked" / "s.csv")], "--out: cannot write"),
    "score_lpips_required": (lambda t, p, g: ["--lpips", "true"], "--lpips"),
}


@pytest.mark.parametrize("case", sorted(SCORE_CASES))
def test_bad_score_input_is_answered(case, score_folders, tmp_path, capsys):
    pred, gt = score_folders
    breaker, expected = SCORE_CASES[case]
    extra = breaker(tmp_path, pred, gt)
    code = main(["score", str(pred), str(gt), "--out", str(tmp_path / "s.csv"), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected.format(gt=gt) in err, err
    assert not list(tmp_path.rglob("*.csv")), "no partial scores"


def test_docs_table_lists_every_case():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "bad_inputs.md").read_text()
    for case in [*CASES, *SCORE_CASES]:
        assert f"`{case}`" in doc, case
