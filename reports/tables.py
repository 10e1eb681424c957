"""The paper's Tables 1-3 and our Table 4 computed from stored results, as one numeric frame per table.

* Table 1 (ablation): the MBNet experiments, PSNR and SSIM on validation.
* Table 2 (comparison): every experiment, PSNR and SSIM on validation, parameters, GFLOPs, time per image.
* Table 3: SSIM and PSNR on validation; MPS, SSIM, LPIPS and PSNR on test.
* Table 4 (beyond the paper): the relighting networks (models tagged ``relighting``: MBNet, IAN, DFuseNet, any
  plugin so tagged) and ``identity``, with Table 3's metrics, parameters, GFLOPs and time; its reference rows
  are the NTIRE 2021 Track 1 test leaderboard (``ntire21_track1_leaderboard.csv``), kept apart and labelled.

Extra rows scored from published images (:mod:`reports.extra_rows`) join every table.

Each quality cell (PSNR, SSIM, LPIPS, MPS) is the mean over images of the per-image metric, each image
averaged over seeds first, with a bootstrap CI over images (:mod:`reports.statistics`); paired Δ per image
against the table's reference and the floor come from :mod:`reports.deltas`.  Parameters and GFLOPs do not
vary with the seed and are stored once; time comes from the run's timing phase (:mod:`reports.timing_phases`).

Marks (``best``/``tied``, see :mod:`reports.ranking`): higher is better for PSNR, SSIM and MPS; lower for
LPIPS, time, parameters and GFLOPs.  Rows without parameters (``identity``: the input image itself) are shown
but not ranked.  The paper's published numbers are separate reference rows, never mixed into the measured ones.
Formatting into CSV, Markdown, LaTeX and HTML cells is :mod:`reports.formats`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pandas as pd

from relight_base.results import RELIGHTING
from reports.deltas import DeltaSet, available_references, delta_columns, delta_sets
from reports.extra_rows import SOURCE_NOTE
from reports.per_image import HIGHER_IS_BETTER, PerImage
from reports.reference_rows import LEADERBOARD_NOTE, PAPER_NOTE, leaderboard_reference, paper_reference
from reports.ranking import Candidate, exact_marks, metric_marks
from reports.seed_level import SeedSource, seed_interval
from reports.settings import ReportSettings
from reports.statistics import Interval, mean_interval
from reports.timing_phases import NO_PHASE, TimingView, time_marks
from reports.train_logs import RankStability, rank_stability

RELIGHTING_MODELS = ("mbnet", "ian", "dfusenet")  # results written before model_tags existed
ADAPTER_TERMS_NOTE = " (+ adapter loss terms)"
QUALITY, EXACT, TIME, TIME_P90 = "quality", "exact", "time", "time_p90"


@dataclass(frozen=True)
class Column:
    """One numeric column of a table: a quality metric on a split, a seed-invariant count, or a time."""

    key: str      # CSV prefix, e.g. "val_psnr", "params_m", "time_median_s"
    metric: str   # results.csv column (psnr, ..., params_m, gflops, time_per_image_s, time_p90_s)
    split: str    # "val" / "test" ("" for counts and times)
    title: str    # header text
    kind: str = QUALITY


def _quality(split: str, metric: str, title: str) -> Column:
    return Column(f"{split}_{metric}", metric, split, title)


TABLE_SPECS = {
    "table1": ("Table 1: ablation (validation)", [_quality("val", "psnr", "PSNR"), _quality("val", "ssim", "SSIM")]),
    "table2": ("Table 2: comparison with the RGB-D salient-object networks (validation)", [
        _quality("val", "psnr", "PSNR"), _quality("val", "ssim", "SSIM"),
        Column("params_m", "params_m", "", "Params (M)", EXACT), Column("gflops", "gflops", "", "GFLOPs", EXACT),
        Column("time_median_s", "time_per_image_s", "", "Time/img (s): median (IQR)", TIME),
        Column("time_p90_s", "time_p90_s", "", "Time/img (s): p90", TIME_P90)]),
    "table3": ("Table 3: validation and test", [
        _quality("val", "ssim", "Val SSIM"), _quality("val", "psnr", "Val PSNR"), _quality("test", "mps", "Test MPS"),
        _quality("test", "ssim", "Test SSIM"), _quality("test", "lpips", "Test LPIPS"),
        _quality("test", "psnr", "Test PSNR")]),
    "table4": ("Table 4: relighting networks (validation and test)", [
        _quality("val", "psnr", "Val PSNR"), _quality("val", "ssim", "Val SSIM"), _quality("test", "mps", "Test MPS"),
        _quality("test", "ssim", "Test SSIM"), _quality("test", "lpips", "Test LPIPS"),
        _quality("test", "psnr", "Test PSNR"),
        Column("params_m", "params_m", "", "Params (M)", EXACT), Column("gflops", "gflops", "", "GFLOPs", EXACT),
        Column("time_median_s", "time_per_image_s", "", "Time/img (s): median (IQR)", TIME)]),
}
TABLE_NAMES = tuple(TABLE_SPECS)


@dataclass
class TableInputs:
    """What every table is built from: result rows (runs' rows with ``run``; extra rows with ``extra`` True),
    their seed-averaged per-image metrics, the report settings and the timing phases."""

    results: pd.DataFrame
    per_image: PerImage
    settings: ReportSettings = field(default_factory=ReportSettings.default)
    timing: TimingView = field(default_factory=TimingView)
    pairing: dict[str, tuple[str, str]] = field(default_factory=dict)  # see reports.seed_level.SeedSource
    logs: dict[str, dict[int, pd.DataFrame]] = field(default_factory=dict)  # experiment -> seed -> train log
    tuning: dict[str, str] = field(default_factory=dict)  # experiment -> how it was tuned (reports.tuning)

    @property
    def seeds(self) -> SeedSource:
        """The rows' per-seed means and which rows are paired seed by seed."""
        return SeedSource(self.results, self.pairing)


@dataclass
class Table:
    """One table: its columns, one numeric row per table row (``frame``, index: label), its Δ sets, notes."""

    name: str
    title: str
    columns: list[Column]
    frame: pd.DataFrame
    reference: pd.DataFrame                     # the paper's rows: label, <key> per column
    deltas: list[DeltaSet] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    caption: list[str] = field(default_factory=list)  # filled by reports.legend.caption
    phase_of: dict[str, str] = field(default_factory=dict)  # row label -> timing phase id ("" none)
    reference_note: str = PAPER_NOTE  # what the reference rows are
    rank_stability: Optional[RankStability] = None  # of the trained rows (reports.train_logs)

    @property
    def quality_columns(self) -> list[Column]:
        return [c for c in self.columns if c.kind == QUALITY]


def ablation_label(extra_data: str, residual: bool) -> str:
    """Table 1's row names: Baseline, + Extra data, + Extra data + Residual learning."""
    parts = ["Baseline"] if extra_data in ("none", "", None) and not residual else []
    if extra_data not in ("none", "", None):
        parts.append("+ Extra data" + ("" if extra_data == "extra_input,mirror" else f" ({extra_data})"))
    if residual:
        parts.append("+ Residual learning")
    return " ".join(parts)


def _is_extra(rows: pd.DataFrame) -> pd.Series:
    return rows["extra"].fillna(False).astype(bool) if "extra" in rows else pd.Series(False, index=rows.index)


def table_rows(name: str, results: pd.DataFrame) -> pd.DataFrame:
    """The rows of table ``name``: label, experiment, model, status, ranked, extra, seeds (index: label)."""
    extra = _is_extra(results)
    records = []
    for exp in dict.fromkeys(results["experiment"]):
        sub = results[results["experiment"] == exp]
        first, is_extra = sub.iloc[0], bool(extra[sub.index].any())
        if name == "table1" and not is_extra and not (sub["model"] == "mbnet").any():
            continue
        if name == "table4" and (is_extra or not (is_relighting(first) or first["model"] == "identity")):
            continue
        label = f"{exp} ({SOURCE_NOTE})" if is_extra else exp
        if name == "table1" and not is_extra:
            label = f"{exp}: {ablation_label(str(first.get('extra_data')), _truthy(first.get('residual')))}"
        if any(_truthy(v) for v in sub.get("adapter_terms", [])):
            label += ADAPTER_TERMS_NOTE
        done = sub[sub["status"] == "done"]
        params = pd.to_numeric(sub.get("params_m"), errors="coerce")
        records.append({"label": label, "experiment": exp, "model": first["model"],
                        "status": "done" if len(done) else str(first["status"]), "extra": is_extra,
                        "ranked": is_extra or bool((params > 0).any()), "seeds": int(done["seed"].nunique())})
    columns = ["label", "experiment", "model", "status", "extra", "ranked", "seeds"]
    return pd.DataFrame(records, columns=columns).set_index("label", drop=False)


def is_relighting(row: pd.Series) -> bool:
    """Whether a result row's model is tagged a relighting network (by name for results without ``model_tags``)."""
    tags = row.get("model_tags")
    if isinstance(tags, str) or (tags is not None and not pd.isna(tags)):
        return RELIGHTING in str(tags).split(",")
    return row["model"] in RELIGHTING_MODELS


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0", "yes")


def _done(results: pd.DataFrame, experiment: str, split: str | None = None) -> pd.DataFrame:
    sub = results[(results["experiment"] == experiment) & (results["status"] == "done")]
    return sub if split is None else sub[sub["split"] == split]


def cell_interval(inputs: TableInputs, experiment: str, col: Column) -> Interval:
    """A quality cell: the mean over images with its CI; without stored per-image metrics, the results' mean."""
    values = inputs.per_image.values(experiment, col.split, col.metric)
    if len(values):
        return mean_interval(values.to_numpy(np.float64), inputs.settings.bootstrap)
    seed_means = pd.to_numeric(_done(inputs.results, experiment, col.split)[col.metric], errors="coerce")
    if seed_means.notna().any() and seed_means.notna().all():
        return Interval(float(seed_means.mean()), math.nan, math.nan, 0, "no per-image metrics stored")
    return Interval(math.nan, math.nan, math.nan, 0, f"not scored on {col.split}")


def quality_record(inputs: TableInputs, experiment: str, col: Column) -> dict[str, float | str]:
    """A quality cell's CSV columns: the image-level mean and CI (image count, why no CI), and over the seeds'
    means: their mean, std, count, t-interval (from 3 seeds; why none) and the values themselves."""
    interval = cell_interval(inputs, experiment, col)
    by_seed = {s: v for s, v in inputs.seeds.means(experiment, col.split, col.metric).items() if math.isfinite(v)}
    values = pd.Series(list(by_seed.values()), dtype=np.float64)
    seed_ci = seed_interval(by_seed, inputs.settings.bootstrap.confidence)
    k = col.key
    return {f"{k}_mean": interval.estimate, f"{k}_ci_low": interval.low, f"{k}_ci_high": interval.high,
            f"{k}_n": interval.n, f"{k}_ci_note": interval.reason,
            f"{k}_seed_mean": float(values.mean()) if len(values) else math.nan,
            f"{k}_seed_std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            f"{k}_seeds": len(values), f"{k}_seed_ci_low": seed_ci.low, f"{k}_seed_ci_high": seed_ci.high,
            f"{k}_seed_ci_note": seed_ci.reason,
            f"{k}_seed_values": ";".join(f"{seed}={value!r}" for seed, value in sorted(by_seed.items()))}


def _first_finite(frame: pd.DataFrame, column: str) -> float:
    values = pd.to_numeric(frame.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
    return float(values.iloc[0]) if len(values) else math.nan


TIME_FIELDS = {"time_median_s": "time_per_image_s", "time_q1_s": "time_q1_s", "time_q3_s": "time_q3_s",
               "time_p90_s": "time_p90_s", "timing_size": "timing_size", "timing_threads": "timing_threads"}


def timing_record(results: pd.DataFrame, experiment: str) -> dict[str, float | str]:
    """Seed-invariant counts (first finished seed's) and the time of the timed seed (the lowest one with a time).

    A run with a timing phase times one seed per experiment and copies its time to every seed's rows.
    """
    rows = results[results["experiment"] == experiment]
    done = rows[rows["status"] == "done"]
    record: dict[str, float | str] = {"params_m": _first_finite(done if len(done) else rows, "params_m"),
                                      "gflops": _first_finite(done, "gflops")}
    times = pd.to_numeric(done["time_per_image_s"], errors="coerce") if "time_per_image_s" in done else None
    timed = done[times.notna()].sort_values("seed") if times is not None else done.iloc[:0]
    if timed.empty:
        return record | dict.fromkeys(TIME_FIELDS, math.nan) | {"timing_phase": NO_PHASE, "timing_device": ""}
    first = timed.iloc[[0]]
    record.update({name: _first_finite(first, column) for name, column in TIME_FIELDS.items()})
    phase = first["timing_phase"].iloc[0] if "timing_phase" in first else NO_PHASE
    device = first["device"].iloc[0] if "device" in first else ""
    return record | {"timing_phase": "" if pd.isna(phase) else str(phase), "timing_device": "" if pd.isna(device) else str(device)}


def build_frame(name: str, inputs: TableInputs, columns: list[Column]) -> pd.DataFrame:
    """Table ``name``'s numeric rows: identity columns, quality cells, counts and times (no Δ, no marks)."""
    rows = table_rows(name, inputs.results)
    records = {}
    for label, row in rows.iterrows():
        record = {"tuning": inputs.tuning.get(row["experiment"], "" if row["extra"] else "not recorded")}
        for col in columns:
            if col.kind == QUALITY:
                record.update(quality_record(inputs, row["experiment"], col))
        if any(c.kind != QUALITY for c in columns):
            record.update(timing_record(inputs.results, row["experiment"]))
        records[label] = record
    return rows.join(pd.DataFrame.from_dict(records, orient="index"))


def build_table(name: str, inputs: TableInputs) -> Table:
    """Aggregate the stored results into one of the paper's tables, with CIs, Δ and significance marks."""
    title, columns = TABLE_SPECS[name]
    frame = build_frame(name, inputs, columns)
    role = "report.table1_reference" if name == "table1" else "report.table2_reference"
    settings = inputs.settings
    sets, notes = delta_sets(settings.reference_for(name), settings.floor_reference,
                             available_references(inputs.results, inputs.per_image), role)
    keys = [(c.key, c.split, c.metric) for c in columns if c.kind == QUALITY]
    if sets and not frame.empty:
        frame = frame.join(delta_columns(frame, keys, sets, inputs.per_image, inputs.seeds, settings))
    phase_of = {label: str(p) for label, p, t in zip(frame.index, frame.get("timing_phase", []),
                                                     frame.get("time_median_s", [])) if math.isfinite(t)}
    reference = leaderboard_reference(columns) if name == "table4" else paper_reference(name, columns)
    table = Table(name, title, columns, frame, reference, sets, notes, phase_of=phase_of,
                  reference_note=LEADERBOARD_NOTE if name == "table4" else PAPER_NOTE)
    add_marks(table, inputs)
    trained = [exp for exp, ranked, extra in zip(frame.get("experiment", []), frame.get("ranked", []),
                                                 frame.get("extra", [])) if ranked and not extra]
    table.rank_stability = rank_stability(trained, inputs.logs)
    return table


def column_marks(table: Table, col: Column, inputs: TableInputs) -> tuple[dict[str, str], str]:
    """One column's ``best``/``tied`` marks among the ranked rows, and a note when it cannot be ranked."""
    ranked = table.frame[table.frame["ranked"]]
    if col.kind == QUALITY:
        seeds = inputs.seeds
        candidates = {label: Candidate(row["experiment"], inputs.per_image.values(row["experiment"], col.split, col.metric),
                                       seeds.means(row["experiment"], col.split, col.metric))
                      for label, row in ranked.iterrows()}
        return metric_marks(candidates, HIGHER_IS_BETTER[col.metric], inputs.settings, seeds.paired), ""
    if col.kind == EXACT:
        sizes = set(ranked["timing_size"].dropna()) if col.key == "gflops" else set()
        if len(sizes) > 1:
            return {}, "GFLOPs were counted at different input sizes (" + ", ".join(f"{int(s)}" for s in sorted(sizes)) \
                + "), so they are not ranked."
        return exact_marks({label: float(v) for label, v in ranked[col.key].items()}), ""
    if col.kind == TIME:
        medians = {label: float(v) for label, v in ranked["time_median_s"].items()}
        return time_marks(medians, table.phase_of, dict(ranked["experiment"]), inputs.timing,
                          inputs.settings.bootstrap), ""
    return {}, ""


def add_marks(table: Table, inputs: TableInputs) -> None:
    """Fill ``best`` and ``tied`` (comma-separated column keys) of every row, and the notes of unranked columns."""
    best = {label: [] for label in table.frame.index}
    tied = {label: [] for label in table.frame.index}
    for col in table.columns:
        if table.frame.empty:
            break
        marks, note = column_marks(table, col, inputs)
        for label, mark in marks.items():
            (best if mark == "best" else tied)[label].append(col.key)
        if note:
            table.notes.append(note)
    table.frame["best"] = [",".join(best[label]) for label in table.frame.index]
    table.frame["tied"] = [",".join(tied[label]) for label in table.frame.index]
