"""Reading a dataset never runs code from it and never blows up memory.

Depth ``.npy`` files: VIDIT's pickled dicts (as numpy 1.x and numpy 2.x write them) load through an unpickler that
admits only numpy's array, dtype and scalar constructors; a pickle naming anything else (a payload that would write
a marker file) is refused and the marker never appears; headers and file sizes are checked against caps derived
from the paired image before any data is read.  PNGs: an image whose header promises more than ``max_pixels``
pixels is refused from the header, before Pillow decodes (or even opens) it.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import shlex
import struct
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from numpy.lib import format as npy_format
from PIL import Image

import datasets.io as vidit_io
from bench.cli import main
from bench.harness.inference import read_depth_any
from datasets.dataset import RelightingDataset
from datasets.errors import DataError
from datasets.io import depth_caps, encode_depth_npy, png_size, read_depth, read_rgb, write_depth_npy
from datasets.splits import build_split
from tests.data_helpers import FOLDERS, data_cfg, make_tree

TRAIN_IN = FOLDERS["train_input"]


# -- fixtures: VIDIT files as numpy 1.x and 2.x write them, payloads, forged headers ---------------------------------


def vidit_npy_numpy2(depth: np.ndarray, ref_center_dis=np.float32(1.0)) -> bytes:
    """VIDIT's depth file as the installed numpy (2.x) writes it: ``np.save`` of a 0-d object array holding the dict."""
    buffer = io.BytesIO()
    np.save(buffer, np.array({"normalized_depth": depth, "ref_center_dis": ref_center_dis}, dtype=object))
    return buffer.getvalue()


def vidit_npy_numpy1(depth: np.ndarray, ref_center_dis=np.float32(1.0)) -> bytes:
    """The same file as numpy 1.x writes it: pickle protocol 3, whose GLOBAL opcodes name ``numpy.core.multiarray``."""
    array = np.array({"normalized_depth": depth, "ref_center_dis": ref_center_dis}, dtype=object)
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, npy_format.header_data_from_array_1_0(array))
    pickled = pickle.dumps(array, protocol=3)  # text GLOBALs: "c<module>\n<name>\n", so a byte swap renames them
    return buffer.getvalue() + pickled.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def object_npy(payload) -> bytes:
    """An object ``.npy`` whose pickle is exactly ``pickle.dumps(payload)`` (no array around it)."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": ()})
    return buffer.getvalue() + pickle.dumps(payload, protocol=3)


class OpenMarker:
    """Unpickling it calls ``open(marker, "w")``: creates the marker file (pickled as GLOBAL ``io open``)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class SystemMarker(OpenMarker):
    """Unpickling it runs ``touch marker`` in a shell (pickled as GLOBAL ``posix system``)."""

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


class EvalMarker(OpenMarker):
    """Unpickling it evaluates Python that creates the marker (pickled as GLOBAL ``builtins eval``)."""

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').close()",))


PAYLOADS = {"open": (OpenMarker, "io.open"), "system": (SystemMarker, f"{os.system.__module__}.system"),
            "eval": (EvalMarker, "builtins.eval")}


def payload_npy(kind: str, marker: Path, where: str = "dict") -> bytes:
    """A ``.npy`` whose pickle would create ``marker``: inside VIDIT's dict, as the array's element, or bare."""
    payload = PAYLOADS[kind][0](marker)
    if where == "bare":
        return object_npy(payload)
    content = {"normalized_depth": np.zeros((16, 16), np.float32), "ref_center_dis": payload} if where == "dict" \
        else payload
    buffer = io.BytesIO()
    np.save(buffer, np.array(content, dtype=object))
    return buffer.getvalue()


def forged_png(width: int, height: int) -> bytes:
    """A PNG signature, an IHDR (8-bit RGBA) claiming ``width x height`` with a correct CRC, and IEND: no pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IEND", b""))


def forged_npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """A plain ``.npy`` header promising ``shape`` followed by only 16 data bytes."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 16


def _globals(data: bytes) -> set[str]:
    """``module name`` of every GLOBAL / STACK_GLOBAL in the pickle after a ``.npy`` header."""
    stream = io.BytesIO(data)
    assert npy_format.read_magic(stream) == (1, 0)
    npy_format.read_array_header_1_0(stream)
    found, strings = set(), []
    for opcode, arg, _ in pickletools.genops(stream.read()):
        if opcode.name == "GLOBAL":
            found.add(arg)
        elif opcode.name == "STACK_GLOBAL":
            found.add(" ".join(strings[-2:]))
        elif isinstance(arg, str):
            strings.append(arg)
    return found


# -- depth maps --------------------------------------------------------------------------------------------------


