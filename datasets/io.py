"""Reading and writing VIDIT files: RGBA PNG images and pickled-dict depth maps.

Readers return numpy arrays and raise :class:`datasets.errors.DataError` naming the
file and what was wrong.  Writers produce exactly VIDIT's formats: 8-bit RGBA
PNG with alpha 255, and ``.npy`` files holding a pickled dict with
``normalized_depth`` (float32, H x W, in [0, 1], larger is farther) and
``ref_center_dis``.

Reading never runs code from a file and never decodes more than it must: depth files are loaded by
:func:`datasets.safe_npy.load_npy` (numeric ``.npy`` without pickle; VIDIT's pickled dicts through an
unpickler that admits only numpy's array, dtype and scalar constructors), with caps on their elements and
bytes derived from the paired image (:func:`depth_caps`); PNGs larger than ``max_pixels`` (default
:data:`DEFAULT_MAX_PIXELS`, the config's ``data.max_pixels``) are refused from their header, before decoding.
"""

from __future__ import annotations

import contextlib
import io
import os
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from relight_base.atomic import atomic_write_bytes
from datasets.errors import DataError
from datasets.safe_npy import load_npy

DEFAULT_MAX_PIXELS = 4096 * 4096  # the largest image read (width x height) unless a caller says otherwise
_PNG_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, zlib.error)
_PILLOW_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}


def check_pixels(path: Path, height: int, width: int, max_pixels: int) -> None:
    """Refuse an image of more than ``max_pixels`` pixels (``height x width``) with a :class:`DataError` naming it."""
    if height * width > max_pixels:
        raise DataError(
            f"{path}: image is {width}x{height} (width x height, {width * height:,} pixels), more than the limit of "
            f"{max_pixels:,} pixels; refused before decoding (raise data.max_pixels in the config to read it)"
        )


def _check_header_pixels(path: Path, max_pixels: int) -> None:
    """Refuse a PNG whose IHDR promises more than ``max_pixels``; files that are not PNGs are left to Pillow."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except OSError:
        return  # Pillow reports it
    if len(head) == 24 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
        check_pixels(path, int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big"), max_pixels)


@contextlib.contextmanager
def _open_png(path: Path, failure: str, max_pixels: int) -> Iterator[Image.Image]:
    """Open ``path`` with Pillow, checking it is a PNG of at most ``max_pixels``; errors become :class:`DataError`.

    The size is checked from the IHDR chunk before Pillow opens the file and from Pillow's header read before
    anything is decoded.  A missing file reads "file not found"; Pillow's decompression-bomb error (or warning,
    when warnings are errors) reads "refused by Pillow as a possible decompression bomb"; a Pillow or OS error
    reads ``"{path}: {failure} (why); the file is corrupt or truncated"``.  DataErrors raised in the body pass
    through unchanged.
    """
    _check_header_pixels(path, max_pixels)
    try:
        with Image.open(path) as img:
            if img.format != "PNG":
                raise DataError(f"{path}: expected a PNG image, found {img.format or 'an unknown format'}")
            check_pixels(path, img.height, img.width, max_pixels)
            yield img
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except _PILLOW_BOMB as exc:
        raise DataError(f"{path}: refused by Pillow as a possible decompression bomb ({exc})") from None
    except _PNG_READ_ERRORS as exc:
        raise DataError(f"{path}: {failure} ({exc}); the file is corrupt or truncated") from None


def png_size(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Return ``(height, width)`` of a PNG, checking the whole file's integrity (CRCs) without decoding pixels.

    A PNG of more than ``max_pixels`` pixels is refused from its header (:class:`DataError`).
    """
    path = Path(path)
    with _open_png(path, "not a readable PNG", max_pixels) as img:
        width, height = img.size
        img.verify()
    return height, width


