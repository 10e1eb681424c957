"""The dataset layer: layouts, pair strategies, validation, the cached Dataset, loaders and splits."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import datasets.io as vidit_io
from datasets.errors import DataError
from relight_base.errors import ConfigError
from datasets.conditions import Condition
from datasets.dataset import RelightingDataset, make_loader, resize_and_crop
from datasets.layout import Scene, scan_full, scan_track1
from datasets.pairs import STRATEGIES, PairSpec, build_pairs, resolve_strategies
from datasets.splits import build_split, describe_split
from datasets.validate import validate_pairs
from tests.data_helpers import FOLDERS, FakeTree, data_cfg, make_tree, write_full_folder, write_track1_split

N, E, W, NE = Condition(6500, "N"), Condition(4500, "E"), Condition(4500, "W"), Condition(6500, "NE")


def _chw(rgb: np.ndarray) -> torch.Tensor:
    """(H,W,3) uint8 -> (3,H,W) float in [0,1], as the dataset returns it."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0


def _train_scenes(tree: FakeTree) -> list[Scene]:
    return scan_track1(tree.root / FOLDERS["train_input"], tree.root / FOLDERS["train_target"], N, E, require_target=True)


def _png_16bit_rgb(h: int, w: int) -> bytes:
    """A valid 16-bit RGB PNG, written by hand (Pillow cannot write one)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + np.full((w, 3), 1000, ">u2").tobytes() for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# -- layouts ----------------------------------------------------------------------------------------


def test_scan_track1_sorted_numerically_and_ignores_unrelated(tmp_path, caplog):
    tree = FakeTree(tmp_path)
    write_track1_split(tree, "in", "gt", ["Image1000", "Image002", "Image010"])
    (tmp_path / "in" / "notes.txt").write_text("unrelated")
    (tmp_path / "in" / "sub").mkdir()
    vidit_io.write_rgba_png(tmp_path / "in" / "thumbnail.png", np.zeros((4, 4, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger="datasets.layout"):
        scenes = scan_track1(tmp_path / "in", tmp_path / "gt", N, E, require_target=True)
    assert [s.scene_id for s in scenes] == ["Image002", "Image010", "Image1000"]
    assert scenes[0].images == {N: tmp_path / "in" / "Image002.png", E: tmp_path / "gt" / "Image002.png"}
    assert scenes[0].depth == tmp_path / "in" / "Image002.npy"
    assert "thumbnail.png" in caplog.text and "notes.txt" not in caplog.text


def test_scan_track1_test_split_without_ground_truth(tmp_path):
    tree = FakeTree(tmp_path)
    write_track1_split(tree, "test", None, ["Image345"])
    scenes = scan_track1(tmp_path / "test", tmp_path / "test_gt", N, E, require_target=False)
    assert scenes[0].images == {N: tmp_path / "test" / "Image345.png"}
    with pytest.raises(DataError, match="test_gt"):
        scan_track1(tmp_path / "test", tmp_path / "test_gt", N, E, require_target=True)


def test_scan_full_parses_conditions(tmp_path, caplog):
    tree = FakeTree(tmp_path)
    write_full_folder(tree, "full", ["Image007", "Image1234"], ["6500_NE", "4500_W", "2500_S"])
    (tmp_path / "full" / "Image007_6500_ne.png").write_bytes((tmp_path / "full" / "Image007_6500_NE.png").read_bytes())
    vidit_io.write_rgba_png(tmp_path / "full" / "Image007.png", np.zeros((4, 4, 3), np.uint8))  # a Track 1 name
    with caplog.at_level(logging.WARNING, logger="datasets.layout"):
        scenes = scan_full(tmp_path / "full")
    assert list(scenes) == ["Image007", "Image1234"]
    assert set(scenes["Image1234"].images) == {NE, W, Condition(2500, "S")}
    assert scenes["Image1234"].images[W] == tmp_path / "full" / "Image1234_4500_W.png"
    assert scenes["Image007"].depth == tmp_path / "full" / "Image007.npy"
    assert "Image007.png" in caplog.text


def test_scan_full_errors_name_the_file(tmp_path):
    tree = FakeTree(tmp_path)
    write_full_folder(tree, "full", ["Image003"], ["6500_NE"])
    (tmp_path / "full" / "Image003.npy").unlink()
    with pytest.raises(DataError, match=r"Image003_6500_NE\.png.*Image003\.npy"):
        scan_full(tmp_path / "full")
    write_full_folder(tree, "full2", ["Image003"], ["6500_NE"])
    (tmp_path / "full2" / "Image003_6500_NE.png").rename(tmp_path / "full2" / "Image003_7000_NE.png")
    with pytest.raises(DataError, match="Image003_7000_NE.png.*7000"):
        scan_full(tmp_path / "full2")
    with pytest.raises(DataError, match="nowhere"):
        scan_full(tmp_path / "nowhere")


def test_reader_rgba_to_rgb_and_both_depth_formats(tmp_path):
    tree = FakeTree(tmp_path)
    write_track1_split(tree, "in", "gt", ["Image000", "Image001"])
    plain = np.arange(256, dtype=np.float64).reshape(16, 16) / 255.0
    np.save(tmp_path / "in" / "Image001.npy", plain)  # a plain 2-D (float64) array instead of the dict
    with Image.open(tmp_path / "in" / "Image000.png") as img:
        assert img.mode == "RGBA"
    scenes = scan_track1(tmp_path / "in", tmp_path / "gt", N, E, require_target=True)
    ds = RelightingDataset(build_pairs(scenes, N, E), size=None)
    s0, s1 = ds[0], ds[1]
    assert s0["rgb"].shape == (3, 16, 16) and s0["rgb"].dtype == torch.float32
    assert torch.equal(s0["rgb"], _chw(tree.rgb[("Image000", "6500_N")]))
    assert torch.equal(s0["target"], _chw(tree.rgb[("Image000", "4500_E")]))
    assert torch.equal(s0["depth"], torch.from_numpy(tree.depth["Image000"])[None])  # the pickled dict
    assert s1["depth"].dtype == torch.float32
    assert torch.allclose(s1["depth"][0], torch.from_numpy(plain).float())
    assert (s0["scene_id"], s0["origin"], s0["index"]) == ("Image000", "baseline", 0)


# -- pairs --------------------------------------------------------------------------------------------


def test_build_pairs_counts_origins_and_order(tmp_path):
    tree = make_tree(tmp_path, train=3)
    extra = scan_full(tmp_path / FOLDERS["full"])
    pairs = build_pairs(_train_scenes(tree), N, E, STRATEGIES, extra=extra)
    assert [p.origin for p in pairs] == ["baseline"] * 3 + ["extra_input"] * 3 + ["mirror"] * 3
    assert [p.scene_id for p in pairs] == ["Image000", "Image001", "Image002"] * 3
    base, ext, mir = pairs[0], pairs[3], pairs[6]
    assert base.input_path.parent.name == "input" and base.target_path.parent.name == "target" and not base.mirror
    assert ext.input_path.name == "Image000_6500_NE.png" and ext.target_path == base.target_path
    assert ext.depth_path == base.depth_path and (ext.input_condition, ext.target_condition) == ("6500_NE", "4500_E")
    assert mir.mirror and mir.input_path == base.input_path  # N mirrors to N: the Track 1 input itself
    assert mir.target_path.name == "Image000_4500_W.png" and mir.target_condition == "4500_W"
    assert build_pairs(_train_scenes(tree), N, E, ["mirror"], extra=extra)[3].origin == "mirror"
    assert len(build_pairs(_train_scenes(tree), N, E)) == 3


def test_mirror_pairs_are_pixel_exact_flips(tmp_path):
    tree = make_tree(tmp_path, train=2, hw=(16, 24))
    pairs = build_pairs(_train_scenes(tree), N, E, ["extra_input", "mirror"], extra=scan_full(tmp_path / FOLDERS["full"]))
    ds = RelightingDataset(pairs, size=None)
    for i in (4, 5):  # the mirror samples
        sample, sid = ds[i], pairs[i].scene_id
        assert sample["origin"] == "mirror"
        assert torch.equal(sample["rgb"], _chw(tree.rgb[(sid, "6500_N")][:, ::-1]))
        assert torch.equal(sample["target"], _chw(tree.rgb[(sid, "4500_W")][:, ::-1]))
        assert torch.equal(sample["depth"][0], torch.from_numpy(tree.depth[sid][:, ::-1].copy()))
        assert not torch.equal(sample["rgb"], ds[i - 4]["rgb"])  # really flipped
    assert torch.equal(ds[2]["rgb"], _chw(tree.rgb[("Image000", "6500_NE")]))
    assert torch.equal(ds[2]["target"], ds[0]["target"])


def test_mirror_of_a_non_symmetric_input_uses_the_mirrored_condition(tmp_path):
    tree = make_tree(tmp_path, train=1)
    write_full_folder(tree, FOLDERS["full"], ["Image000"], ["6500_NW"])
    scenes = _train_scenes(tree)
    # Input 6500_NE -> target 4500_E; mirrored: fliplr(6500_NW) -> fliplr(4500_W).
    renamed = [Scene(s.scene_id, s.depth, {NE: s.images[N], E: s.images[E]}) for s in scenes]
    pair = build_pairs(renamed, NE, E, ["mirror"], extra=scan_full(tmp_path / FOLDERS["full"]))[1]
    assert pair.input_path.name == "Image000_6500_NW.png" and pair.input_condition == "6500_NW"


def test_build_pairs_missing_extra_image_names_scene_condition_folder(tmp_path):
    tree = make_tree(tmp_path, train=2, full=False)
    write_full_folder(tree, "partial", ["Image000", "Image001"], ["6500_NE"])
    (tmp_path / "partial" / "Image001_6500_NE.png").unlink()
    write_full_folder(tree, "partial", ["Image001"], ["4500_E"])
    extra = scan_full(tmp_path / "partial")
    with pytest.raises(DataError, match=r"mirror strategy needs Image000_4500_W\.png in .*partial"):
        build_pairs(_train_scenes(tree), N, E, ["mirror"], extra=extra, extra_folder=tmp_path / "partial")
    with pytest.raises(DataError, match=r"extra_input strategy needs Image001_6500_NE\.png"):
        build_pairs(_train_scenes(tree), N, E, ["extra_input"], extra=extra, extra_folder=tmp_path / "partial")
    with pytest.raises(DataError, match="data.folders.full"):
        build_pairs(_train_scenes(tree), N, E, ["extra_input"])


def test_resolve_strategies():
    assert resolve_strategies(False) == () and resolve_strategies(None) == ()
    assert resolve_strategies(True) == ("extra_input", "mirror")
    assert resolve_strategies(["mirror", "extra_input", "mirror"]) == ("extra_input", "mirror")
    assert resolve_strategies("mirror") == ("mirror",)
    with pytest.raises(ConfigError, match="did you mean 'mirror'"):
        resolve_strategies(["miror"])


# -- bad inputs ---------------------------------------------------------------------------------------


def _corrupt(kind: str, root: Path) -> str:
    """Break the default train split in one way; return a string the error must contain."""
    train_in, train_gt = root / FOLDERS["train_input"], root / FOLDERS["train_target"]
    png, npy, gt = train_in / "Image001.png", train_in / "Image001.npy", train_gt / "Image001.png"
    if kind == "corrupt_png":
        png.write_bytes(np.random.default_rng(0).integers(0, 256, 600, dtype=np.uint8).tobytes())
        return "Image001.png"
    if kind == "truncated_png":
        data = gt.read_bytes()
        gt.write_bytes(data[: len(data) // 2])
        return "target/Image001.png"
    if kind == "truncated_npy":
        data = npy.read_bytes()
        npy.write_bytes(data[: len(data) // 2])
        return "Image001.npy"
    if kind == "dict_without_key":
        np.save(npy, np.array({"depth": np.zeros((16, 16), np.float32)}, dtype=object), allow_pickle=True)
        return "Image001.npy.*normalized_depth"
    if kind == "string_npy":
        np.save(npy, np.array("not a depth map"))
        return "Image001.npy"
    if kind == "object_npy":
        np.save(npy, np.array(["a", 1, None], dtype=object), allow_pickle=True)
        return "Image001.npy"
    if kind == "depth_3d":
        np.save(npy, np.zeros((2, 16, 16), np.float32))
        return "Image001.npy.*2-D"
    if kind == "depth_wrong_hw":
        vidit_io.write_depth_npy(npy, np.zeros((16, 12), np.float32))
        return "Image001.npy is 12x16.*Image001.png is 16x16"
    if kind == "depth_nan":
        depth = np.zeros((16, 16), np.float32)
        depth[3, 4] = np.nan
        vidit_io.write_depth_npy(npy, depth)
        return "Image001.npy.*non-finite"
    if kind == "missing_target":
        gt.unlink()
        return "Image001.png"
    if kind == "missing_depth":
        npy.unlink()
        return "Image001.png.*Image001.npy"
    if kind == "size_mismatch":
        vidit_io.write_rgba_png(gt, np.zeros((12, 16, 3), np.uint8))
        return "target/Image001.png is 16x12 .*Image001.png is 16x16"
    if kind == "png_16bit_grey":
        buffer = io.BytesIO()
        Image.fromarray(np.full((16, 16), 1000, np.uint16)).save(buffer, format="PNG")
        png.write_bytes(buffer.getvalue())
        return "Image001.png: 16-bit"
    if kind == "png_16bit_rgb":
        gt.write_bytes(_png_16bit_rgb(16, 16))
        return "target/Image001.png: 16-bit RGB"
    if kind == "jpeg_named_png":
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(png, format="JPEG")
        return "Image001.png"
    raise AssertionError(kind)


BAD = ["corrupt_png", "truncated_png", "truncated_npy", "dict_without_key", "string_npy", "object_npy", "depth_3d",
       "depth_wrong_hw", "depth_nan", "missing_target", "missing_depth", "size_mismatch", "png_16bit_grey",
       "png_16bit_rgb", "jpeg_named_png"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_raises_one_data_error_naming_the_file(tmp_path, kind):
    make_tree(tmp_path, train=3, full=False)
    expected = _corrupt(kind, tmp_path)
    with pytest.raises(DataError, match=expected) as info:
        build_split(data_cfg(), tmp_path, "train")
    if kind not in ("missing_target", "missing_depth"):  # scanning errors come before validation
        assert "train split" in str(info.value)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match=r"track1_train/input.*does not exist.*ImageNNN\.png.*ImageNNN\.npy"):
        build_split(data_cfg(), tmp_path, "train")
    (tmp_path / FOLDERS["train_input"]).mkdir(parents=True)
    (tmp_path / FOLDERS["train_input"] / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"track1_train/input: no input images.*ImageNNN\.png.*ImageNNN\.npy"):
        build_split(data_cfg(), tmp_path, "train")
    make_tree(tmp_path)
    with pytest.raises(DataError, match="elsewhere_gt.*does not exist"):
        build_split(data_cfg(val_target="elsewhere_gt"), tmp_path, "val")
    with pytest.raises(DataError, match="data.folders.val_target"):
        build_split(data_cfg(val_target=None), tmp_path, "val")


def test_greyscale_8bit_png_is_expanded_to_rgb(tmp_path):
    make_tree(tmp_path, train=2, full=False)
    grey = np.random.default_rng(5).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / FOLDERS["train_input"] / "Image001.png")
    ds = build_split(data_cfg(size=None), tmp_path, "train")
    rgb = ds[1]["rgb"]
    assert rgb.shape == (3, 16, 16)
    for c in range(3):
        assert torch.equal(rgb[c], torch.from_numpy(grey).float() / 255.0)


def test_validate_checks_each_file_once(tmp_path, monkeypatch):
    import datasets.validate as validate

    tree = make_tree(tmp_path, train=2)
    pairs = build_pairs(_train_scenes(tree), N, E, STRATEGIES, extra=scan_full(tmp_path / FOLDERS["full"]))
    seen: list[Path] = []
    real_png, real_depth = validate.png_size, validate.read_depth
    monkeypatch.setattr(validate, "png_size", lambda p, **caps: seen.append(p) or real_png(p, **caps))
    monkeypatch.setattr(validate, "read_depth", lambda p, **caps: seen.append(p) or real_depth(p, **caps))
    validate_pairs(pairs, split="train", progress=False)
    # per scene: N input, E target, NE input, W target, depth (shared by all three pairs)
    assert len(seen) == len(set(seen)) == 2 * 5


# -- dataset, cache, loader ---------------------------------------------------------------------------


def test_resize_and_crop():
    image = torch.arange(2 * 16 * 32, dtype=torch.float32).reshape(2, 16, 32)
    assert torch.equal(resize_and_crop(image, 16), image[:, :, 8:24])  # short side already 16: a centre crop
    assert resize_and_crop(image, None) is image
    small = resize_and_crop(torch.full((3, 32, 48), 200, dtype=torch.uint8), 8)
    assert small.shape == (3, 8, 8) and small.dtype == torch.uint8 and bool((small == 200).all())
    big = resize_and_crop(torch.rand(1, 4, 6), 9)
    assert big.shape == (1, 9, 9) and big.dtype == torch.float32
    # antialiased shrinking averages a checkerboard to grey instead of aliasing it
    board = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 255
    shrunk = resize_and_crop(board[None].to(torch.uint8), 8)
    assert int(shrunk.min()) >= 100 and int(shrunk.max()) <= 155


def test_dataset_resizes_to_size(tmp_path):
    make_tree(tmp_path, train=2, hw=(24, 32))
    ds = build_split(data_cfg(size=12), tmp_path, "train", ["mirror"])
    sample = ds[3]
    assert sample["rgb"].shape == (3, 12, 12) and sample["target"].shape == (3, 12, 12)
    assert sample["depth"].shape == (1, 12, 12) and sample["depth"].dtype == torch.float32
    assert 0.0 <= float(sample["rgb"].min()) and float(sample["rgb"].max()) <= 1.0


def _count_decodes(monkeypatch) -> dict[str, int]:
    calls = {"rgb": 0, "depth": 0}
    real_rgb, real_depth = vidit_io.read_rgb, vidit_io.read_depth

    def rgb(path, **caps):
        calls["rgb"] += 1
        return real_rgb(path, **caps)

    def depth(path, **caps):
        calls["depth"] += 1
        return real_depth(path, **caps)

    monkeypatch.setattr(vidit_io, "read_rgb", rgb)
    monkeypatch.setattr(vidit_io, "read_depth", depth)
    return calls


def test_cache_decodes_each_file_once(tmp_path, monkeypatch):
    make_tree(tmp_path, train=3)
    ds = build_split(data_cfg(size=8), tmp_path, "train", ["extra_input", "mirror"])
    calls = _count_decodes(monkeypatch)
    first = [ds[i] for i in range(len(ds))]
    # per scene: images N, E, NE, flipped N, flipped W; depth plain and flipped
    assert calls == {"rgb": 3 * 5, "depth": 3 * 2}
    second = [ds[i] for i in range(len(ds))]
    assert calls == {"rgb": 3 * 5, "depth": 3 * 2}
    for a, b in zip(first, second):
        assert torch.equal(a["rgb"], b["rgb"]) and torch.equal(a["depth"], b["depth"])
    second[0]["depth"].fill_(7.0)  # samples are copies: editing one leaves the cache intact
    assert not torch.equal(ds[0]["depth"], second[0]["depth"])


def test_no_cache_decodes_every_time(tmp_path, monkeypatch):
    make_tree(tmp_path, train=2, full=False)
    ds = build_split(data_cfg(size=8, cache=False), tmp_path, "train")
    calls = _count_decodes(monkeypatch)
    ds[0], ds[0]
    assert calls == {"rgb": 4, "depth": 2}


def test_preload_into_shared_memory(tmp_path, monkeypatch):
    make_tree(tmp_path, train=2)
    ds = build_split(data_cfg(size=8), tmp_path, "train", STRATEGIES)
    lazily = ds[0]  # a lazily cached sample is reused by preload
    calls = _count_decodes(monkeypatch)
    ds.preload()
    assert ds.preloaded and ds._images.bank.is_shared() and ds._depths.bank.is_shared()
    assert calls["rgb"] == 2 * 5 - 2 and calls["depth"] == 2 * 2 - 1
    before = dict(calls)
    samples = [ds[i] for i in range(len(ds))]
    assert calls == before
    assert torch.equal(samples[0]["rgb"], lazily["rgb"]) and torch.equal(samples[0]["target"], lazily["target"])


def test_loader_same_batches_with_0_and_2_workers(tmp_path):
    make_tree(tmp_path, train=5)
    ds = build_split(data_cfg(size=8), tmp_path, "train", ["mirror"])

    def epochs(workers: int) -> list[list[dict]]:
        loader = make_loader(ds, batch_size=3, shuffle=True, workers=workers, seed=7)
        return [list(loader) for _ in range(2)]

    a, b = epochs(0), epochs(2)
    assert [len(e) for e in a] == [4, 4]
    orders = [torch.cat([batch["index"] for batch in epoch]).tolist() for epoch in a]
    assert sorted(orders[0]) == list(range(10)) and orders[0] != orders[1] and orders[0] != list(range(10))
    for epoch_a, epoch_b in zip(a, b):
        for x, y in zip(epoch_a, epoch_b):
            assert torch.equal(x["index"], y["index"]) and x["scene_id"] == y["scene_id"]
            for key in ("rgb", "depth", "target"):
                assert torch.equal(x[key], y[key])
    assert a[0][0]["rgb"].shape == (3, 3, 8, 8) and a[0][0]["depth"].shape == (3, 1, 8, 8)
    assert ds.preloaded  # workers=2 preloaded in the main process
    other = [torch.cat([b["index"] for b in make_loader(ds, batch_size=3, shuffle=True, seed=8)]).tolist()]
    assert other[0] != orders[0]


# -- splits -------------------------------------------------------------------------------------------


def test_build_split_all_splits(tmp_path):
    make_tree(tmp_path, train=3, val=2, test=2)
    cfg = data_cfg(size=8)
    train = build_split(cfg, tmp_path, "train", ["extra_input", "mirror"])
    assert describe_split(train) == {"split": "train", "samples": 9, "scenes": 3, "with_target": 9, "size": 8,
                                     "origins": {"baseline": 3, "extra_input": 3, "mirror": 3}}
    val = build_split(cfg, tmp_path, "val", ["mirror"])  # strategies never apply to val/test
    assert describe_split(val)["origins"] == {"baseline": 2} and val[0]["scene_id"] == "Image100"
    test = build_split(cfg, tmp_path, "test")
    assert len(test) == 2 and "target" not in test[0] and describe_split(test)["with_target"] == 0
    assert test[0]["rgb"].shape == (3, 8, 8)


def test_build_split_test_ground_truth_and_absolute_folders(tmp_path):
    tree = make_tree(tmp_path / "data", test=2, test_gt=True)
    cfg = data_cfg(size=None, test_input=str(tmp_path / "data" / FOLDERS["test_input"]), test_target=None)
    assert "target" not in build_split(cfg, tmp_path / "elsewhere", "test")[0]  # absolute folder, no GT configured
    with_gt = build_split(data_cfg(size=None), tmp_path / "data", "test")
    assert torch.equal(with_gt[0]["target"], _chw(tree.rgb[("Image200", "4500_E")]))


def test_build_split_full_folder_needed_only_for_strategies(tmp_path):
    make_tree(tmp_path, train=2, full=False)
    assert len(build_split(data_cfg(full=None), tmp_path, "train")) == 2  # not scanned without strategies
    with pytest.raises(DataError, match=r"vidit_full.*does not exist.*mirror needs 4500_W"):
        build_split(data_cfg(), tmp_path, "train", ["mirror"])
    with pytest.raises(DataError, match=r"data.folders.full is not set.*extra_input needs 6500_NE"):
        build_split(data_cfg(full=None), tmp_path, "train", ["extra_input"])


def test_pairspec_is_hashable_and_frozen():
    spec = PairSpec("Image000", "baseline", Path("a.png"), Path("a.npy"), None, False, "6500_N", "4500_E")
    with pytest.raises(AttributeError):
        spec.mirror = True  # type: ignore[misc]
    assert len({spec, spec}) == 1


def test_preload_native_size_with_mixed_shapes(tmp_path):
    tree = FakeTree(tmp_path)
    write_track1_split(tree, "in", "gt", ["Image000"], hw=(16, 16))
    write_track1_split(tree, "in", "gt", ["Image001"], hw=(12, 20), seed=3)
    ds = RelightingDataset(build_pairs(scan_track1(tmp_path / "in", tmp_path / "gt", N, E, require_target=True), N, E), None)
    ds.preload()
    assert ds.preloaded and all(t.is_shared() for t in ds._images.bank)
    assert ds[1]["rgb"].shape == (3, 12, 20) and ds[1]["depth"].shape == (1, 12, 20)
    assert torch.equal(ds[1]["target"], _chw(tree.rgb[("Image001", "4500_E")]))
