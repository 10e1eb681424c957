"""Using trained experiments: relight a user's image, export an NTIRE 2021 submission."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import statistics
import time
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from relight_base import run_folder
from relight_base.atomic import atomic_write_bytes
from bench.harness.config import BenchConfig, ExperimentConfig, load_config
from datasets.errors import DataError
from relight_base.errors import BenchError
from relight_base.results import Weights
from bench.harness.modeling import RelightingModel, build_model, inference_model
from models.errors import RegistryError
from models.registry import list_models, load_plugins
from datasets.io import (DEFAULT_MAX_PIXELS, check_pixels, depth_caps, encode_rgb_png, read_depth, read_rgb,
                         to_uint8_image)

log = logging.getLogger(__name__)


def load_trained(run_dir: Path, experiment: str, seed: int | None = None, device: torch.device | str = "cpu",
                 weights: str | None = None,
                 plugins: Sequence[str] = ()) -> tuple[BenchConfig, ExperimentConfig, RelightingModel]:
    """The config, experiment and trained model (eval mode) of ``experiment`` in a run folder.

    ``weights``: ``last`` (model.pt), ``best`` (best.pt, kept by ``train.val_every``) or None for the run's
    ``eval.weights``.  ``plugins``: modules to import first.  The plugins a run folder's config lists are never
    imported from it (a run folder is data; a plugin is code): a model that only a plugin registers needs the
    caller to name that plugin (``--plugin``), or to have imported it already (a run does, from its own config).
    """
    run_dir = Path(run_dir)
    cfg = load_config(run_dir / run_folder.CONFIG_YAML)
    exp = cfg.experiment(experiment)
    seed = min(cfg.seeds) if seed is None else seed
    which = weights or cfg.eval.weights
    if which not in Weights.values():
        raise BenchError(f"weights: expected one of {', '.join(Weights.values())}, not {which!r}")
    path = run_folder.experiment_dir(run_dir, experiment, seed) / Weights(which).file
    load_plugins(plugins)
    _check_registered(exp, cfg, run_dir)
    model = build_model(exp, dataclasses.replace(cfg.weights, backbone=False))  # trained weights replace them
    if any(True for _ in model.parameters()):
        if not path.is_file():
            raise BenchError(_missing_weights(path, which, experiment, seed))
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return cfg, exp, model.to(device).eval()


def _check_registered(exp: ExperimentConfig, cfg: BenchConfig, run_dir: Path) -> None:
    """A :class:`RegistryError` when ``exp``'s model is not registered here, naming the plugins its run listed."""
    if exp.model in list_models():
        return
    listed = ", ".join(cfg.plugins) or "none"
    raise RegistryError(
        f"{run_dir / run_folder.CONFIG_YAML}: experiment {exp.name!r} uses model {exp.model!r}, which is not built "
        f"in (the run's config lists the plugins: {listed}). Importing a plugin runs its code, so plugins named in a "
        f"run folder are imported only when you ask: pass --plugin MODULE for a module you trust (on PYTHONPATH)")


def _missing_weights(path: Path, which: str, experiment: str, seed: int) -> str:
    """Why ``path`` (the ``which`` weights of an experiment) is not there, and what to do."""
    chosen = Weights(which)
    if chosen.needs_ema:
        return (f"{path}: no {which} weights; the moving average of the weights is kept only when the run set "
                f"train.ema_decay{' and train.val_every > 0' if chosen.needs_validation else ''}; use --weights "
                f"{Weights.LAST.value} for {Weights.LAST.file}")
    if chosen.needs_validation:
        return (f"{path}: no {which} weights; they are kept only when the run validates during training "
                f"(train.val_every > 0); use --weights {Weights.LAST.value} for {Weights.LAST.file}")
    return f"{path}: no trained weights (did experiment {experiment!r} with seed {seed} finish?)"


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


