"""Per-image metrics, the units every interval and paired difference of the report is computed over.

A run folder holds one ``metrics_<split>.csv`` per experiment and seed (``scene_id, psnr, ssim, lpips, mps``;
NaN where a metric is unknown, e.g. LPIPS without its weights); ``bench score`` writes the same columns for a
folder of published images.  With several seeds, each image's metrics are averaged over the seeds first, so
an image counts once however many seeds ran (seeds are not independent samples of the images).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from relight_base import results as contract
from relight_base import run_folder
from reports.csv_input import read_checked_csv
from reports.errors import ReportError

METRICS = contract.METRICS
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "mps": True, "lpips": False}
COLUMNS = ("scene_id", *METRICS)
KEYS = ["experiment", "split", "scene_id"]


def read_scores_csv(path: Path) -> pd.DataFrame:
    """A per-image score file, checked: columns ``scene_id, psnr, ssim, lpips, mps`` (float, NaN where unknown).

    A missing or unreadable file, a missing column, a value that is not a number, no rows or a scene listed
    twice is a :class:`ReportError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: per-image score file does not exist")
    frame = read_checked_csv(path, kind="CSV of per-image scores", columns=COLUMNS, dtype={"scene_id": str},
                             expected=f"the columns {', '.join(COLUMNS)} (as `python -m bench score` writes them)")
    if frame.empty:
        raise ReportError(f"{path}: no rows; expected one row of scores per image")
    frame = frame[list(COLUMNS)].copy()
    for metric in METRICS:
        numbers = pd.to_numeric(frame[metric], errors="coerce")
        bad = frame[metric].notna() & numbers.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ReportError(f"{path}: row {row + 2}, column {metric}: {frame[metric].iloc[row]!r} is not a number")
        frame[metric] = numbers.astype(np.float64)
    frame["scene_id"] = frame["scene_id"].astype(str).str.strip()
    duplicated = sorted(set(frame.loc[frame["scene_id"].duplicated(), "scene_id"]))
    if duplicated:
        raise ReportError(f"{path}: scene(s) listed more than once: {', '.join(duplicated[:5])}")
    return frame


def seed_average(long: pd.DataFrame) -> pd.DataFrame:
    """``long`` (``experiment, split, seed, scene_id`` + metrics) averaged over seeds per image.

    An image unknown (NaN) in any seed stays NaN; ``seeds`` counts the seeds averaged.
    """
    if long.empty:
        return pd.DataFrame(columns=[*KEYS, *METRICS, "seeds"])
    grouped = long.groupby(KEYS, sort=False)
    means = grouped[list(METRICS)].mean()
    means = means.mask(long[list(METRICS)].isna().groupby([long[k] for k in KEYS], sort=False).any())
    means["seeds"] = grouped.size()
    return means.reset_index()


@dataclass
class PerImage:
    """Seed-averaged per-image metrics of every reported row (experiments and extra rows)."""

    frame: pd.DataFrame = field(default_factory=lambda: seed_average(pd.DataFrame()))

    def __post_init__(self) -> None:
        self._groups = {key: sub.set_index("scene_id").sort_index()
                        for key, sub in self.frame.groupby(["experiment", "split"], sort=False)}

    def values(self, experiment: str, split: str, metric: str) -> pd.Series:
        """``experiment``'s per-image ``metric`` on ``split``, indexed by scene id (empty when not stored)."""
        sub = self._groups.get((experiment, split))
        return pd.Series(dtype=np.float64) if sub is None else sub[metric]

    def seeds(self, experiment: str, split: str) -> int:
        """The largest number of seeds averaged into one image of ``experiment`` on ``split`` (0: none stored)."""
        sub = self._groups.get((experiment, split))
        return 0 if sub is None else int(sub["seeds"].max())

    def scene_ids(self, split: str) -> set[str]:
        """Every scene id stored for ``split``, over all experiments."""
        return set(self.frame.loc[self.frame["split"] == split, "scene_id"])

    def with_rows(self, extra: pd.DataFrame) -> "PerImage":
        """A copy with more seed-averaged rows (same columns as :attr:`frame`)."""
        return PerImage(pd.concat([self.frame, extra], ignore_index=True))


def load_per_image(results: pd.DataFrame) -> tuple[PerImage, list[str]]:
    """The per-image metrics behind every finished row of ``results`` (with a ``run`` column: its folder).

    Returns them seed-averaged, and one warning per experiment whose per-image files are missing (its
    intervals are then n/a).
    """
    frames, missing = [], []
    done = results[results["status"] == "done"]
    for row in done[["run", "experiment", "seed", "split"]].itertuples(index=False):
        path = run_folder.metrics_csv(run_folder.experiment_dir(Path(row.run), row.experiment, int(row.seed)), row.split)
        if not path.is_file():
            missing.append(f"{row.experiment} (seed {int(row.seed)}, {row.split})")
            continue
        frames.append(read_scores_csv(path).assign(experiment=row.experiment, split=row.split, seed=int(row.seed)))
    warnings = [f"Per-image metrics are missing for {', '.join(missing)}: their intervals and paired differences "
                f"are n/a."] if missing else []
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return PerImage(seed_average(long)), warnings


def matched(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The values of ``a`` and ``b`` (indexed by scene id) on the scenes both hold, in scene-id order."""
    common = a.index.intersection(b.index).sort_values()
    return a.loc[common].to_numpy(np.float64), b.loc[common].to_numpy(np.float64)
