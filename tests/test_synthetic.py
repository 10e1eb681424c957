"""The built-in synthetic dataset: deterministic, mirror-exact, really relit, and in VIDIT's file formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datasets.errors import DataError
from datasets.conditions import DIRECTIONS, Condition
from datasets.io import read_depth, read_rgb
from datasets.synthetic import (
    PAPER_CONDITIONS,
    RENDERER_VERSION,
    Box,
    Scene3D,
    SyntheticSpec,
    Texture,
    generate,
    project,
    render,
    render_conditions,
    scene_for_index,
    tree,
    writer,
)

TINY = SyntheticSpec(train=3, val=2, test=2, seed=5, size=32)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- 1. determinism -------------------------------------------------------------------------------------------------


def test_generation_is_byte_identical_across_runs_and_worker_counts(tmp_path):
    a = tree_bytes(generate(tmp_path / "a", TINY, workers=1, progress=False))
    b = tree_bytes(generate(tmp_path / "b", TINY, workers=1, progress=False))
    c = tree_bytes(generate(tmp_path / "c", TINY, workers=2, progress=False))
    assert len(a) == 3 * 3 + 2 * 3 + 2 * 3 + 3 * (len(PAPER_CONDITIONS) + 1) + 1
    assert a.keys() == b.keys() == c.keys()
    for name in a:
        assert a[name] == b[name], f"{name} differs between two identical runs"
        assert a[name] == c[name], f"{name} differs between workers=1 and workers=2"
    # the comparison can fail: another seed gives other bytes
    d = tree_bytes(generate(tmp_path / "d", SyntheticSpec(train=3, val=2, test=2, seed=6, size=32), workers=1,
                            progress=False))
    assert d["track1_train/input/Image000.png"] != a["track1_train/input/Image000.png"]


def test_scene_for_index_is_deterministic_and_varies():
    assert scene_for_index(0, 7) == scene_for_index(0, 7)
    assert scene_for_index(0, 7) != scene_for_index(0, 8)
    assert scene_for_index(0, 7) != scene_for_index(1, 7)
    counts = {len(scene_for_index(0, i).objects) for i in range(30)}
    assert counts <= set(range(3, 8)) and len(counts) >= 3
    kinds = {type(o).__name__ for i in range(30) for o in scene_for_index(0, i).objects}
    assert kinds == {"Sphere", "Cylinder", "Box"}


def test_spec_key_is_stable_and_sensitive():
    assert SyntheticSpec().key() == SyntheticSpec().key()
    assert SyntheticSpec(input="6500-n").key() == SyntheticSpec().key()  # normalised condition names
    keys = {SyntheticSpec().key(), SyntheticSpec(seed=1).key(), SyntheticSpec(size=128).key(),
            SyntheticSpec(train=25).key(), SyntheticSpec(target="4500_W").key(), SyntheticSpec(conditions=("6500_N",)).key()}
    assert len(keys) == 6
    with pytest.raises(DataError):
        SyntheticSpec(target="4000_E")


# --- 2. mirror exactness --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 33])
def test_mirrored_scene_under_mirrored_light_is_the_flipped_image(size):
    for index in range(4):
        scene = scene_for_index(11, index)
        mirrored = scene.mirrored()
        assert mirrored != scene and mirrored.mirrored() == scene
        for direction in DIRECTIONS:
            cond = Condition(4500 if index % 2 else 6500, direction)
            rgb, depth = render(scene, cond, size)
            rgb_m, depth_m = render(mirrored, cond.mirrored(), size)
            diff = np.abs(rgb_m.astype(int) - np.fliplr(rgb).astype(int))
            assert diff.max() <= 1, f"scene {index} {cond}: mirrored render differs by up to {diff.max()}"
            assert np.abs(depth_m - np.fliplr(depth)).max() <= 1e-3


def test_mirror_check_can_fail_with_the_unmirrored_light():
    scene = scene_for_index(11, 0)
    rgb, _ = render(scene, "4500_E", 48)
    wrong, _ = render(scene.mirrored(), "4500_E", 48)  # should have been 4500_W
    assert np.abs(wrong.astype(int) - np.fliplr(rgb).astype(int)).max() > 50


# --- 3. relighting is real ------------------------------------------------------------------------------------------


def test_input_and_target_conditions_differ_in_shadows_and_colour():
    for index in range(3):
        images, _ = render_conditions(scene_for_index(0, index), ["6500_N", "4500_E", "6500_E"], 64)
        n, e45, e65 = (images[c].astype(np.float64) for c in ("6500_N", "4500_E", "6500_E"))
        assert np.abs(n - e45).mean() > 8.0
        # same temperature, other direction: shading and shadows move on a sizeable part of the image
        luminance_change = np.abs(n.mean(-1) - e65.mean(-1))
        assert (luminance_change > 40).mean() > 0.03
        # same direction, lower temperature: warmer (more red relative to blue)
        ratio = lambda im: im[..., 0].mean() / max(im[..., 2].mean(), 1.0)  # noqa: E731
        assert ratio(e45) > ratio(e65) * 1.15


def test_two_scenes_render_differently():
    a, da = render(scene_for_index(0, 0), "6500_N", 48)
    b, db = render(scene_for_index(0, 1), "6500_N", 48)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 10
    assert np.abs(da - db).max() > 0.05


def test_a_box_casts_its_shadow_away_from_the_light():
    grey = Texture("solid", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    scene = Scene3D(grey, (Box((0.0, 1.0, 2.0), (0.5, 1.0, 0.5), 0.0, grey),))
    size = 96
    west = tuple(int(v) for v in project((-1.6, 0.0, 2.0), size))
    east = tuple(int(v) for v in project((1.6, 0.0, 2.0), size))
    lit_from_east, _ = render(scene, "6500_E", size)
    lit_from_west, _ = render(scene, "6500_W", size)
    lit_from_north, _ = render(scene, "6500_N", size)
    assert lit_from_east[west].mean() + 50 < lit_from_east[east].mean()  # shadow falls to the west
    assert lit_from_west[east].mean() + 50 < lit_from_west[west].mean()
    assert abs(int(lit_from_north[west].mean()) - int(lit_from_north[east].mean())) <= 2  # neither shadowed
    assert lit_from_north[west].mean() > lit_from_east[west].mean() + 50


# --- 4. file formats and folder handling ----------------------------------------------------------------------------


def test_files_are_in_vidit_format(tmp_path):
    root = generate(tmp_path / "data", TINY, workers=0, progress=False)
    assert root == tmp_path / "data"
    names = lambda folder: sorted(p.name for p in (root / folder).iterdir())  # noqa: E731
    assert names("track1_train/input") == ["Image000.npy", "Image000.png", "Image001.npy", "Image001.png",
                                           "Image002.npy", "Image002.png"]
    assert names("track1_train/target") == ["Image000.png", "Image001.png", "Image002.png"]
    assert names("track1_validation") == ["Image003.npy", "Image003.png", "Image004.npy", "Image004.png"]
    assert names("track1_validation_gt") == ["Image003.png", "Image004.png"]
    assert names("track1_test") == ["Image005.npy", "Image005.png", "Image006.npy", "Image006.png"]
    assert names("track1_test_gt") == ["Image005.png", "Image006.png"]
    full = names("vidit_full")
    assert "Image001_6500_NE.png" in full and "Image002_4500_W.png" in full and "Image000.npy" in full
    assert len(full) == 3 * (len(PAPER_CONDITIONS) + 1)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no partial folder left behind

    for png in root.rglob("*.png"):
        with Image.open(png) as img:
            assert img.format == "PNG" and img.mode == "RGBA" and img.size == (32, 32)
            rgba = np.asarray(img)
        assert rgba.dtype == np.uint8 and (rgba[..., 3] == 255).all()
    for npy in root.rglob("*.npy"):
        raw = np.load(npy, allow_pickle=True).item()
        assert isinstance(raw, dict) and {"normalized_depth", "ref_center_dis"} <= set(raw)
        depth = raw["normalized_depth"]
        assert depth.dtype == np.float32 and depth.shape == (32, 32)
        assert 0.0 < depth.min() and depth.max() <= 1.0
        assert np.array_equal(depth.astype(np.float16).astype(np.float32), depth)  # float16-quantised like VIDIT

    # the files hold the renders of the right scenes and conditions
    rgb, depth = render(scene_for_index(TINY.seed, 4), TINY.target, TINY.size)
    assert np.array_equal(read_rgb(root / "track1_validation_gt/Image004.png"), rgb)
    assert np.array_equal(read_depth(root / "track1_validation/Image004.npy"), depth)
    rgb, _ = render(scene_for_index(TINY.seed, 1), "6500_NE", TINY.size)
    assert np.array_equal(read_rgb(root / "vidit_full/Image001_6500_NE.png"), rgb)
    assert np.array_equal(read_rgb(root / "vidit_full/Image001_6500_N.png"), read_rgb(root / "track1_train/input/Image001.png"))

    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["spec"] == TINY.to_dict() and manifest["counts"] == {"train": 3, "val": 2, "test": 2}
    assert manifest["renderer_version"] == RENDERER_VERSION


def test_wide_ids_past_999(tmp_path):
    items, width = tree.scene_layout(SyntheticSpec(train=1000, val=1, test=0))
    assert width == 4 and items[-1] == (1000, "val")
    assert tree.scene_layout(SyntheticSpec(train=300, val=45, test=45))[1] == 3


def test_existing_folders(tmp_path, monkeypatch):
    root = generate(tmp_path / "data", TINY, workers=0, progress=False)

    def boom(task):
        raise AssertionError("a matching tree must be reused without rendering")

    monkeypatch.setattr(writer, "write_scene", boom)
    assert generate(root, TINY, workers=0, progress=False) == root

    with pytest.raises(DataError, match=r"different synthetic dataset.*seed"):
        generate(root, SyntheticSpec(train=3, val=2, test=2, seed=6, size=32), workers=0, progress=False)

    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"not ours")
    with pytest.raises(DataError, match=r"photos.*not a synthetic dataset.*holiday\.jpg.*another"):
        generate(other, TINY, workers=0, progress=False)
    assert (other / "holiday.jpg").read_bytes() == b"not ours"

    (root / "track1_test_gt/Image006.png").unlink()
    with pytest.raises(DataError, match=r"modified after generation.*track1_test_gt has 1 of 2"):
        generate(root, TINY, workers=0, progress=False)

    monkeypatch.undo()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (generate(empty, TINY, workers=0, progress=False) / "manifest.json").is_file()


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    real = writer.write_scene

    def fail_on_scene_4(task):
        if task.index == 4:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(writer, "write_scene", fail_on_scene_4)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "data", TINY, workers=0, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the root nor the partial folder
    monkeypatch.undo()
    assert len(tree_bytes(generate(tmp_path / "data", TINY, workers=0, progress=False))) == 37