def read_depth_any(path: Path, *, image_hw: tuple[int, int] | None = None,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A depth map from a VIDIT ``.npy`` (or plain 2-D array) or a greyscale PNG (16-bit / 65535, 8-bit / 255).

    Returns ``(H, W) float32`` (a PNG's values in [0, 1]).  Nothing in the file runs, and nothing larger than
    the depth map of the image it goes with is read: with ``image_hw`` (the RGB image's height and width) a
    ``.npy`` is capped by :func:`datasets.io.depth_caps` of H x W and an image by 2 x H x W pixels; without
    it, by ``max_pixels``.  An image over its cap is refused from its header, before decoding.
    """
    path = Path(path)
    pixels = image_hw[0] * image_hw[1] if image_hw is not None else max_pixels
    if path.suffix.lower() == ".npy":
        return read_depth(path, **depth_caps(pixels))
    limit = 2 * pixels if image_hw is not None else max_pixels
    try:
        with Image.open(path) as img:
            mode = img.mode
            check_pixels(path, img.height, img.width, limit)
            array = np.array(img)
    except FileNotFoundError:
        raise DataError(f"{path}: depth file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path}: refused by Pillow as a possible decompression bomb ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    if mode.startswith("I;16") or (mode == "I" and array.max(initial=0) <= 65535):
        return (array.astype(np.float32) / 65535.0)
    if mode == "L":
        return array.astype(np.float32) / 255.0
    raise DataError(f"{path}: depth PNG must be greyscale (8 or 16 bit), found mode {mode}")


def _tensors(rgb: np.ndarray, depth: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255.0).to(device)
    d = torch.from_numpy(np.ascontiguousarray(depth))[None, None].float().to(device)
    return x, d


def predict_file(run_dir: Path, experiment: str, image: Path, depth: Path, out: Path, *, seed: int | None = None,
                 weights: str | None = None, plugins: Sequence[str] = ()) -> None:
    """Relight ``image`` with ``depth`` at its native size and write the result as an RGB PNG.

    Images above the run's ``data.max_pixels`` are refused from their header; the depth file is capped by the
    image's size (see :func:`read_depth_any`).

    ``weights``: last, best, or None for the run's ``eval.weights`` (see :func:`load_trained`).
    """
    cfg, _, model = load_trained(run_dir, experiment, seed, weights=weights, plugins=plugins)
    rgb = read_rgb(image, max_pixels=cfg.data.max_pixels)
    dmap = read_depth_any(depth, image_hw=rgb.shape[:2], max_pixels=cfg.data.max_pixels)
    if dmap.shape != rgb.shape[:2]:
        raise DataError(f"{depth}: depth is {dmap.shape[1]}x{dmap.shape[0]} but {image} is {rgb.shape[1]}x{rgb.shape[0]}")
    fast = inference_model(model)
    with torch.inference_mode():
        pred = fast(*(_channels_last(t) for t in _tensors(rgb, dmap, "cpu")))[0]
    atomic_write_bytes(out, encode_rgb_png(to_uint8_image(pred)))


def export_submission(run_dir: Path, experiment: str, *, out: Path | None = None, seed: int | None = None,
                      weights: str | None = None, plugins: Sequence[str] = ()) -> Path:
    """Relight every test input at native size; zip one PNG per scene plus the challenge's readme.txt.

    ``weights``: last, best, or None for the run's ``eval.weights`` (see :func:`load_trained`).
    """
    from bench.harness.data import build_split

    run_dir = Path(run_dir)
    cfg, exp, model = load_trained(run_dir, experiment, seed, weights=weights, plugins=plugins)
    which = weights or cfg.eval.weights
    data = json.loads((run_dir / run_folder.DATA_JSON).read_text())
    test = build_split(dataclasses.replace(cfg.data, size=None), Path(data["root"]), "test")
    buffer = io.BytesIO()
    times = []
    fast = inference_model(model)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, torch.inference_mode():
        for i in range(len(test)):
            sample = test[i]
            rgb, depth = _channels_last(sample["rgb"][None]), _channels_last(sample["depth"][None])
            start = time.perf_counter()
            pred = fast(rgb, depth)[0]
            times.append(time.perf_counter() - start)
            archive.writestr(f"{sample['scene_id']}.png", encode_rgb_png(to_uint8_image(pred)))
        extra = 1 if exp.extra_data else 0
        archive.writestr("readme.txt", (
            f"Runtime per image [s] : {statistics.median(times):.4f}\n"
            f"CPU[1] / GPU[0] : 1\n"
            f"Extra Data [1] / No Extra Data [0] : {extra}\n"
            f"Other description : relight-bench experiment '{exp.name}' (model {exp.model}, residual "
            f"{'on' if exp.residual else 'off'}), trained on {cfg.data.source} data at {cfg.data.size} px, "
            f"{which} weights ({Weights(which).file}); "
            f"runtime is the median model forward time on CPU at native size.\n"
        ))
    target = Path(out) if out else run_folder.submission_zip(run_dir, experiment)
    atomic_write_bytes(target, buffer.getvalue())
    return target
