"""An adapter from outside the package (``plugins:``) trains, appears in the report, relights and exports."""

from __future__ import annotations

import textwrap
import zipfile

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image

from bench.cli import main

PLUGIN = textwrap.dedent('''
    """A tiny fusion model living outside relight-bench (the guide's minimal adapter)."""
    import torch
    from torch import nn
    from bench import register_model


    class TinyFusion(nn.Module):
        def __init__(self, width: int = 8):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1))

        def forward(self, rgb, depth):
            return self.body(torch.cat([rgb, depth], dim=1))


    @register_model("tiny_plugin_fusion")
    def tiny_plugin_fusion(width: int = 8) -> nn.Module:
        """A 2-layer conv net on RGB + depth (test plugin)."""
        return TinyFusion(width)
''')


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin")
    (root / "tiny_plugin_module.py").write_text(PLUGIN)
    cfg = {"name": "plug", "plugins": ["tiny_plugin_module"],
           "data": {"source": "synthetic", "root": str(root / "data"), "size": 32,
                    "synthetic": {"train": 3, "val": 2, "test": 2, "size": 40}},
           "train": {"steps": 3, "batch_size": 2}, "eval": {"timing_rounds": 1, "timing_warmup": 0},
           "experiments": [{"name": "tiny", "model": "tiny_plugin_fusion", "extra_data": True, "residual": True,
                            "model_args": {"width": 4}}]}
    (root / "c.yaml").write_text(yaml.safe_dump(cfg))
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(root))
    assert main(["run", str(root / "c.yaml"), "--out", str(root / "runs"), "--no-progress"]) == 0
    yield root, root / "runs" / "plug"
    mp.undo()


def test_plugin_adapter_trains_and_appears_in_the_report(plugin_run):
    _, run_dir = plugin_run
    results = pd.read_csv(run_dir / "results.csv")
    assert set(results["model"]) == {"tiny_plugin_fusion"} and (results["steps"] == 3).all()
    assert results["params_m"].iloc[0] == pytest.approx((4 * 4 * 9 + 4 + 4 * 3 * 9 + 3) / 1e6)
    assert "tiny_plugin_fusion" in pd.read_csv(run_dir / "tables" / "table2.csv")["model"].tolist()
    assert ">tiny<" in (run_dir / "report.html").read_text()


def _read_png(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img.convert("RGB"))


def _vidit_depth(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=True).item()["normalized_depth"]


