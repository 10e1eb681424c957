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

import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
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


def load_rgb(path: Path, mirror: bool, size: int | None) -> torch.Tensor:
    """Decode a PNG -> ``(3, S, S)`` uint8 (flipped left-right first when ``mirror``)."""
    array = vidit_io.read_rgb(path)
    if mirror:
        array = array[:, ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    return resize_and_crop(tensor, size).contiguous()


def load_depth(path: Path, mirror: bool, size: int | None) -> torch.Tensor:
    """Load a depth map -> ``(1, S, S)`` float32 (flipped left-right first when ``mirror``)."""
    array = vidit_io.read_depth(path)
    if mirror:
        array = array[:, ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    return resize_and_crop(tensor, size).contiguous()


class RelightingDataset(Dataset):
    """Pairs of (input image + depth) -> target image, as ``size x size`` tensors (see the module doc).

    ``pairs`` usually come from :func:`datasets.pairs.build_pairs`, checked by
    :func:`datasets.validate.validate_pairs`.  ``split`` only labels progress bars and messages.
    """

    def __init__(self, pairs: Sequence[PairSpec], size: int | None, *, cache: bool = True, split: str = "train"):
        if size is not None and size < 1:
            raise ValueError(f"size must be a positive side length or None, not {size}")
        self.pairs: list[PairSpec] = list(pairs)
        self.size = size
        self.cache = cache
        self.split = split
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
        self._rgb_keys: list[_Key] = list(rgb_index)
        self._depth_keys: list[_Key] = list(depth_index)
        # Lazily filled caches (per process) and, after preload(), the shared banks.
        self._rgb_cache: dict[int, torch.Tensor] = {}
        self._depth_cache: dict[int, torch.Tensor] = {}
        self._rgb_bank: torch.Tensor | list[torch.Tensor] | None = None
        self._depth_bank: torch.Tensor | list[torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def preloaded(self) -> bool:
        """True once :meth:`preload` has stored every sample in shared memory."""
        return self._rgb_bank is not None

    def _rgb(self, k: int) -> torch.Tensor:
        if self._rgb_bank is not None:
            return self._rgb_bank[k]
        cached = self._rgb_cache.get(k)
        if cached is None:
            cached = load_rgb(*self._rgb_keys[k], self.size)
            if self.cache:
                self._rgb_cache[k] = cached
        return cached

    def _depth(self, k: int) -> torch.Tensor:
        if self._depth_bank is not None:
            return self._depth_bank[k]
        cached = self._depth_cache.get(k)
        if cached is None:
            cached = load_depth(*self._depth_keys[k], self.size)
            if self.cache:
                self._depth_cache[k] = cached
        return cached

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
            "rgb": self._rgb(rgb_k).float().div_(255.0),
            "depth": self._depth(depth_k).clone(),
            "scene_id": pair.scene_id,
            "origin": pair.origin,
            "index": i,
        }
        if target_k is not None:
            sample["target"] = self._rgb(target_k).float().div_(255.0)
        return sample

    # -- preloading -------------------------------------------------------------------------------

    def _native_shapes(self) -> list[tuple[int, int]] | None:
        """Per-rgb-key ``(H, W)`` after resizing, read from PNG headers; None if they differ."""
        if self.size is not None:
            return None
        shapes = []
        for path, _ in self._rgb_keys:
            with Image.open(path) as img:
                shapes.append((img.height, img.width))
        return shapes

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
        threads = threads or min(4, os.cpu_count() or 1)
        uniform = True
        if self.size is not None:
            shape = (self.size, self.size)
        else:
            shapes = self._native_shapes() or []
            uniform = len(set(shapes)) <= 1
            shape = shapes[0] if shapes else (1, 1)
        if uniform:
            rgb_bank: torch.Tensor | list = torch.empty((len(self._rgb_keys), 3, *shape), dtype=torch.uint8).share_memory_()
            depth_bank: torch.Tensor | list = torch.empty((len(self._depth_keys), 1, *shape), dtype=torch.float32).share_memory_()
        else:
            log.info("%s split: images of different sizes, sharing each decoded tensor separately", self.split)
            rgb_bank = [None] * len(self._rgb_keys)
            depth_bank = [None] * len(self._depth_keys)

        def store(bank, k: int, tensor: torch.Tensor, path: Path) -> None:
            if isinstance(bank, torch.Tensor):
                if bank[k].shape != tensor.shape:
                    raise DataError(
                        f"{self.split} split: {path} decodes to shape {tuple(tensor.shape)}, expected "
                        f"{tuple(bank[k].shape)} like the others (datasets.validate.validate_pairs reports why)"
                    )
                bank[k].copy_(tensor)
            else:
                bank[k] = tensor.share_memory_()

        def fill_rgb(k: int) -> None:
            cached = self._rgb_cache.get(k)
            store(rgb_bank, k, cached if cached is not None else load_rgb(*self._rgb_keys[k], self.size), self._rgb_keys[k][0])

        def fill_depth(k: int) -> None:
            cached = self._depth_cache.get(k)
            store(depth_bank, k, cached if cached is not None else load_depth(*self._depth_keys[k], self.size), self._depth_keys[k][0])

        jobs = [(fill_rgb, k) for k in range(len(self._rgb_keys))] + [(fill_depth, k) for k in range(len(self._depth_keys))]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="preload") as pool:
            futures = [pool.submit(fn, k) for fn, k in jobs]
            try:
                for future in tqdm(futures, desc=f"decoding {self.split}", unit="file", disable=not progress, leave=False):
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        self._rgb_bank, self._depth_bank = rgb_bank, depth_bank
        self._rgb_cache.clear()
        self._depth_cache.clear()
        log.debug("%s split: preloaded %d images and %d depth maps", self.split, len(rgb_bank), len(depth_bank))


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
