"""The report's pictures of a run: Figure 6 style visual comparisons and the inline SVG plots."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from relight_base import run_folder
from relight_base.atomic import atomic_write_bytes
from relight_base.errors import BenchError
from datasets.io import read_rgb
from reports import figures
from reports.loading import LoadedRun

log = logging.getLogger(__name__)

# (run config as stored in config.yaml, data root) -> validation samples, for the visual comparison
SceneLoader = Callable[[dict, Path], Sequence[dict]]


def visual_comparison(run: LoadedRun, results: pd.DataFrame, out_dir: Path, load_scenes: SceneLoader | None,
                      scenes: int = 3) -> list[dict]:
    """Figure 6 style PNGs for the first validation scenes of ``run``; returns entries for the template.

    ``results``: the report's result rows (with the ``run`` folder of each), one prediction per experiment.

    ``load_scenes(config, data_root)`` gives the validation samples of the first run
    (``rgb``/``target``: (3,H,W) float in [0,1], ``depth``: (1,H,W), ``scene_id``); the
    caller supplies it, so the reporter stays independent of the config schema.
    Without it, no figure is drawn.
    """
    if load_scenes is None:
        return []
    try:
        val = load_scenes(run.config, Path(run.data["root"]))
    except BenchError as exc:
        log.warning("visual comparison skipped: %s", exc)
        return []
    entries = []
    order = list(dict.fromkeys(results["experiment"]))
    for i in range(min(scenes, len(val))):
        sample = val[i]
        scene = sample["scene_id"]
        preds = []
        for exp in order:
            rows = results[(results.experiment == exp) & (results.split == "val")]
            if rows.empty:
                continue
            png = run_folder.prediction_png(run_folder.predictions_dir(_lowest_seed_dir(rows, exp), "val"), scene)
            if png.is_file():
                preds.append((exp, read_rgb(png)))
        to_u8 = lambda t: (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # noqa: E731
        target = to_u8(sample["target"]) if "target" in sample else None
        data = figures.comparison_strip(to_u8(sample["rgb"]), sample["depth"][0].numpy(), target, preds)
        name = f"{run_folder.FIGURES_DIR}/visual_{scene}.png"
        atomic_write_bytes(out_dir / name, data)
        entries.append({"scene": scene, "src": name, "experiments": [p[0] for p in preds]})
    return entries


def plots(results: pd.DataFrame) -> list[dict]:
    """Inline SVG plots: PSNR vs time per image, and training-loss curves."""
    val = results[(results.split == "val") & (results.status == "done")]
    points = [(exp, float(g["time_per_image_s"].mean()), float(g["psnr"].mean()))
              for exp, g in val.groupby("experiment", sort=False)]
    scatter = figures.scatter_svg(points, "PSNR (validation) against time per image", "time per image (s, log scale)", "PSNR (dB)")
    loss_curves, held_out_curves = [], []
    for exp in dict.fromkeys(results["experiment"]):
        frame = _training_log(results[results.experiment == exp], exp)
        if frame is None:
            continue
        loss_curves.append((exp, frame["step"].tolist(), frame["loss"].tolist()))
        if "holdout_psnr" in frame and frame["holdout_psnr"].notna().any():
            validated = frame[frame["holdout_psnr"].notna()]
            held_out_curves.append((exp, validated["step"].tolist(), validated["holdout_psnr"].tolist()))
    out = [{"title": "PSNR against time per image", "svg": scatter},
           {"title": "Training loss", "svg": figures.curves_svg(
               loss_curves, "Training loss (seed of the lowest number)", "step", "loss")}]
    if held_out_curves:
        out.append({"title": "Held-out PSNR during training", "svg": figures.curves_svg(
            held_out_curves, "PSNR on held-out training scenes (seed of the lowest number)", "step", "PSNR (dB)")})
    return out


def _training_log(rows: pd.DataFrame, experiment: str) -> pd.DataFrame | None:
    """The ``train_log.csv`` of ``experiment``'s lowest seed, or None when it has none or it is empty."""
    log_path = _lowest_seed_dir(rows, experiment) / run_folder.TRAIN_LOG_CSV
    if not log_path.is_file() or log_path.stat().st_size <= 1:
        return None
    try:
        frame = pd.read_csv(log_path)
    except pd.errors.EmptyDataError:
        return None
    return frame if len(frame) else None


def _lowest_seed_dir(rows: pd.DataFrame, experiment: str) -> Path:
    """The folder of ``experiment``'s lowest seed (``rows``: its result rows, with the ``run`` folder of each)."""
    seed = int(rows["seed"].min())
    return run_folder.experiment_dir(Path(rows[rows.seed == seed]["run"].iloc[0]), experiment, seed)
