"""Render a report from run folders: tables (CSV + JSON column guide, Markdown, LaTeX), figures and report.html.

``render_report([run_dir, ...], out_dir, extras=[...])`` reads only what ``bench run`` stored (results.csv,
results.json, data.json, config.yaml, per-image metrics, timing.csv/.json, train logs, predictions) and never
touches a model.  Several run folders (for example experiments run on different machines with ``--only``) are
merged into one report when they are comparable: the same data source, image size, lighting conditions, split
contents and scoring conventions; otherwise it refuses, naming what differs.  Older run folders (without
timing files or per-image metrics) still render, with notes on what cannot be computed.  Intervals are seeded
(``report.bootstrap_seed``), so rendering the same folders twice gives identical files.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jinja2
import pandas as pd

from relight_base import run_folder
from relight_base.atomic import atomic_write_text, ensure_output_dir
from reports.conventions import Scoring, conventions_rows, scoring_of
from reports.errors import ReportError
from reports.extra_rows import check_names, load_extras, parse_extra
from reports.formats import blocks
from reports.legend import caption, how_to_read
from reports.loading import LoadedRun, check_comparable, load_run, pairing
from reports.per_image import load_per_image
from reports.provenance import honesty_warnings, protocol_rows, provenance
from reports.settings import ReportSettings, settings_from_config
from reports.tables import PAPER_NOTE, TABLE_NAMES, TIME, Table, TableInputs, build_table
from reports.timing_phases import TimingView, load_timing, phase_notes
from reports.train_logs import RankStability, load_train_logs
from reports.tuning import Tuning, best_so_far_svg, load_tuning
from reports.visuals import SceneLoader, plots, visual_comparison
from reports.writers import column_guide, to_csv, to_latex, to_markdown

__all__ = ["ReportError", "Report", "LoadedRun", "build_report", "render_report", "load_run", "check_comparable"]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Report:
    """Everything the template shows."""

    runs: list[LoadedRun]
    results: pd.DataFrame
    tables: list[Table]
    provenance: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list)
    plots: list[dict] = field(default_factory=list)
    settings: ReportSettings = field(default_factory=ReportSettings.default)
    scoring: Scoring | None = None
    timing: TimingView = field(default_factory=TimingView)
    banner: str = ""  # "rescored after the run: ..." when the scoring differs from the run's protocol
    tuning: Tuning = field(default_factory=Tuning)  # the bench tune budget behind the rows (reports.tuning)

    @property
    def phase_labels(self) -> dict[str, str]:
        """Timing phase id -> its short label (P1, P2, ...)."""
        return {key: phase.label for key, phase in self.timing.phases.items()}


def report_settings(runs: list[LoadedRun]) -> tuple[ReportSettings, list[str]]:
    """The first run's ``report:`` settings, and a warning when the merged runs' settings differ."""
    settings = [settings_from_config(run.config) for run in runs]
    if any(s != settings[0] for s in settings[1:]):
        return settings[0], [f"The merged runs' report settings differ; those of {runs[0].path} are used."]
    return settings[0], []


def build_report(run_dirs: list[Path], extras: Sequence[str] = ()) -> Report:
    """Load, check and aggregate run folders (and ``--extra NAME=CSV`` rows) into a :class:`Report` (no files written)."""
    runs = [load_run(Path(p)) for p in run_dirs]
    specs = [parse_extra(text) for text in extras]
    check_comparable(runs)
    results = pd.concat([r.results.assign(run=str(r.path)) for r in runs], ignore_index=True)
    check_names(specs, results["experiment"])
    settings, warnings = report_settings(runs)
    per_image, missing = load_per_image(results)
    rows = results
    if specs:
        extra_results, extra_images, extra_warnings = load_extras(specs, per_image)
        per_image = per_image.with_rows(extra_images)
        rows = pd.concat([results, extra_results], ignore_index=True)
        warnings += extra_warnings
    timing = load_timing([(r.path, r.results) for r in runs])
    logs = load_train_logs(results)
    tunings = [load_tuning(run.path, run.config) for run in runs]
    cells = {name: text for tuning in tunings for name, text in tuning.cells.items()}
    inputs = TableInputs(rows, per_image, settings, timing, pairing(runs), logs, cells)
    scoring = scoring_of(runs[0].meta, runs[0].config)
    tables = [build_table(name, inputs) for name in TABLE_NAMES]
    protocol, banner = protocol_rows(runs)
    for table in tables:
        table.caption = caption(table, per_image, settings, scoring.caption(), banner)
        if any(c.kind == TIME for c in table.columns):
            table.notes += phase_notes(timing, table.phase_of)
    report = Report(runs, results, tables, provenance(runs) + protocol, settings=settings, scoring=scoring,
                    timing=timing, banner=banner, tuning=merge_tunings(tunings))
    report.warnings = honesty_warnings(results) + warnings + missing + timing.warnings
    return report


def merge_tunings(tunings: list[Tuning]) -> Tuning:
    """One tuning section for merged runs: every run's trials and the first run's rules that has any."""
    frames = [t.trials for t in tunings if not t.trials.empty]
    rules = next((t.rules for t in tunings if t.rules), [])
    return Tuning({k: v for t in tunings for k, v in t.cells.items()},
                  pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), rules)


def stabilities(tables: list[Table]) -> list[tuple[str, RankStability]]:
    """Each distinct rank stability of the tables, named by the tables that share its rows."""
    named: dict[tuple[str, ...], tuple[list[str], RankStability]] = {}
    for table in tables:
        if table.rank_stability is not None:
            entry = named.setdefault(table.rank_stability.rows, ([], table.rank_stability))
            entry[0].append(table.title.split(":")[0])
    return [(", ".join(names), stability) for names, stability in named.values()]


# --------------------------------------------------------------------------- writing


def table_companion(report: Report, table: Table, meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON companion of a table's CSV: provenance, caption, notes, references, bootstrap, column guide."""
    bootstrap = report.settings.bootstrap
    return {**meta, "title": table.title, "caption": table.caption, "notes": table.notes,
            "references": {d.prefix: d.reference for d in table.deltas},
            "bootstrap": {"confidence": bootstrap.confidence, "resamples": bootstrap.resamples, "seed": bootstrap.seed,
                          "method": "BCa over images (each image averaged over seeds first)"},
            "timing_phases": [p.describe() for p in report.timing.phases.values()],
            "columns": column_guide(table, bootstrap.percent)}


