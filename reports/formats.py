"""A :class:`reports.tables.Table` as text: cells for the page, CSV (+ its column guide), Markdown and LaTeX.

Quality cells read ``value [low, high]``: the mean over images and its bootstrap CI, the test-set uncertainty
of these trained weights (intervals are not symmetric, so no ``±``), with a second line at the seed level:
``seeds: sd S; t [low, high] (k)``.  ``value [n/a]``: no interval could be given (one image, zero variance, no
per-image metrics stored); ``n/a``: no value at all (e.g. LPIPS without its weights).  A NaN is never printed
as a number.  Marks: **bold** the significantly best row of a column; ``(tied)`` the leader and the rows it is
not significantly ahead of; ``†`` a Δ whose image-level CI excludes 0.  Each Δ's verdict is in its own block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import pandas as pd

from reports.deltas import NOT_COMPARED, REFERENCE
from reports.seed_level import PAIRED, SEED_LEVEL_MIN
from reports.tables import QUALITY, TIME, TIME_P90, Column, Table
from reports.timing_phases import NO_PHASE

DIGITS = {"psnr": 3, "ssim": 4, "lpips": 4, "mps": 4, "params_m": 2, "gflops": 2}
TIME_METRICS = ("time_per_image_s", "time_p90_s")
SIGNIFICANT = "†"
TIED_TEXT = " (tied)"


@dataclass
class Cell:
    """One shown cell: its text, its mark (``best``/``tied``/``""``), a Δ whose CI excludes 0, a note (why n/a),
    and a second line (``detail``: the seed level of a quality cell or Δ; empty: none)."""

    text: str
    mark: str = ""
    significant: bool = False
    note: str = ""
    detail: str = ""


@dataclass
class Block:
    """One grid of a table: header, measured rows, and (main block only) the paper's rows."""

    title: str
    header: list[str]
    rows: list[tuple[str, list[Cell]]]
    reference: list[tuple[str, list[str]]] = field(default_factory=list)
    reference_note: str = ""  # what the reference rows are (the paper's, the challenge leaderboard)


def finite(value: Any) -> bool:
    """True for a finite real number (not None, NaN, inf or text)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def number(value: Any, metric: str, signed: bool = False) -> str:
    """``19.356`` / ``+0.512`` / ``0.1660`` (times: 4 significant digits); ``n/a`` for anything not finite."""
    if not finite(value):
        return "n/a"
    if metric in TIME_METRICS:
        return f"{float(value):#.4g}"
    digits = DIGITS.get(metric, 4)
    return f"{float(value):+.{digits}f}" if signed else f"{float(value):.{digits}f}"


def interval_text(estimate: Any, low: Any, high: Any, metric: str, signed: bool = False) -> str:
    """``value [low, high]``, ``value [n/a]`` without an interval, ``n/a`` without a value."""
    if not finite(estimate):
        return "n/a"
    text = number(estimate, metric, signed)
    if finite(low) and finite(high):
        return f"{text} [{number(low, metric, signed)}, {number(high, metric, signed)}]"
    return f"{text} [n/a]"


def _mark(row: pd.Series, key: str) -> str:
    if key in str(row.get("best", "")).split(","):
        return "best"
    return "tied" if key in str(row.get("tied", "")).split(",") else ""


def seed_detail(row: pd.Series, col: Column) -> str:
    """A quality cell's seed level: ``seeds: sd 1.730; t [17.212, 21.500] (5)`` (t-interval from 3 seeds)."""
    k, seeds = col.key, int(row.get(f"{col.key}_seeds") or 0)
    if seeds < 2:  # one training run: no spread to show (the caption gives the seed count)
        return ""
    text = f"seeds: sd {number(row[f'{k}_seed_std'], col.metric)}"
    if finite(row.get(f"{k}_seed_ci_low")) and finite(row.get(f"{k}_seed_ci_high")):
        text += f"; t [{number(row[f'{k}_seed_ci_low'], col.metric)}, {number(row[f'{k}_seed_ci_high'], col.metric)}]"
    return f"{text} ({seeds})"


