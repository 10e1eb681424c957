"""The torch Dataset every model trains and evaluates on, and its DataLoader.

A sample is a dict:

* ``rgb``: ``(3, S, S)`` float32 in [0, 1], the input image (alpha dropped);
* ``depth``: ``(1, S, S)`` float32, VIDIT's normalised depth (roughly [0, 1], larger is farther, 0
  probably marks invalid pixels), resized like the images;
* ``target``: ``(3, S, S)`` float32 in [0, 1], absent when the pair has no ground truth (VIDIT's test split);
* ``scene_id`` (str), ``origin`` ("baseline", "extra_input" or "mirror") and ``index`` (int).

Images and depth maps are resized so that their shorter side is ``S`` (bilinear, antialiased when
shrinking) and centre-cropped to ``S x S``; ``size=None`` keeps the native size.  Mirrored pairs are
flipped left-right before resizing.

Decoded-sample cache (``cache=True``): each distinct (file, mirrored) image is decoded, resized and
stored once, as uint8 RGB (exact: the sources are 8-bit) and float32 depth; later epochs never decode a
PNG again.  Files shared between pairs (the target and depth of the baseline and extra-input pairs) are
stored once.  :meth:`RelightingDataset.preload` decodes everything up front, in a few threads, into two
shared-memory tensors, so DataLoader workers (started afterwards) read them without decoding or copying.
Memory: about ``(3 * images + 4 * depth maps) * S * S`` bytes, e.g. ~7 GB for 300 scenes with both
extra-data strategies at 1024 x 1024.
"""

from __future__ import annotations

import functools
import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset
from tqdm import tqdm

from datasets.errors import DataError
from datasets import io as vidit_io
from datasets.pairs import PairSpec

log = logging.getLogger(__name__)

_Key = tuple[Path, bool]  # (file, mirrored)