def write_tables(report: Report, out_dir: Path) -> None:
    """``tables/<name>.csv`` + ``.json`` (its column guide), ``.md`` and ``.tex`` for every table."""
    meta = {"provenance": dict(report.provenance), "rescored": report.banner, "warnings": report.warnings,
            "runs": [str(r.path) for r in report.runs],
            "paper_reference": PAPER_NOTE, "conventions": dict(_conventions(report))}
    tables_dir = out_dir / run_folder.TABLES_DIR
    for table in report.tables:
        atomic_write_text(tables_dir / f"{table.name}.csv", to_csv(table))
        atomic_write_text(tables_dir / f"{table.name}.json", json.dumps(table_companion(report, table, meta), indent=2) + "\n")
        atomic_write_text(tables_dir / f"{table.name}.md", to_markdown(table, report.phase_labels))
        atomic_write_text(tables_dir / f"{table.name}.tex", to_latex(table, report.phase_labels))


def _conventions(report: Report) -> list[tuple[str, str]]:
    return conventions_rows(report.runs[0].meta, report.scoring or scoring_of(report.runs[0].meta, report.runs[0].config))


def render_report(run_dirs: list[Path], out_dir: Path | None = None, load_scenes: SceneLoader | None = None,
                  extras: Sequence[str] = ()) -> Path:
    """Write ``report.html`` and ``tables/``, ``figures/`` into ``out_dir`` (default: the single run folder).

    ``load_scenes`` supplies the validation images for the visual comparison (see
    :func:`visual_comparison`); ``bench`` passes :func:`bench.harness.data.validation_scenes`.
    ``extras``: ``NAME=CSV`` or ``NAME:SPLIT=CSV`` rows scored from published images (:mod:`reports.extra_rows`).
    """
    run_dirs = [Path(p) for p in run_dirs]
    if out_dir is None:
        if len(run_dirs) != 1:
            raise ReportError("merging several run folders needs --out DIR for the merged report")
        out_dir = run_dirs[0]
    report = build_report(run_dirs, extras)
    out_dir = ensure_output_dir(out_dir)
    write_tables(report, out_dir)
    report.figures = visual_comparison(report.runs[0], report.results, out_dir, load_scenes)
    report.plots = plots(report.results, load_train_logs(report.results), stabilities(report.tables))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html", "j2"]))
    page = env.get_template("report.html.j2").render(
        report=report, tables=[{"t": t, "blocks": blocks(t, report.phase_labels)} for t in report.tables],
        paper_note=PAPER_NOTE, tables_dir=run_folder.TABLES_DIR, conventions=_conventions(report),
        how_to_read=how_to_read(report.settings), phases=[p.describe() for p in report.timing.phases.values()],
        tuning_svg=best_so_far_svg(report.tuning.trials) if not report.tuning.trials.empty else "",
    )
    atomic_write_text(out_dir / run_folder.REPORT_HTML, page)
    return out_dir / run_folder.REPORT_HTML