def value_cell(row: pd.Series, col: Column) -> Cell:
    """A main-block cell of ``row`` (a row of :attr:`Table.frame`) in column ``col``."""
    k, mark = col.key, _mark(row, col.key)
    if col.kind == QUALITY:
        note = str(row.get(f"{k}_ci_note") or "")
        n = int(row.get(f"{k}_n") or 0)
        text = interval_text(row[f"{k}_mean"], row[f"{k}_ci_low"], row[f"{k}_ci_high"], col.metric)
        return Cell(text, mark, note=(f"{note}; " if note else "") + f"n = {n} images", detail=seed_detail(row, col))
    if col.kind == TIME:
        text = number(row["time_median_s"], col.metric)
        if finite(row["time_median_s"]) and finite(row["time_q1_s"]) and finite(row["time_q3_s"]):
            text += f" ({number(row['time_q1_s'], col.metric)}–{number(row['time_q3_s'], col.metric)})"
        return Cell(text, mark)
    if col.kind == TIME_P90:
        return Cell(number(row["time_p90_s"], col.metric), mark)
    return Cell(number(row[k], col.metric), mark)


def phase_labels(table: Table, phases: dict[str, str]) -> Optional[dict[str, str]]:
    """Each timed row's phase label (``P1``...) when the rows were timed in more than one phase, else None."""
    groups = set(table.phase_of.values())
    if len(groups) < 2:
        return None
    return {label: phases.get(key, "none (older run)" if key == NO_PHASE else "unknown")
            for label, key in table.phase_of.items()}


def main_block(table: Table, phases: dict[str, str] | None = None) -> Block:
    """The table itself: one cell per column (and a timing-phase column when phases differ), the paper's rows."""
    labels = phase_labels(table, phases or {}) if any(c.kind == TIME for c in table.columns) else None
    header = ["Experiment"] + [c.title for c in table.columns] + (["Timing phase"] if labels else []) + ["Tuning"]
    rows = []
    for label, row in table.frame.iterrows():
        cells = [value_cell(row, c) for c in table.columns]
        rows.append((label, cells + ([Cell(labels.get(label, "–"))] if labels else [])
                     + [Cell(str(row.get("tuning") or "–"))]))
    reference = [(r["label"], [number(r[c.key], c.metric) if finite(r[c.key]) else "–" for c in table.columns]
                  + (["–"] if labels else []) + ["–"]) for _, r in table.reference.iterrows()]
    return Block(table.title, header, rows, reference, table.reference_note)