def _relight_by_hand(run_dir: Path, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """The saved ``model.pt`` of experiment tiny run directly: relu(rgb + conv(relu(conv([rgb, depth])))).

    rgb: (H,W,3) uint8, depth: (H,W) float in [0,1]; returns (H,W,3) uint8, rounded as a PNG stores it.
    """
    state = torch.load(run_dir / "tiny" / "seed0" / "model.pt")
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255
    d = torch.from_numpy(depth)[None, None].double()
    w = {k: v.double() for k, v in state.items()}
    hidden = F.relu(F.conv2d(torch.cat([x, d], 1), w["adapter.body.0.weight"], w["adapter.body.0.bias"], padding=1))
    out = torch.relu(x + F.conv2d(hidden, w["adapter.body.2.weight"], w["adapter.body.2.bias"], padding=1))
    return (out[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _max_level_difference(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def test_predict_pixels_equal_a_direct_forward_of_the_saved_model(plugin_run, tmp_path):
    """Native 40x40 (trained at 32): a VIDIT .npy depth and a 16-bit PNG depth (/ 65535), each within 1 level."""
    root, run_dir = plugin_run
    image = root / "data" / "track1_test" / "Image005.png"
    npy = root / "data" / "track1_test" / "Image005.npy"
    depth16 = tmp_path / "depth16.png"
    ramp = np.linspace(0, 65535, 40 * 40).reshape(40, 40).astype(np.uint16)
    Image.fromarray(ramp).save(depth16)
    rgb = _read_png(image)
    written = {}
    for depth_file, depth in ((npy, _vidit_depth(npy)), (depth16, ramp.astype(np.float64) / 65535)):
        out = tmp_path / f"relit_{depth_file.suffix[1:]}.png"
        assert main(["predict", str(run_dir), "--experiment", "tiny", "--image", str(image), "--depth", str(depth_file),
                     "--out", str(out)]) == 0
        with Image.open(out) as img:
            assert img.mode == "RGB"
        written[depth_file.suffix] = _read_png(out)
        expected = _relight_by_hand(run_dir, rgb, depth)
        assert written[depth_file.suffix].shape == expected.shape == (40, 40, 3)
        assert _max_level_difference(written[depth_file.suffix], expected) <= 1, depth_file.name
        assert _max_level_difference(expected, rgb) > 1, "the model changes the image (the check is not vacuous)"
    assert _max_level_difference(written[".npy"], written[".png"]) > 1, "the depth map reaches the output"


def test_predict_refuses_a_depth_of_another_size(plugin_run, tmp_path, capsys):
    root, run_dir = plugin_run
    image = root / "data" / "track1_test" / "Image005.png"
    bad = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(bad)
    assert main(["predict", str(run_dir), "--experiment", "tiny", "--image", str(image), "--depth", str(bad),
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "depth is 8x8" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_export_writes_the_ntire_submission(plugin_run):
    """One PNG per test scene at native size, pixels equal to the saved model run by hand; the challenge's readme."""
    root, run_dir = plugin_run
    assert main(["export", str(run_dir), "--experiment", "tiny"]) == 0
    with zipfile.ZipFile(run_dir / "tiny" / "submission.zip") as archive:
        names = sorted(archive.namelist())
        assert names == ["Image005.png", "Image006.png", "readme.txt"]
        readme = archive.read("readme.txt").decode()
        for scene in ("Image005", "Image006"):
            with archive.open(f"{scene}.png") as png:
                exported = _read_png(png)
            test_dir = root / "data" / "track1_test"
            expected = _relight_by_hand(run_dir, _read_png(test_dir / f"{scene}.png"),
                                        _vidit_depth(test_dir / f"{scene}.npy"))
            assert exported.shape == (40, 40, 3), "exported at the test input's native size"
            assert _max_level_difference(exported, expected) <= 1, scene
    assert "Runtime per image [s] :" in readme and "CPU[1] / GPU[0] : 1" in readme
    assert "Extra Data [1] / No Extra Data [0] : 1" in readme


def test_predict_unknown_experiment_is_a_clear_error(plugin_run, tmp_path, capsys):
    _, run_dir = plugin_run
    assert main(["predict", str(run_dir), "--experiment", "tinny", "--image", "x.png", "--depth", "x.npy",
                 "--out", str(tmp_path / "o.png")]) == 2
    assert "did you mean 'tiny'" in capsys.readouterr().err


def test_predict_imports_a_run_folders_plugins_only_when_asked(plugin_run, tmp_path, capsys, monkeypatch):
    """A run folder someone else wrote lists plugins; predict and export import none of them (one here would
    write a marker file on import) unless ``--plugin`` names it."""
    import shutil
    import sys

    from models import registry

    root, run_dir = plugin_run
    (root / "marker_plugin.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    foreign = shutil.copytree(run_dir, tmp_path / "foreign")
    config = yaml.safe_load((foreign / "config.yaml").read_text())
    config["plugins"] = ["marker_plugin", "tiny_plugin_module"]
    (foreign / "config.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setattr(registry, "_REGISTRY", {k: v for k, v in registry._REGISTRY.items() if k != "tiny_plugin_fusion"})
    monkeypatch.delitem(sys.modules, "tiny_plugin_module", raising=False)
    image = root / "data" / "track1_test" / "Image005.png"
    argv = ["predict", str(foreign), "--experiment", "tiny", "--image", str(image),
            "--depth", str(root / "data" / "track1_test" / "Image005.npy"), "--out", str(tmp_path / "o.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'tiny_plugin_fusion', which is not built in" in err and "marker_plugin, tiny_plugin_module" in err
    assert "pass --plugin MODULE" in err and not (tmp_path / "o.png").exists()
    assert main(["export", str(foreign), "--experiment", "tiny"]) == 2
    assert main(argv + ["--plugin", "tiny_plugin_module"]) == 0
    assert (tmp_path / "o.png").exists()
    assert not (tmp_path / "imported").exists(), "a plugin the run folder lists was imported"
