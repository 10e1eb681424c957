"""Up-front validation of a split, before any training: every file readable, sizes consistent.

Checks, each distinct file once (depth maps and targets are shared between pairs):

* every PNG is a complete, uncorrupted PNG (header and all chunk CRCs, without decoding pixels) with 8
  bits per channel and at most ``max_pixels`` pixels (refused from its header: decompression bombs).
  16-bit PNGs are refused: Pillow would silently drop their low byte.  Greyscale and palette PNGs are
  accepted (they are expanded to RGB when loaded);
* every depth map loads (pickled dict with ``normalized_depth`` or a plain 2-D array), is 2-D and finite,
  without running code from the file and within caps derived from its image's size
  (:func:`datasets.io.depth_caps`: 2 x H x W elements, a pickled file of 16 x H x W + 64 KiB bytes), so the
  images are checked first and the depth maps after them;
* per pair, the target's size equals the input's, and the depth's shape equals the input image's.

The first problem raises one :class:`DataError` naming the split, the file and what is wrong.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from datasets.errors import DataError
from datasets.io import DEFAULT_MAX_PIXELS, depth_caps, png_bit_depth, png_size, read_depth
from datasets.pairs import PairSpec

log = logging.getLogger(__name__)


def check_png(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Integrity (CRCs), 8-bit depth and at most ``max_pixels`` pixels of one PNG; returns ``(height, width)``."""
    bits, colour = png_bit_depth(path)
    size = png_size(path, max_pixels=max_pixels)
    if bits > 8:
        raise DataError(
            f"{path}: {bits}-bit {colour} PNG is not supported; expected 8 bits per channel (VIDIT's RGBA format)"
        )
    return size


def check_depth(path: Path, pixels: int) -> tuple[int, int]:
    """Load one depth map (finite, 2-D) paired with a ``pixels``-pixel image; returns its ``(height, width)``."""
    depth = read_depth(path, **depth_caps(pixels))
    return int(depth.shape[0]), int(depth.shape[1])


def _display(path: Path) -> str:
    """The path relative to the working directory when that is shorter, else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def _check_all(jobs: list[tuple[Path, Callable[[], tuple[int, int]]]], *, split: str, what: str, progress: bool,
               threads: int) -> dict[Path, tuple[int, int]]:
    """Run each ``(path, check)`` in a thread pool; ``{path: (height, width)}``, or the first DataError, labelled."""
    sizes: dict[Path, tuple[int, int]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="validate")
    try:
        futures: list[tuple[Path, Future]] = [(path, pool.submit(check)) for path, check in jobs]
        for path, future in tqdm(futures, desc=f"checking {split} {what}", unit="file", disable=not progress,
                                 leave=False):
            try:
                sizes[path] = future.result()
            except DataError as exc:
                raise DataError(f"{split} split: {exc}") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return sizes


def validate_pairs(pairs: Sequence[PairSpec], *, split: str, progress: bool = False, threads: int = 4,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Check every file of ``split``; raise one :class:`DataError` for the first bad file, else return.

    PNGs are checked by header and CRCs (no pixel decode) and refused above ``max_pixels`` pixels; then depth
    maps are loaded, each capped by the size of the largest image it is paired with.  Input and target sizes
    must agree and each depth map must have its input image's height x width.  Files are checked in a small
    thread pool (I/O and zlib release the GIL); hundreds of 1024x1024 samples take seconds.
    """
    pngs = sorted({p.input_path for p in pairs} | {p.target_path for p in pairs if p.target_path is not None})
    sizes = _check_all([(p, functools.partial(check_png, p, max_pixels)) for p in pngs], split=split,
                       what="images", progress=progress, threads=threads)
    pixels: dict[Path, int] = {}
    for pair in pairs:
        h, w = sizes[pair.input_path]
        pixels[pair.depth_path] = max(pixels.get(pair.depth_path, 0), h * w)
    depths = sorted(pixels)
    sizes |= _check_all([(p, functools.partial(check_depth, p, pixels[p])) for p in depths], split=split,
                        what="depth maps", progress=progress, threads=threads)
    for pair in pairs:
        h, w = sizes[pair.input_path]
        if pair.target_path is not None and sizes[pair.target_path] != (h, w):
            th, tw = sizes[pair.target_path]
            raise DataError(
                f"{split} split: {_display(pair.target_path)} is {tw}x{th} (width x height) but its input "
                f"{_display(pair.input_path)} is {w}x{h}"
            )
        if sizes[pair.depth_path] != (h, w):
            dh, dw = sizes[pair.depth_path]
            raise DataError(
                f"{split} split: depth map {_display(pair.depth_path)} is {dw}x{dh} (width x height) but its image "
                f"{_display(pair.input_path)} is {w}x{h}"
            )
    log.debug("%s split: %d PNGs and %d depth maps checked", split, len(pngs), len(depths))