def read_rgb(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a PNG to RGB.

    Returns ``(H, W, 3) uint8`` in [0, 255].  RGBA drops its alpha, grey and palette images
    are expanded to RGB; 16-bit images are refused with a clear message, and so is an image of
    more than ``max_pixels`` pixels, from its header, before decoding.
    """
    path = Path(path)
    with _open_png(path, "cannot decode PNG", max_pixels) as img:
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            raise DataError(
                f"{path}: {img.mode} (16-bit or float) images are not supported as RGB input; "
                "expected an 8-bit RGB or RGBA PNG"
            )
        bits, colour = png_bit_depth(path)
        if bits > 8:
            raise DataError(
                f"{path}: {bits}-bit {colour} PNG is not supported; expected 8 bits per channel (VIDIT's RGBA format)"
            )
        img.load()
        return np.array(img.convert("RGB"), dtype=np.uint8)  # a writable copy


def depth_caps(pixels: int) -> dict[str, int]:
    """Caps for :func:`read_depth` of the depth map of a ``pixels``-pixel image (height x width).

    ``max_elements``: 2 x pixels (room for slack); ``max_bytes`` (a pickled file): 2 x 8 x pixels + 64 KiB,
    enough for a float64 map and the pickle around it.  Use as ``read_depth(path, **depth_caps(h * w))``.
    """
    return {"max_elements": 2 * pixels, "max_bytes": 2 * 8 * pixels + 65536}


def read_depth(path: str | os.PathLike, *, max_elements: int | None = None, max_bytes: int | None = None) -> np.ndarray:
    """Load a VIDIT depth map without running code from the file.

    Accepts the pickled dict VIDIT ships (key ``normalized_depth``; unpickled admitting only numpy's array,
    dtype and scalar constructors) or a plain 2-D numeric array (read without pickle).  Returns ``(H, W)
    float32``; values are checked to be finite (VIDIT's are in [0, 1]).  ``max_elements`` caps the map's
    elements (from the .npy header, before reading data) and ``max_bytes`` the size of a pickled file; each
    defaults to :func:`depth_caps` of :data:`DEFAULT_MAX_PIXELS`.
    """
    path = Path(path)
    defaults = depth_caps(DEFAULT_MAX_PIXELS)
    raw = load_npy(
        path,
        max_elements=defaults["max_elements"] if max_elements is None else max_elements,
        max_bytes=defaults["max_bytes"] if max_bytes is None else max_bytes,
    )
    if isinstance(raw, dict):
        if "normalized_depth" not in raw:
            keys = ", ".join(sorted(map(str, raw))) or "none"
            raise DataError(f"{path}: depth dict has no 'normalized_depth' key (keys: {keys})")
        raw = raw["normalized_depth"]
    if not isinstance(raw, np.ndarray) or raw.dtype == object:
        raise DataError(
            f"{path}: expected a depth map (a dict with 'normalized_depth' or a 2-D numeric array), "
            f"found {type(raw).__name__}"
        )
    if not np.issubdtype(raw.dtype, np.number) or np.issubdtype(raw.dtype, np.complexfloating):
        raise DataError(f"{path}: not a depth map: expected real numbers, found an array of dtype {raw.dtype}")
    depth = np.squeeze(raw) if raw.ndim == 3 and 1 in (raw.shape[0], raw.shape[-1]) else raw
    if depth.ndim != 2:
        raise DataError(f"{path}: depth map must be 2-D (H x W), found shape {tuple(raw.shape)}")
    depth = depth.astype(np.float32, copy=False)
    if not np.isfinite(depth).all():
        bad = int((~np.isfinite(depth)).sum())
        raise DataError(f"{path}: depth map has {bad} non-finite values (NaN or inf)")
    return depth


def png_bit_depth(path: str | os.PathLike) -> tuple[int, str]:
    """``(bits per channel, colour type name)`` from a PNG's IHDR chunk (reads 26 bytes).

    Needed because Pillow opens 16-bit RGB(A) PNGs as 8-bit, silently dropping the low byte.
    """
    head = _png_ihdr(path)
    return head[24], _COLOUR_TYPES.get(head[25], f"colour type {head[25]}")


def png_dimensions(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` from a PNG's IHDR chunk (reads 26 bytes, decodes and checks nothing else)."""
    head = _png_ihdr(path)
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def _png_ihdr(path: str | os.PathLike) -> bytes:
    """The first 26 bytes of a PNG (signature, IHDR length and type, width, height, bit depth, colour type)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(26)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise DataError(f"{path}: not a PNG file (bad signature or header)")
    return head


def encode_rgba_png(rgb: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode ``(H, W, 3) uint8`` as an 8-bit RGBA PNG with alpha 255 (VIDIT's format)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def encode_depth_npy(depth: np.ndarray, ref_center_dis: float = 1.0) -> bytes:
    """Encode a depth map as VIDIT's pickled dict ``.npy`` (float32 ``normalized_depth``)."""
    payload = {"normalized_depth": np.asarray(depth, dtype=np.float32), "ref_center_dis": np.float32(ref_center_dis)}
    buffer = io.BytesIO()
    np.save(buffer, np.array(payload, dtype=object), allow_pickle=True)
    return buffer.getvalue()


def write_rgba_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write ``(H, W, 3) uint8`` as a VIDIT RGBA PNG, atomically."""
    atomic_write_bytes(path, encode_rgba_png(rgb))


def write_depth_npy(path: str | os.PathLike, depth: np.ndarray, ref_center_dis: float = 1.0) -> None:
    """Write a VIDIT depth ``.npy`` (pickled dict), atomically."""
    atomic_write_bytes(path, encode_depth_npy(depth, ref_center_dis))


def encode_rgb_png(rgb: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode ``(H, W, 3) uint8`` as an 8-bit RGB PNG (predictions, submissions)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def to_uint8_image(tensor) -> np.ndarray:
    """``(3, H, W)`` float tensor in [0,1] (clamped) -> ``(H, W, 3) uint8``, rounded."""
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(array)
