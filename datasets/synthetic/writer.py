"""Writing a synthetic dataset to disk: render every scene (in worker processes), then publish the tree.

The tree is built in a hidden ``.<name>.partial-<pid>`` folder beside the destination and renamed into
place once complete (its manifest written last), so an interrupted run never leaves a tree that looks
complete.  Scenes are rendered independently of each other and of the worker count, so the files are
byte-identical for any number of workers.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

from datasets.errors import DataError
from datasets.io import encode_depth_npy, encode_rgba_png
from datasets.synthetic.render import MAX_DISTANCE, render_conditions
from datasets.synthetic.scenes import scene_for_index
from datasets.synthetic.spec import SyntheticSpec
from datasets.synthetic.tree import FOLDERS, FULL, MANIFEST, SPLIT_FOLDERS, check_existing, manifest, scene_layout
from relight_base.atomic import atomic_write_text, fsync_dir

log = logging.getLogger(__name__)


class SceneTask(NamedTuple):
    """One scene to render: the partial tree it goes to, the spec, its id, its split and the id width."""

    folder: str
    spec: SyntheticSpec
    index: int
    split: str
    width: int


def _write(path: Path, data: bytes) -> None:
    """Write a file of the partial tree and flush it to disk (the tree becomes visible only by the final rename)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_scene(task: SceneTask) -> int:
    """Render one scene's conditions and write its files under the partial tree (runs in a worker); its id."""
    root, spec = Path(task.folder), task.spec
    name = f"Image{task.index:0{task.width}d}"
    conds = [spec.input, spec.target]
    if task.split == "train":
        conds += list(spec.conditions)
    conds = list(dict.fromkeys(conds))
    images, depth = render_conditions(scene_for_index(spec.seed, task.index), conds, spec.size)
    pngs = {c: encode_rgba_png(images[c]) for c in conds}
    npy = encode_depth_npy(depth, ref_center_dis=MAX_DISTANCE)
    in_dir, gt_dir = SPLIT_FOLDERS[task.split]
    _write(root / in_dir / f"{name}.png", pngs[spec.input])
    _write(root / in_dir / f"{name}.npy", npy)
    _write(root / gt_dir / f"{name}.png", pngs[spec.target])
    if task.split == "train":
        for c in spec.conditions:
            _write(root / FULL / f"{name}_{c}.png", pngs[c])
        _write(root / FULL / f"{name}.npy", npy)
    return task.index


def _available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks, e.g. in containers)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork avoids re-importing torch (pulled in by the bench package) in every worker; the workers only use
    # numpy and PIL.  Elsewhere (macOS, Windows) use spawn.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _progress(total: int, enabled: bool):
    """A tqdm bar counting scenes (hidden when not ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="synthetic scenes", unit="scene", disable=not enabled, leave=False)


def _render_all(tasks: list[SceneTask], workers: int, progress: bool) -> None:
    """Run :func:`write_scene` for every task, here (``workers <= 1``) or in a process pool."""
    if workers <= 1:
        with _progress(len(tasks), progress) as bar:
            for task in tasks:
                write_scene(task)
                bar.update(1)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        # submit (and so fork) before the progress bar starts its monitor thread
        done = pool.map(write_scene, tasks, chunksize=max(1, min(8, len(tasks) // (4 * workers))))
        with _progress(len(tasks), progress) as bar:
            for _ in done:
                bar.update(1)


def _start_partial_tree(root: Path) -> Path:
    """Create the empty partial tree beside ``root`` (warning about ones other runs left) and return it."""
    partial = root.parent / f".{root.name}.partial-{os.getpid()}"
    stale = sorted(p.name for p in root.parent.glob(f".{root.name}.partial-*") if p != partial)
    if stale:
        log.warning(
            "synthetic data: found %s in %s, left by an interrupted (or still running) generation; "
            "delete once no other generation is running", ", ".join(stale), root.parent,
        )
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        if partial.exists():
            shutil.rmtree(partial)
        for folder in FOLDERS:
            (partial / folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the synthetic data folder next to {root} ({exc.strerror or exc}); "
            "choose a writable data.root"
        ) from None
    return partial


def _publish(partial: Path, root: Path, spec: SyntheticSpec) -> bool:
    """Seal the partial tree (fsync, manifest) and rename it to ``root``.

    Returns False when another process published the same dataset first (the partial tree is then removed).
    """
    for folder in FOLDERS:
        fsync_dir(partial / folder)
    atomic_write_text(partial / MANIFEST, json.dumps(manifest(spec), indent=2) + "\n")
    try:
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()  # an empty folder the user made beforehand
        os.rename(partial, root)
    except OSError:
        if check_existing(root, spec):
            shutil.rmtree(partial, ignore_errors=True)
            return False
        raise
    return True


def generate(root: str | os.PathLike, spec: SyntheticSpec, *, workers: int | None = None, progress: bool = True) -> Path:
    """Write the synthetic dataset of ``spec`` into ``root`` (or reuse it) and return ``root``.

    Layout (scene ids continue across splits: train, then val, then test; 3+ digit zero padding)::

        track1_train/input/ImageNNN.png + ImageNNN.npy   input condition, depth (pickled dict)
        track1_train/target/ImageNNN.png                 target condition
        track1_validation/ImageNNN.png + .npy            validation inputs
        track1_validation_gt/ImageNNN.png                validation targets
        track1_test/ImageNNN.png + .npy                  test inputs
        track1_test_gt/ImageNNN.png                      test targets (VIDIT never published these)
        vidit_full/ImageNNN_TTTT_D.png + ImageNNN.npy    training scenes under every spec.conditions
        manifest.json                                    spec, renderer version, counts, folders (written last)

    An existing ``root`` holding the same spec is returned as is; an existing empty folder is filled;
    anything else raises :class:`DataError`.  ``workers``: processes to use (``None``: all usable cores;
    0 or 1: this process).  Files are byte-identical for any worker count.
    """
    root = Path(root).expanduser()
    if check_existing(root, spec):
        log.info("synthetic data: reusing %s", root)
        return root
    items, width = scene_layout(spec)
    workers = max(0, min(int(_available_cpus() if workers is None else workers), len(items)))
    partial = _start_partial_tree(root)
    log.info("synthetic data: rendering %d scenes at %d px into %s (%d workers)", len(items), spec.size, root, workers)
    start = time.perf_counter()
    try:
        _render_all([SceneTask(str(partial), spec, index, split, width) for index, split in items], workers, progress)
        if not _publish(partial, root, spec):
            return root
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    fsync_dir(root.parent)
    elapsed = time.perf_counter() - start
    log.info(
        "synthetic data: %d scenes in %.1f s (%.1f scenes/s) -> %s", len(items), elapsed, len(items) / elapsed, root
    )
    return root
