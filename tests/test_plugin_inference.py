"""An adapter from outside the package (``plugins:``) trains, appears in the report, relights and exports."""

from __future__ import annotations

import textwrap
import zipfile

import numpy as np
import pandas as pd
import pytest
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
           "train": {"steps": 3, "batch_size": 2}, "eval": {"timing_runs": 1, "timing_warmup": 0},
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


def test_predict_relights_any_size_with_npy_or_16bit_png(plugin_run, tmp_path, capsys):
    root, run_dir = plugin_run
    image = root / "data" / "track1_test" / "Image005.png"
    depth = root / "data" / "track1_test" / "Image005.npy"
    out = tmp_path / "relit.png"
    assert main(["predict", str(run_dir), "--experiment", "tiny", "--image", str(image), "--depth", str(depth),
                 "--out", str(out)]) == 0
    with Image.open(out) as img:
        assert img.size == (40, 40) and img.mode == "RGB"
    depth16 = tmp_path / "depth16.png"
    Image.fromarray((np.linspace(0, 65535, 40 * 40).reshape(40, 40)).astype(np.uint16)).save(depth16)
    assert main(["predict", str(run_dir), "--experiment", "tiny", "--image", str(image), "--depth", str(depth16),
                 "--out", str(tmp_path / "relit16.png")]) == 0
    bad = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(bad)
    assert main(["predict", str(run_dir), "--experiment", "tiny", "--image", str(image), "--depth", str(bad),
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "depth is 8x8" in capsys.readouterr().err


def test_export_writes_the_ntire_submission(plugin_run):
    _, run_dir = plugin_run
    assert main(["export", str(run_dir), "--experiment", "tiny"]) == 0
    with zipfile.ZipFile(run_dir / "tiny" / "submission.zip") as archive:
        names = sorted(archive.namelist())
        assert names == ["Image005.png", "Image006.png", "readme.txt"]
        readme = archive.read("readme.txt").decode()
        with archive.open("Image005.png") as png, Image.open(png) as img:
            assert img.size == (40, 40), "exported at the test input's native size"
    assert "Runtime per image [s] :" in readme and "CPU[1] / GPU[0] : 1" in readme
    assert "Extra Data [1] / No Extra Data [0] : 1" in readme


def test_predict_unknown_experiment_is_a_clear_error(plugin_run, tmp_path, capsys):
    _, run_dir = plugin_run
    assert main(["predict", str(run_dir), "--experiment", "tinny", "--image", "x.png", "--depth", "x.npy",
                 "--out", str(tmp_path / "o.png")]) == 2
    assert "did you mean 'tiny'" in capsys.readouterr().err
