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
from reports.train_logs import RankStability, held_out_band

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


def plots(results: pd.DataFrame, logs: dict[str, dict[int, pd.DataFrame]],
          stabilities: Sequence[tuple[str, RankStability]] = ()) -> list[dict]:
    """Inline SVG plots: PSNR vs time per image, each seed's validation PSNR and SSIM (strip plots), training
    loss, held-out PSNR with a band over seeds, and the rank stability of the tables (``stabilities``:
    (tables' names, their :class:`RankStability`))."""
    val = results[(results.split == "val") & (results.status == "done")]
    points = [(exp, float(g["time_per_image_s"].mean()), float(g["psnr"].mean()))
              for exp, g in val.groupby("experiment", sort=False)]
    out = [{"title": "PSNR against time per image", "svg": figures.scatter_svg(
        points, "PSNR (validation) against time per image", "time per image (s, log scale)", "PSNR (dB)")}]
    for metric, unit in (("psnr", "dB"), ("ssim", "")):
        groups = [(exp, pd.to_numeric(g[metric], errors="coerce").tolist()) for exp, g in val.groupby("experiment", sort=False)]
        out.append({"title": f"Each seed's validation {metric.upper()} (one dot per seed; line: the mean)",
                    "svg": figures.strip_svg(groups, f"Validation {metric.upper()} per seed",
                                             f"{metric.upper()}{f' ({unit})' if unit else ''}")})
    losses = [(exp, (f := seed_logs[min(seed_logs)])["step"].tolist(), f["loss"].tolist())
              for exp, seed_logs in logs.items() if "loss" in seed_logs[min(seed_logs)]]
    out.append({"title": "Training loss", "svg": figures.curves_svg(
        losses, "Training loss (seed of the lowest number)", "step", "loss")})
    bands = {exp: band for exp, seed_logs in logs.items() if (band := held_out_band(seed_logs)) is not None}
    if bands:
        out.append({"title": "Held-out PSNR during training: mean over seeds, band from the lowest to the highest seed",
                    "svg": figures.curves_svg([(f"{exp} ({b.seeds} seed{'s' if b.seeds > 1 else ''})", b.steps, b.mean)
                                               for exp, b in bands.items()],
                                              "PSNR on held-out training scenes", "step", "PSNR (dB)",
                                              bands=[(b.low, b.high) for b in bands.values()])})
    if stabilities:
        out.append({"title": "Rank stability: Kendall's τ between each validation step's ranking (held-out PSNR) "
                             "and the last one's", "svg": figures.curves_svg(
                        [(names, r.steps, r.taus) for names, r in stabilities], "Rank stability of the tables",
                        "step", "Kendall's τ vs the last step")})
    return out


def _lowest_seed_dir(rows: pd.DataFrame, experiment: str) -> Path:
    """The folder of ``experiment``'s lowest seed (``rows``: its result rows, with the ``run`` folder of each)."""
    seed = int(rows["seed"].min())
    return run_folder.experiment_dir(Path(rows[rows.seed == seed]["run"].iloc[0]), experiment, seed)