def delta_cell(row: pd.Series, name: str, metric: str) -> Cell:
    """One Δ cell (``name``: ``delta_val_psnr`` etc.): the image-level ``+0.512 [+0.301, +0.720]`` (``†``: its CI
    excludes 0) and the seed level on a second line."""
    note = str(row.get(f"{name}_note") or "")
    if note == REFERENCE:
        return Cell("reference")
    if note == NOT_COMPARED:
        return Cell("–", note="not a trained or published row")
    significant = bool(row.get(f"{name}_excludes_0"))
    text = interval_text(row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"], metric, signed=True)
    n = row.get(f"{name}_n")
    return Cell(text, significant=significant, note=(f"{note}; " if note else "") + f"n = {int(n or 0)} paired images",
                detail=seed_delta_text(row, name, metric))


def seed_delta_text(row: pd.Series, name: str, metric: str) -> str:
    """The seed level of a Δ: ``seeds, Welch 5 v 5: +0.912 [-1.203, +3.027], p 0.41 (Holm 0.82), P(better) 0.64``."""
    n_row, n_ref = int(row.get(f"{name}_seed_n_row") or 0), int(row.get(f"{name}_seed_n_ref") or 0)
    if min(n_row, n_ref) < SEED_LEVEL_MIN or not finite(row.get(f"{name}_seed")):
        return ""  # no seed-level test below 3 seeds in either row: the caption says so once
    test = "paired" if row.get(f"{name}_seed_test") == PAIRED else "Welch"
    head = f"seeds, {test} {n_row} v {n_ref}: "
    if not finite(row.get(f"{name}_seed_p")):
        return head + f"{number(row.get(f'{name}_seed'), metric, signed=True)}, no test ({row.get(f'{name}_seed_note')})"
    text = interval_text(row[f"{name}_seed"], row[f"{name}_seed_ci_low"], row[f"{name}_seed_ci_high"], metric, signed=True)
    return (head + f"{text}, p {_p(row[f'{name}_seed_p'])} (Holm {_p(row[f'{name}_seed_p_holm'])}), "
            f"P(better) {float(row[f'{name}_p_better']):.2f}")


def _p(value: float) -> str:
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def verdict_cell(row: pd.Series, name: str) -> Cell:
    """One verdict cell: ``holds across seeds`` / ``these weights only`` / ``tied`` (or reference, –)."""
    note = str(row.get(f"{name}_note") or "")
    if note == REFERENCE:
        return Cell("reference")
    if note == NOT_COMPARED:
        return Cell("–", note="not a trained or published row")
    return Cell(str(row.get(f"{name}_verdict") or "n/a"))


def verdict_block(table: Table) -> Optional[Block]:
    """Each Δ's verdict, one column per quality column and Δ set; None without any Δ set."""
    if not table.deltas or table.frame.empty:
        return None
    header = ["Experiment"] + [f"{c.title}: {d.title}" for d in table.deltas for c in table.quality_columns]
    rows = [(label, [verdict_cell(row, f"{d.prefix}_{c.key}") for d in table.deltas for c in table.quality_columns])
            for label, row in table.frame.iterrows()]
    return Block(f"{table.title.split(':')[0]}: verdict of each Δ (image level and seed level together)", header, rows)


def delta_block(table: Table) -> Optional[Block]:
    """Paired differences per image, one column per quality column and Δ set; None without any Δ set."""
    if not table.deltas or table.frame.empty:
        return None
    header = ["Experiment"] + [f"{c.title}: {d.title}" for d in table.deltas for c in table.quality_columns]
    rows = [(label, [delta_cell(row, f"{d.prefix}_{c.key}", c.metric) for d in table.deltas for c in table.quality_columns])
            for label, row in table.frame.iterrows()]
    title = (f"{table.title.split(':')[0]}: differences from the reference (Δ = row − reference), image level "
             f"(test-set uncertainty of these trained weights) and seed level")
    return Block(title, header, rows)


def seed_block(table: Table) -> Optional[Block]:
    """Each seed's mean over the images, per row, with the std over seeds; only when some row has several seeds."""
    columns = table.quality_columns
    if table.frame.empty or not columns or int(table.frame["seeds"].max()) < 2:
        return None
    rows = []
    for label, row in table.frame.iterrows():
        cells = []
        for c in columns:
            pairs = [item.split("=", 1) for item in str(row.get(f"{c.key}_seed_values") or "").split(";") if "=" in item]
            text = ", ".join(f"{seed}: {number(float(value), c.metric)}" for seed, value in pairs) or "n/a"
            if len(pairs) >= 2 and finite(row[f"{c.key}_seed_std"]):
                text += f" (sd {number(row[f'{c.key}_seed_std'], c.metric)})"
            cells.append(Cell(text))
        rows.append((label, cells))
    title = f"{table.title.split(':')[0]}: each seed's mean over the images (seed: value; sd over seeds, not a CI)"
    return Block(title, ["Experiment"] + [c.title for c in columns], rows)


def blocks(table: Table, phases: dict[str, str] | None = None) -> list[Block]:
    """Every block of ``table``, in the order shown: the table, its Δ, their verdicts, each seed's means."""
    return [b for b in (main_block(table, phases), delta_block(table), verdict_block(table), seed_block(table))
            if b is not None]
