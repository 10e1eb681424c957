"""Extra table rows scored from published images (``bench report --extra NAME=CSV``).

Methods without an adapter here publish their relit images; ``python -m bench score PRED_DIR GT_DIR --out CSV``
scores such a folder with the harness's metric code and writes one row per image (``scene_id, psnr, ssim,
lpips, mps``).  Given to the report as ``NAME=CSV`` (a validation-split row) or ``NAME:SPLIT=CSV`` (``SPLIT``:
``val`` or ``test``), that file becomes a row of the quality tables, labelled as scored from published images,
with intervals and paired differences computed like every other row's, on the scenes it shares with the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from reports.errors import ReportError
from reports.per_image import METRICS, PerImage, read_scores_csv

SPLITS = ("val", "test")
SOURCE_NOTE = "scored from published images"
FORM = "NAME=CSV or NAME:SPLIT=CSV (SPLIT: val or test)"


@dataclass(frozen=True)
class ExtraSpec:
    """One ``--extra``: the row's name, the split its images belong to, and the per-image score file."""

    name: str
    split: str
    path: Path


def parse_extra(text: str) -> ExtraSpec:
    """``NAME=CSV`` (split ``val``) or ``NAME:SPLIT=CSV``; a malformed value is a :class:`ReportError` naming it."""
    if "=" not in text:
        raise ReportError(f"--extra {text!r}: expected {FORM}, e.g. s3net=scores/s3net_val.csv")
    name, path = (part.strip() for part in text.split("=", 1))
    split = "val"
    if ":" in name:
        name, split = (part.strip() for part in name.rsplit(":", 1))
        if split not in SPLITS:
            raise ReportError(f"--extra {text!r}: split {split!r} is not one of {', '.join(SPLITS)}; expected {FORM}")
    if not name or not path:
        raise ReportError(f"--extra {text!r}: both a name and a CSV path are needed; expected {FORM}")
    return ExtraSpec(name, split, Path(path))


def check_names(specs: Sequence[ExtraSpec], experiments: Iterable[str]) -> None:
    """An extra row's name must differ from every experiment's; one name may be given once per split
    (``s3net=val.csv`` and ``s3net:test=test.csv`` fill one row's validation and test columns)."""
    taken = set(experiments)
    seen: set[tuple[str, str]] = set()
    for spec in specs:
        if spec.name in taken:
            raise ReportError(f"--extra {spec.name}={spec.path}: the name {spec.name!r} is already an experiment of "
                              f"the reported run(s); choose another name")
        if (spec.name, spec.split) in seen:
            raise ReportError(f"--extra {spec.name}: given twice for the {spec.split} split; each name takes one "
                              f"CSV per split")
        seen.add((spec.name, spec.split))


def _restrict(spec: ExtraSpec, frame: pd.DataFrame, run_scenes: set[str]) -> tuple[pd.DataFrame, list[str]]:
    """``frame``'s rows on the run's scenes of the split (all of them when the run stored none)."""
    if not run_scenes:
        return frame, [f"--extra {spec.name}: the run stored no per-image {spec.split} metrics, so its scenes "
                       f"cannot be matched; the row holds all {len(frame)} images of {spec.path} and has no Δ."]
    shared = frame[frame["scene_id"].isin(run_scenes)]
    if shared.empty:
        raise ReportError(f"--extra {spec.name}={spec.path}: none of its {len(frame)} scene ids (e.g. "
                          f"{frame['scene_id'].iloc[0]}) is in the run's {spec.split} split (e.g. "
                          f"{sorted(run_scenes)[0]}); was it scored on another split?")
    if len(shared) < len(frame) or len(shared) < len(run_scenes):
        return shared, [f"--extra {spec.name}: {len(shared)} of its {len(frame)} images are among the run's "
                        f"{len(run_scenes)} {spec.split} images; only those are used."]
    return shared, []


def load_extras(specs: Sequence[ExtraSpec], per_image: PerImage) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The extra rows: ``(result rows, seed-averaged per-image rows, warnings)``.

    Result rows have the columns the tables read (``experiment, model, seed, split, status``, the metric means,
    ``extra`` True); per-image rows have :attr:`PerImage.frame`'s columns (one "seed").
    """
    results, images, warnings = [], [], []
    for spec in specs:
        try:
            scored = read_scores_csv(spec.path)
        except ReportError as exc:
            raise ReportError(f"--extra {spec.name}: {exc}") from None
        frame, notes = _restrict(spec, scored, per_image.scene_ids(spec.split))
        warnings += notes
        images.append(frame.assign(experiment=spec.name, split=spec.split, seeds=1))
        means = {m: float(frame[m].mean()) if frame[m].notna().all() else math.nan for m in METRICS}
        results.append({"experiment": spec.name, "model": SOURCE_NOTE, "seed": 0, "split": spec.split,
                        "status": "done", **means, "extra": True, "run": str(spec.path)})
    columns = ["experiment", "split", "scene_id", *METRICS, "seeds"]
    per_image_rows = pd.concat(images, ignore_index=True)[columns] if images else pd.DataFrame(columns=columns)
    return pd.DataFrame(results), per_image_rows, warnings