def test_vidit_files_of_numpy_1_and_2_load_alike(tmp_path):
    depth = np.random.default_rng(0).random((12, 20), dtype=np.float32)
    v1, v2 = tmp_path / "v1.npy", tmp_path / "v2.npy"
    v2.write_bytes(vidit_npy_numpy2(depth))
    v1.write_bytes(vidit_npy_numpy1(depth))
    assert "numpy._core.multiarray _reconstruct" in _globals(v2.read_bytes())  # what numpy 2 writes (protocol 4)
    assert {"numpy.core.multiarray _reconstruct", "numpy.core.multiarray scalar"} <= _globals(v1.read_bytes())
    assert b"numpy._core" not in v1.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DeprecationWarning for numpy.core
        a1, a2 = read_depth(v1), read_depth(v2)
    assert a1.dtype == a2.dtype == np.float32 and a1.shape == (12, 20)
    assert np.array_equal(a1, depth) and np.array_equal(a2, depth)
    assert np.array_equal(np.load(v1, allow_pickle=True).item()["normalized_depth"], depth)  # numpy agrees
    assert a1.flags.writeable and type(a1) is np.ndarray
    assert encode_depth_npy(depth) == vidit_npy_numpy2(depth)  # the synthetic writer writes VIDIT's format


@pytest.mark.parametrize("variant", ["float64", "big_endian", "python_float", "float64_scalar", "fortran"])
def test_depth_dict_variants_load(tmp_path, variant):
    depth = np.random.default_rng(1).random((6, 9))
    stored = {"float64": depth, "big_endian": depth.astype(">f4"), "fortran": np.asfortranarray(depth, np.float32)}
    ref = {"python_float": 2.5, "float64_scalar": np.float64(2.5)}.get(variant, np.float32(1))
    path = tmp_path / "d.npy"
    path.write_bytes(vidit_npy_numpy1(stored.get(variant, depth.astype(np.float32)), ref))
    assert np.allclose(read_depth(path), depth, atol=1e-6)


def test_plain_arrays_load_without_pickle(tmp_path):
    depth = np.random.default_rng(2).random((5, 7))
    np.save(tmp_path / "f8.npy", depth)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(depth))
    with open(tmp_path / "v2.npy", "wb") as handle:
        npy_format.write_array(handle, depth.astype(np.float32), version=(2, 0))
    np.save(tmp_path / "squeeze.npy", depth[None])
    for name in ("f8", "fortran", "v2", "squeeze"):
        assert np.allclose(read_depth(tmp_path / f"{name}.npy"), depth, atol=1e-6), name


@pytest.mark.parametrize("where", ["dict", "element", "bare"])
@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_pickle_payload_is_refused_and_never_runs(tmp_path, kind, where):
    marker, path = tmp_path / "marker", tmp_path / "Image007.npy"
    path.write_bytes(payload_npy(kind, marker, where))
    refused = PAYLOADS[kind][1]
    assert any(g.replace(" ", ".") == refused for g in _globals(path.read_bytes()))
    with pytest.raises(DataError, match=f"Image007.npy: refused to load {refused} ") as info:
        read_depth(path)
    assert "could run code" in str(info.value)
    assert not marker.exists()


def test_the_payload_fixture_is_live(tmp_path):
    """numpy's own loader, as the old ``read_depth`` called it, does run the payload."""
    marker, path = tmp_path / "marker", tmp_path / "Image007.npy"
    path.write_bytes(payload_npy("open", marker, "element"))
    np.load(path, allow_pickle=True).item().close()
    assert marker.exists()


def test_a_file_that_is_not_npy_is_not_unpickled(tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "Image003.npy"
    path.write_bytes(pickle.dumps(OpenMarker(marker)))  # np.load(allow_pickle=True) would hand this to pickle
    with pytest.raises(DataError, match=r"Image003.npy: not a readable .npy depth file \(no .npy signature"):
        read_depth(path)
    assert not marker.exists()


def test_huge_header_is_refused_without_reading_data(tmp_path):
    path = tmp_path / "Image004.npy"
    path.write_bytes(forged_npy_header((100_000, 100_000)))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"Image004.npy: its .npy header promises an array of shape \(100000, "
                                            r"100000\) \(10,000,000,000 elements\), more than the 33,554,432"):
            read_depth(path)  # default caps: 2 x DEFAULT_MAX_PIXELS elements
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak
    path.write_bytes(forged_npy_header((64, 64)))
    with pytest.raises(DataError, match=r"\(64, 64\) \(4,096 elements\), more than the 512 "):
        read_depth(path, **depth_caps(16 * 16))
    path.write_bytes(forged_npy_header((16, 16)))
    with pytest.raises(DataError, match="header promises 1,024 bytes of data, the file holds 16.*truncated"):
        read_depth(path, **depth_caps(16 * 16))


