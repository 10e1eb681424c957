"""Up-front validation of a split, before any training: every file readable, sizes consistent.

Checks, each distinct file once (depth maps and targets are shared between pairs):

* every PNG is a complete, uncorrupted PNG (header and all chunk CRCs, without decoding pixels) with 8
  bits per channel.  16-bit PNGs are refused: Pillow would silently drop their low byte.  Greyscale and
  palette PNGs are accepted (they are expanded to RGB when loaded);
* every depth map loads (pickled dict with ``normalized_depth`` or a plain 2-D array), is 2-D and finite;
* per pair, the target's size equals the input's, and the depth's shape equals the input image's.

The first problem raises one :class:`DataError` naming the split, the file and what is wrong.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from datasets.errors import DataError
from datasets.io import png_bit_depth, png_size, read_depth
from datasets.pairs import PairSpec

log = logging.getLogger(__name__)

def check_png(path: Path) -> tuple[int, int]:
    """Integrity (CRCs) and 8-bit depth of one PNG; returns ``(height, width)``."""
    bits, colour = png_bit_depth(path)
    size = png_size(path)
    if bits > 8:
        raise DataError(
            f"{path}: {bits}-bit {colour} PNG is not supported; expected 8 bits per channel (VIDIT's RGBA format)"
        )
    return size


def check_depth(path: Path) -> tuple[int, int]:
    """Load one depth map (finite, 2-D); returns its ``(height, width)``."""
    depth = read_depth(path)
    return int(depth.shape[0]), int(depth.shape[1])


def _display(path: Path) -> str:
    """The path relative to the working directory when that is shorter, else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def validate_pairs(pairs: Sequence[PairSpec], *, split: str, progress: bool = False, threads: int = 4) -> None:
    """Check every file of ``split``; raise one :class:`DataError` for the first bad file, else return.

    PNGs are checked by header and CRCs (no pixel decode), depth maps are loaded.  Input and target sizes
    must agree and each depth map must have its input image's height x width.  Files are checked in a
    small thread pool (I/O and zlib release the GIL); hundreds of 1024x1024 samples take seconds.
    """
    pngs = sorted({p.input_path for p in pairs} | {p.target_path for p in pairs if p.target_path is not None})
    depths = sorted({p.depth_path for p in pairs})
    jobs: list[tuple[Path, Callable[[Path], tuple[int, int]]]] = [(p, check_png) for p in pngs]
    jobs += [(p, check_depth) for p in depths]
    sizes: dict[Path, tuple[int, int]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="validate")
    try:
        futures: list[tuple[Path, Future]] = [(path, pool.submit(fn, path)) for path, fn in jobs]
        for path, future in tqdm(futures, desc=f"checking {split}", unit="file", disable=not progress, leave=False):
            try:
                sizes[path] = future.result()
            except DataError as exc:
                raise DataError(f"{split} split: {exc}") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
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