def resize_and_crop(image: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize ``(C, H, W)`` so its shorter side is ``size``, then centre-crop to ``(C, size, size)``.

    Bilinear interpolation, antialiased (a triangle filter over the footprint) when shrinking, used
    for images and depth maps alike.  A uint8 input stays uint8 (torch's native, rounding uint8 kernel);
    a float input keeps its dtype; other integer inputs are interpolated in float32.  ``size=None`` or an
    image already ``size x size`` is returned unchanged (no interpolation, so exact).
    """
    if size is None:
        return image
    if image.ndim != 3:
        raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(image.shape)}")
    _, h, w = image.shape
    if (h, w) == (size, size):
        return image
    if h <= w:
        nh, nw = size, max(size, round(w * size / h))
    else:
        nh, nw = max(size, round(h * size / w)), size
    out = image
    if (nh, nw) != (h, w):
        shrinking = nh < h or nw < w
        if image.dtype == torch.uint8:
            # torch's native uint8 path (channels-last) is several times faster than going through float32
            # and rounds to the nearest level (within 1 of the float result).
            work = image[None].contiguous(memory_format=torch.channels_last)
        else:
            work = (image if image.is_floating_point() else image.float())[None]
        out = F.interpolate(work, size=(nh, nw), mode="bilinear", align_corners=False, antialias=shrinking)[0]
        if out.dtype != image.dtype and image.is_floating_point():
            out = out.to(image.dtype)
    top, left = (nh - size) // 2, (nw - size) // 2
    return out[:, top:top + size, left:left + size].contiguous()


def load_rgb(path: Path, mirror: bool, size: int | None, *,
             max_pixels: int = vidit_io.DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Decode a PNG -> ``(3, S, S)`` uint8 in [0, 255] (flipped left-right first when ``mirror``).

    A PNG of more than ``max_pixels`` pixels is refused from its header (:class:`DataError`).
    """
    array = vidit_io.read_rgb(path, max_pixels=max_pixels)
    if mirror:
        array = array[:, ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    return resize_and_crop(tensor, size).contiguous()


def load_depth(path: Path, mirror: bool, size: int | None, *,
               max_pixels: int = vidit_io.DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Load a depth map -> ``(1, S, S)`` float32 (flipped left-right first when ``mirror``).

    The file is capped as the depth map of a ``max_pixels``-pixel image (:func:`datasets.io.depth_caps`).
    """
    array = vidit_io.read_depth(path, **vidit_io.depth_caps(max_pixels))
    if mirror:
        array = array[:, ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    return resize_and_crop(tensor, size).contiguous()


class _DecodedFiles:
    """One kind of decoded file (images or depth maps), numbered by key: a per-process cache, then a shared bank.

    ``load(path, mirror, size)`` decodes one key to ``(C, S, S)`` of ``dtype`` (uint8 images, float32 depth).
    """

    def __init__(self, keys: list[_Key], load: Callable[[Path, bool, int | None], torch.Tensor], channels: int,
                 dtype: torch.dtype, *, size: int | None, keep: bool):
        self.keys = keys
        self.load = load
        self.channels = channels
        self.dtype = dtype
        self.size = size
        self.keep = keep  # remember decoded tensors (the dataset's ``cache``)
        self.cache: dict[int, torch.Tensor] = {}
        self.bank: torch.Tensor | list[torch.Tensor] | None = None  # set by adopt()

    def __len__(self) -> int:
        return len(self.keys)

    def decoded(self, k: int) -> torch.Tensor:
        """The tensor of key ``k``: from the bank, the cache, or decoded now (and cached when ``keep``)."""
        if self.bank is not None:
            return self.bank[k]
        tensor = self.cache.get(k)
        if tensor is None:
            tensor = self.load(*self.keys[k], self.size)
            if self.keep:
                self.cache[k] = tensor
        return tensor

    def new_bank(self, shape: tuple[int, int] | None) -> torch.Tensor | list:
        """An empty shared ``(K, C, H, W)`` tensor, or a list of K slots when ``shape`` is None (sizes differ)."""
        if shape is None:
            return [None] * len(self.keys)
        return torch.empty((len(self.keys), self.channels, *shape), dtype=self.dtype).share_memory_()

    def fill(self, bank: torch.Tensor | list, k: int, split: str) -> None:
        """Store key ``k`` (cached or decoded now) in ``bank``; DataError if its shape differs from the bank's."""
        tensor = self.cache.get(k)
        if tensor is None:
            tensor = self.load(*self.keys[k], self.size)
        if isinstance(bank, list):
            bank[k] = tensor.share_memory_()
            return
        if bank[k].shape != tensor.shape:
            raise DataError(
                f"{split} split: {self.keys[k][0]} decodes to shape {tuple(tensor.shape)}, expected "
                f"{tuple(bank[k].shape)} like the others (datasets.validate.validate_pairs reports why)"
            )
        bank[k].copy_(tensor)

    def adopt(self, bank: torch.Tensor | list) -> None:
        """Serve every key from ``bank`` from now on and drop the per-process cache."""
        self.bank = bank
        self.cache.clear()


class RelightingDataset(Dataset):
    """Pairs of (input image + depth) -> target image, as ``size x size`` tensors (see the module doc).

    ``pairs`` usually come from :func:`datasets.pairs.build_pairs`, checked by
    :func:`datasets.validate.validate_pairs`.  ``split`` only labels progress bars and messages.  Images of more
    than ``max_pixels`` pixels (the config's ``data.max_pixels``) are refused from their header when decoded,
    and depth maps are capped accordingly.
    """

    def __init__(self, pairs: Sequence[PairSpec], size: int | None, *, cache: bool = True, split: str = "train",
                 max_pixels: int = vidit_io.DEFAULT_MAX_PIXELS):
        if size is not None and size < 1:
            raise ValueError(f"size must be a positive side length or None, not {size}")
        self.pairs: list[PairSpec] = list(pairs)
        self.size = size
        self.cache = cache
        self.split = split
        self.max_pixels = max_pixels
        rgb_index: dict[_Key, int] = {}
        depth_index: dict[_Key, int] = {}
        self._index: list[tuple[int, int, int | None]] = []  # per pair: rgb key, depth key, target key
        for p in self.pairs:
            rgb = rgb_index.setdefault((Path(p.input_path), p.mirror), len(rgb_index))
            depth = depth_index.setdefault((Path(p.depth_path), p.mirror), len(depth_index))
            target = None
            if p.target_path is not None:
                target = rgb_index.setdefault((Path(p.target_path), p.mirror), len(rgb_index))
            self._index.append((rgb, depth, target))
        self._images = _DecodedFiles(list(rgb_index), functools.partial(load_rgb, max_pixels=max_pixels), 3,
                                     torch.uint8, size=size, keep=cache)
        self._depths = _DecodedFiles(list(depth_index), functools.partial(load_depth, max_pixels=max_pixels), 1,
                                     torch.float32, size=size, keep=cache)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def preloaded(self) -> bool:
        """True once :meth:`preload` has stored every sample in shared memory."""
        return self._images.bank is not None

    def __getitem__(self, i: int) -> dict:
        """Sample ``i``: ``rgb`` (3,S,S) and ``target`` (3,S,S) float32 in [0,1], ``depth`` (1,S,S) float32."""
        if not 0 <= i < len(self.pairs):
            if -len(self.pairs) <= i < 0:
                i += len(self.pairs)
            else:
                raise IndexError(f"sample {i} out of range for the {self.split} split ({len(self.pairs)} samples)")
        pair = self.pairs[i]
        rgb_k, depth_k, target_k = self._index[i]
        sample = {
            "rgb": self._images.decoded(rgb_k).float().div_(255.0),
            "depth": self._depths.decoded(depth_k).clone(),
            "scene_id": pair.scene_id,
            "origin": pair.origin,
            "index": i,
        }
        if target_k is not None:
            sample["target"] = self._images.decoded(target_k).float().div_(255.0)
        return sample

    # -- preloading -------------------------------------------------------------------------------

    def _bank_shape(self) -> tuple[int, int] | None:
        """``(H, W)`` every decoded sample has, or None when native sizes (from the PNG headers) differ."""
        if self.size is not None:
            return (self.size, self.size)
        shapes = [vidit_io.png_dimensions(path) for path, _ in self._images.keys]
        if len(set(shapes)) > 1:
            return None
        return shapes[0] if shapes else (1, 1)

    def preload(self, progress: bool = False, threads: int | None = None) -> None:
        """Decode every sample once into shared-memory tensors (call before DataLoader workers start).

        Images go to one ``(K, 3, S, S)`` uint8 tensor and depth maps to one ``(D, 1, S, S)`` float32
        tensor (a few large shared segments rather than thousands of small ones).  With ``size=None`` and
        images of different sizes, each tensor is shared separately instead.  A no-op with ``cache=False``
        or when already preloaded.
        """
        if not self.cache:
            log.info("%s split: cache is off, samples are decoded on every access", self.split)
            return
        if self.preloaded:
            return
        shape = self._bank_shape()
        if shape is None:
            log.info("%s split: images of different sizes, sharing each decoded tensor separately", self.split)
        banks = [(files, files.new_bank(shape)) for files in (self._images, self._depths)]
        jobs = [functools.partial(files.fill, bank, k, self.split) for files, bank in banks for k in range(len(files))]
        _run_in_threads(jobs, threads or min(4, os.cpu_count() or 1), f"decoding {self.split}", progress)
        for files, bank in banks:
            files.adopt(bank)
        log.debug("%s split: preloaded %d images and %d depth maps", self.split, len(self._images), len(self._depths))


def _run_in_threads(jobs: list[Callable[[], None]], threads: int, desc: str, progress: bool) -> None:
    """Run ``jobs`` in a thread pool, in order of submission; the first failure cancels the rest and is raised."""
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="preload") as pool:
        futures = [pool.submit(job) for job in jobs]
        try:
            for future in tqdm(futures, desc=desc, unit="file", disable=not progress, leave=False):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a DataLoader worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    workers: int = 0,
    seed: int = 0,
    sampler=None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader with seeded shuffling, seeded workers and (for ``workers > 0``) a preloaded dataset.

    The same ``seed`` gives the same batches with any number of workers.  With ``workers > 0`` the
    dataset is preloaded into shared memory first (in this process) and the workers are persistent.
    ``shuffle`` is ignored when a ``sampler`` is given (the sampler decides the order).  Memory is
    pinned only when CUDA is available.
    """
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    if workers > 0 and isinstance(base, RelightingDataset):
        base.preload()
    if sampler is None and shuffle:
        # A generator of its own: the loader's generator also feeds worker base seeds, drawn once per
        # epoch without workers but once per loader with persistent workers, which would shift the order.
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(int(seed)))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=_seed_worker if workers > 0 else None,
        generator=torch.Generator().manual_seed(int(seed) + 1),
        drop_last=drop_last,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