def test_oversized_pickled_file_is_refused_by_size(tmp_path):
    path = tmp_path / "Image005.npy"
    write_depth_npy(path, np.zeros((200, 200), np.float32))
    size = path.stat().st_size
    with pytest.raises(DataError, match=rf"Image005.npy: pickled depth file is {size:,} bytes, more than the 69,632 "):
        read_depth(path, **depth_caps(16 * 16))
    assert read_depth(path, **depth_caps(200 * 200)).shape == (200, 200)


class _Reconstruct:
    """Pickles as numpy's array reconstruction with a hand-made ``state`` (shape, dtype and data need not agree)."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), self.state)


class _Float32DType:
    """Pickles as a call of the ``numpy.dtypes.Float32DType`` class (how numpy 2 may name a dtype)."""

    def __reduce__(self):
        return (np.dtypes.Float32DType, ())


def test_pickled_array_states_are_checked(tmp_path):
    path = tmp_path / "Image006.npy"
    bad = {
        # numpy itself reads past the end of a short list here (a crash), so it must never see it
        "short list": ((1, (1000,), np.dtype(object), False, [1.0, 2.0]), "has data of the wrong size"),
        "huge shape": ((1, (100_000, 100_000), np.dtype(np.float32), False, b"\0" * 16), "10,000,000,000 elements"),
        "short data": ((1, (4, 4), np.dtype(np.float32), False, b"\0" * 16), "has data of the wrong size"),
        "string dtype": ((1, (1,), np.dtype("U3"), False, b"\0" * 12), "pickled dtype <U3 is not allowed"),
    }
    for name, (state, message) in bad.items():
        path.write_bytes(object_npy(np.array({"normalized_depth": _Reconstruct(state)}, dtype=object)))
        with pytest.raises(DataError, match=f"Image006.npy: .*{message}"):
            read_depth(path)
    data = np.arange(4, dtype=np.float32).tobytes()
    path.write_bytes(object_npy(np.array({"normalized_depth": _Reconstruct((1, (2, 2), _Float32DType(), False, data))},
                                         dtype=object)))
    assert "numpy.dtypes Float32DType" in _globals(path.read_bytes())
    assert np.array_equal(read_depth(path), np.arange(4, dtype=np.float32).reshape(2, 2))


@pytest.mark.parametrize("content, message", [
    ({"normalized_depth": np.zeros((4, 4), np.float32), "name": "x"}, "depth dict entry 'name' is str; expected a "
                                                                       "numeric array or a number"),
    ({1: np.zeros((4, 4), np.float32)}, "depth dict has a key of type int; expected str keys"),
    ({"normalized_depth": [[0.0, 1.0]]}, "depth dict entry 'normalized_depth' is list"),
    ({f"k{i}": i for i in range(600)}, "the pickled depth file has more than 1000 pickle operations"),
    ("a string", "expected a depth map .*found str"),
    ({"depth": np.zeros((4, 4), np.float32)}, "depth dict has no 'normalized_depth' key \\(keys: depth\\)"),
    ({"normalized_depth": np.zeros((4, 4), bool)}, "not a depth map: expected real numbers, found an array of "
                                                    "dtype bool"),
])
def test_pickled_content_must_be_a_numeric_dict(tmp_path, content, message):
    path = tmp_path / "Image008.npy"
    np.save(path, np.array(content, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=f"Image008.npy: {message}"):
        read_depth(path)


def test_depth_caps_through_validation_and_predict(tmp_path):
    make_tree(tmp_path, train=2, full=False)
    write_depth_npy(tmp_path / TRAIN_IN / "Image001.npy", np.zeros((200, 200), np.float32))
    with pytest.raises(DataError, match="train split: .*Image001.npy: pickled depth file is .* more than the 69,632"):
        build_split(data_cfg(), tmp_path, "train")
    np.save(tmp_path / "plain.npy", np.zeros((64, 64), np.float32))
    with pytest.raises(DataError, match=r"plain.npy: its .npy header promises .*\(4,096 elements\), more than the 512"):
        read_depth_any(tmp_path / "plain.npy", image_hw=(16, 16))
    assert read_depth_any(tmp_path / "plain.npy").shape == (64, 64)  # capped by DEFAULT_MAX_PIXELS only
    Image.fromarray(np.zeros((64, 64), np.uint16)).save(tmp_path / "depth16.png")
    with pytest.raises(DataError, match=r"depth16.png: image is 64x64 .*limit of 512 pixels; refused before decoding"):
        read_depth_any(tmp_path / "depth16.png", image_hw=(16, 16))
    assert read_depth_any(tmp_path / "depth16.png", image_hw=(64, 64)).shape == (64, 64)
    marker = tmp_path / "marker"
    (tmp_path / "evil.npy").write_bytes(payload_npy("system", marker))
    with pytest.raises(DataError, match="refused to load"):
        read_depth_any(tmp_path / "evil.npy", image_hw=(16, 16))
    assert not marker.exists()


# -- images ------------------------------------------------------------------------------------------------------


def test_png_header_over_max_pixels_is_refused_before_pillow(tmp_path, monkeypatch):
    path = tmp_path / "Image009.png"
    path.write_bytes(forged_png(30000, 30000))
    with pytest.raises(Image.DecompressionBombError):  # the fixture is a real bomb to Pillow
        Image.open(path)
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("Pillow opened the file"))
    for reader in (read_rgb, png_size):
        with pytest.raises(DataError, match=r"Image009.png: image is 30000x30000 \(width x height, 900,000,000 "
                                            r"pixels\), more than the limit of 16,777,216 pixels; refused before "
                                            r"decoding \(raise data.max_pixels"):
            reader(path)


def test_small_image_over_a_lower_limit_is_refused(tmp_path):
    make_tree(tmp_path, train=2, full=False)
    png = tmp_path / TRAIN_IN / "Image001.png"
    with pytest.raises(DataError, match=r"Image001.png: image is 16x16 .*256 pixels.*limit of 255 pixels"):
        read_rgb(png, max_pixels=255)
    with pytest.raises(DataError, match="Image001.png: image is 16x16"):
        png_size(png, max_pixels=255)
    assert read_rgb(png, max_pixels=256).shape == (16, 16, 3)
    with pytest.raises(DataError, match=r"train split: .*Image000.png: image is 16x16 .*data.max_pixels"):
        build_split(data_cfg(max_pixels=100), tmp_path, "train")
    ds = build_split(data_cfg(size=None, max_pixels=256), tmp_path, "train")
    assert ds.max_pixels == 256 and ds[1]["rgb"].shape == (3, 16, 16)
    ds = RelightingDataset(ds.pairs, None, max_pixels=100)  # decoding checks too, not only validation
    with pytest.raises(DataError, match="Image000.png: image is 16x16"):
        ds[0]


def test_pillow_bomb_checks_become_data_errors(tmp_path):
    """With max_pixels above Pillow's own limits, Pillow's bomb error (and warning, when an error) still reads well."""
    path = tmp_path / "Image010.png"
    path.write_bytes(forged_png(30000, 30000))
    with pytest.raises(DataError, match="Image010.png: refused by Pillow as a possible decompression bomb"):
        read_rgb(path, max_pixels=10**12)
    path.write_bytes(forged_png(10000, 10000))  # above Pillow's warning limit, below its error limit
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(DataError, match="Image010.png: refused by Pillow as a possible decompression bomb"):
            png_size(path, max_pixels=10**12)


def test_preload_reads_sizes_from_headers(tmp_path):
    make_tree(tmp_path, train=2, full=False)
    ds = build_split(data_cfg(size=None), tmp_path, "train")
    ds.preload()
    assert ds.preloaded and ds[0]["rgb"].shape == (3, 16, 16)
    assert vidit_io.png_dimensions(tmp_path / TRAIN_IN / "Image000.png") == (16, 16)


# -- through the CLI ---------------------------------------------------------------------------------------------


def _check(tmp_path: Path, *extra: str) -> int:
    """``bench data check`` on ``tmp_path/vidit`` with a one-experiment config; returns the exit status."""
    cfg = {"name": "safe", "data": {"source": "vidit", "root": str(tmp_path / "vidit"), "size": 16},
           "train": {"steps": 1, "batch_size": 2}, "experiments": [{"name": "ref", "model": "identity"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return main(["data", "check", str(tmp_path / "c.yaml"), *extra])


def test_data_check_refuses_a_planted_payload(tmp_path, capsys):
    make_tree(tmp_path / "vidit", train=2, val=1, test=1, full=False)
    marker = tmp_path / "marker"
    (tmp_path / "vidit" / TRAIN_IN / "Image001.npy").write_bytes(payload_npy("open", marker))
    code = _check(tmp_path)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Image001.npy: refused to load io.open" in err and "Traceback" not in err
    assert not marker.exists()


def test_data_check_refuses_large_images(tmp_path, capsys):
    make_tree(tmp_path / "vidit", train=2, val=1, test=1, full=False)
    assert _check(tmp_path) == 0, capsys.readouterr().err
    code = _check(tmp_path, "--set", "data.max_pixels=100")
    err = capsys.readouterr().err
    assert code == 2 and "image is 16x16" in err and "data.max_pixels" in err, err
    (tmp_path / "vidit" / TRAIN_IN / "Image000.png").write_bytes(forged_png(30000, 30000))
    code = _check(tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and "Image000.png: image is 30000x30000" in err, err
