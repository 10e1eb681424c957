"""IAN and DFuseNet: sizes against the official figures, what is special about each, and Table 4."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import yaml

import bench
from bench.cli import main
from models.dfusenet import DFuseNet, focal_loss, lighting_label
from models.ian import IAN, surface_normals

IAN_OFFICIAL = 2_670_897  # One2One(aux_channels=4): issue 15 / shared/reference/relighting_networks.md
DFUSENET_OFFICIAL = 24_615_255  # Deploy/DFuseNet.py, including four shortcut convs its forward never uses
UNUSED_SHORTCUTS = sum(w * w for w in (48, 96, 192, 384))  # 1x1 bias-free convs of the equal-width BasicBlocks


def test_parameter_counts_match_the_official_models():
    assert bench.count_parameters("ian") == IAN_OFFICIAL
    assert bench.count_parameters("dfusenet") == DFUSENET_OFFICIAL - UNUSED_SHORTCUTS
    assert abs(bench.count_parameters("dfusenet") / DFUSENET_OFFICIAL - 1) < 0.01


def test_models_command_lists_both_with_their_tags(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    ian_line = next(line for line in out.splitlines() if line.startswith("ian "))
    dfuse_line = next(line for line in out.splitlines() if line.startswith("dfusenet "))
    assert "2.67" in ian_line and "relighting,global_residual" in ian_line
    assert "24.42" in dfuse_line and "relighting" in dfuse_line


def test_normals_of_a_plane_are_constant_and_match_numpy_gradient():
    h, w = 12, 10
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    plane = (0.3 + 1e-3 * xs - 5e-4 * ys).astype(np.float32)  # a tilted plane in normalized depth
    normals = surface_normals(torch.from_numpy(plane)[None, None])[0].double().numpy()
    zy, zx = np.gradient(plane * np.float32(65536), 2)  # the official script's rule, in float32 as theirs
    expected = np.stack([-zx, -zy, np.ones_like(plane)]).astype(np.float64)
    expected /= np.linalg.norm(expected, axis=0, keepdims=True)
    assert np.abs(normals - expected).max() < 1e-5
    slope = np.array([-1e-3 * 65536 / 2, 5e-4 * 65536 / 2, 1.0])  # (-dz/dx, -dz/dy, 1) of the plane, by hand
    assert np.abs(normals - (slope / np.linalg.norm(slope))[:, None, None]).max() < 1e-3, "one normal everywhere"
    assert np.allclose((normals ** 2).sum(0), 1, atol=1e-5)


def test_ian_keeps_coarse_outputs_for_deep_supervision_only_while_training():
    torch.manual_seed(0)
    model = IAN().train()
    rgb, depth, target = torch.rand(2, 3, 32, 32), torch.rand(2, 1, 32, 32), torch.rand(2, 3, 32, 32)
    out = model(rgb, depth)
    assert out.shape == (2, 3, 32, 32)
    assert [p.shape[-1] for p in model.pyramid] == [16, 8]
    terms = model.auxiliary_terms(target)
    half = torch.nn.functional.interpolate(target, size=(16, 16), mode="bicubic", align_corners=False)
    assert torch.allclose(terms["ian_half_l1"], (model.pyramid[0] - half).abs().mean())
    model.eval()
    assert model.pyramid == [] and model.auxiliary_terms(target) == {}


def test_dfusenet_guide_is_saved_and_restored_with_the_state_dict():
    torch.manual_seed(0)
    model = DFuseNet().eval()
    guide_rgb, guide_depth = torch.rand(3, 48, 40), torch.rand(1, 48, 40)
    model.set_guide(guide_rgb, guide_depth, "6500_N", "4500_E")
    fresh = DFuseNet().eval()  # a default (mid-grey, 16x16) guide
    rgb, depth = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert not torch.equal(model(rgb, depth), fresh(rgb, depth)), "the guide changes the output"
        fresh.load_state_dict(model.state_dict())
        assert torch.equal(fresh.guide_rgb[0], guide_rgb) and torch.equal(fresh(rgb, depth), model(rgb, depth))
    assert fresh.labels.tolist() == [1, 4, 0, 2]  # N, 6500 and E, 4500 in the team's label order


def test_dfusenet_focal_terms_against_a_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    p = torch.softmax(logits, 1)[0, 1]
    assert torch.allclose(focal_loss(logits, 1), -(1 - p) ** 2 * torch.log(p))
    assert lighting_label("4500_E") == (0, 2) and lighting_label("6500_NW") == (3, 4)
    model = DFuseNet().train()
    model(torch.rand(2, 3, 32, 32), torch.rand(2, 1, 32, 32))
    assert model.auxiliary_terms(torch.rand(2, 3, 32, 32)) == {}, "no terms before the harness sets the labels"
    model.set_guide(torch.rand(3, 32, 32), torch.rand(1, 32, 32), "6500_N", "4500_E")
    model(torch.rand(2, 3, 32, 32), torch.rand(2, 1, 32, 32))
    assert sorted(model.auxiliary_terms(None)) == ["dfusenet_focal_guide_dir", "dfusenet_focal_guide_tmp",
                                                   "dfusenet_focal_input_dir", "dfusenet_focal_input_tmp"]


def _config(tmp_path, experiments, **loss):
    cfg = {"name": "relight", "data": {"source": "synthetic", "root": str(tmp_path / "data"), "size": 32,
                                       "synthetic": {"train": 4, "val": 2, "test": 2, "seed": 0, "size": 32}},
           "train": {"steps": 2, "batch_size": 2}, "loss": {"perceptual": 0.0, **loss},
           "eval": {"timing_rounds": 2, "timing_warmup": 1}, "experiments": experiments}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_ian_with_the_harness_residual_is_a_config_error(tmp_path, capsys):
    path = _config(tmp_path, [{"name": "ian", "model": "ian", "residual": True}])
    assert main(["run", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "experiments[0] (ian)" in err and "add the input twice" in err
    assert not (tmp_path / "data").exists(), "refused before any data is made"


def test_a_run_with_both_gives_table4_with_the_leaderboard_apart(tmp_path, capsys):
    path = _config(tmp_path, [{"name": "identity", "model": "identity"}, {"name": "ian", "model": "ian"},
                              {"name": "dfusenet", "model": "dfusenet"}, {"name": "pgar", "model": "pgar"}])
    assert main(["run", str(path), "--out", str(tmp_path / "runs"), "--no-progress"]) == 0
    run_dir = tmp_path / "runs" / "relight"
    results = pd.read_csv(run_dir / "results.csv")
    dfuse = results[results.experiment == "dfusenet"].iloc[0]
    assert "guide: training scene Image000 under 4500_E" in dfuse.weights  # 4 scenes: no Image014, the first
    assert not results.adapter_terms.any(), "auxiliary terms are off by default"
    assert "ian_half_l1" not in pd.read_csv(run_dir / "ian" / "seed0" / "train_log.csv").columns
    table4 = pd.read_csv(run_dir / "tables" / "table4.csv")
    assert list(table4.experiment) == ["identity", "ian", "dfusenet"], "relighting networks and identity only"
    md = (run_dir / "tables" / "table4.md").read_text()
    assert "NTIRE 2021 Track 1 test leaderboard" in md and "DeepBlueAI (0.17 s/img on V100, self-reported)" in md
    assert md.index("DeepBlueAI") > md.index("| dfusenet"), "leaderboard rows come after the measured ones"
    assert "self-reported" in (run_dir / "report.html").read_text()


def test_adapter_terms_switch_adds_and_logs_them_and_marks_the_row(tmp_path):
    path = _config(tmp_path, [{"name": "ian", "model": "ian"}], adapter_terms=True)
    assert main(["run", str(path), "--out", str(tmp_path / "runs"), "--no-progress"]) == 0
    run_dir = tmp_path / "runs" / "relight"
    log = pd.read_csv(run_dir / "ian" / "seed0" / "train_log.csv")
    assert {"ian_half_l1", "ian_quarter_l1"} <= set(log.columns)
    assert np.allclose(log["loss"], log["charbonnier"] + 1.1 * log["ssim"] + log["ian_half_l1"] + log["ian_quarter_l1"],
                       atol=1e-5)
    assert pd.read_csv(run_dir / "results.csv").adapter_terms.all()
    assert "ian (+ adapter loss terms)" in pd.read_csv(run_dir / "tables" / "table4.csv").label.tolist()


def test_a_guide_scene_that_is_not_a_training_scene_is_a_clear_error(tmp_path, capsys):
    path = _config(tmp_path, [{"name": "dfusenet", "model": "dfusenet", "model_args": {"guide_scene": "Image999"}}])
    assert main(["run", str(path), "--out", str(tmp_path / "runs"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "model_args.guide_scene 'Image999' is not a training scene" in err and "Image000" in err
    assert not (tmp_path / "runs" / "relight" / "results.csv").exists()
