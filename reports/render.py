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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import jinja2
import numpy as np
import pandas as pd
import yaml

from relight_base import run_folder
from relight_base.atomic import atomic_write_bytes, atomic_write_text, ensure_output_dir
from relight_base.errors import BenchError
from datasets.io import read_rgb
from reports import figures
from reports.conventions import Scoring, conventions_rows, scoring_of
from reports.errors import ReportError
from reports.extra_rows import check_names, load_extras, parse_extra
from reports.legend import caption, how_to_read
from reports.per_image import load_per_image
from reports.settings import ReportSettings, settings_from_config
from reports.tables import PAPER_NOTE, TABLE_NAMES, TIME, Table, TableInputs, build_table
from reports.timing_phases import NO_PHASE, TimingView, load_timing, phase_notes
from reports.formats import blocks
from reports.writers import column_guide, to_csv, to_latex, to_markdown

__all__ = ["ReportError", "Report", "LoadedRun", "build_report", "render_report", "load_run", "check_comparable"]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
# (run config as stored in config.yaml, data root) -> validation samples, for the visual comparison
SceneLoader = Callable[[dict, Path], Sequence[dict]]
COMPARABLE_KEYS = ("source", "size", "input", "target")
REQUIRED_COLUMNS = ("experiment", "model", "seed", "split", "status", "psnr", "ssim", "lpips", "mps")
# columns older run folders may lack, with the value they mean there
OPTIONAL_COLUMNS = {"time_per_image_s": math.nan, "time_p90_s": math.nan, "time_q1_s": math.nan,
                    "time_q3_s": math.nan, "timing_phase": NO_PHASE, "timing_size": math.nan,
                    "timing_threads": math.nan, "params_m": math.nan, "gflops": math.nan, "steps": math.nan,
                    "residual": False, "extra_data": "none", "data_source": "", "device": "", "weights": "",
                    "perceptual_loss": "", "lpips_weights": "", "message": "", "eval_weights": "last",
                    "best_step": math.nan, "best_holdout": math.nan}


@dataclass
class LoadedRun:
    """What one run folder holds."""

    path: Path
    results: pd.DataFrame
    meta: dict[str, Any]
    data: dict[str, Any]
    config: dict[str, Any]


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
    settings: ReportSettings = field(default_factory=ReportSettings)
    scoring: Scoring | None = None
    timing: TimingView = field(default_factory=TimingView)

    @property
    def phase_labels(self) -> dict[str, str]:
        """Timing phase id -> its short label (P1, P2, ...)."""
        return {key: phase.label for key, phase in self.timing.phases.items()}


def _normalise_results(path: Path, results: pd.DataFrame) -> pd.DataFrame:
    """Check the columns the report needs and fill in those older run folders lack."""
    missing = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing:
        raise ReportError(f"{path / run_folder.RESULTS_CSV}: missing column(s) {', '.join(missing)}; expected the "
                          f"columns `python -m bench run` writes ({', '.join(REQUIRED_COLUMNS)}, ...)")
    results = results.copy()
    for column, default in OPTIONAL_COLUMNS.items():
        if column not in results.columns:
            results[column] = default
    phases = results["timing_phase"].astype(object)
    results["timing_phase"] = phases.where(phases.notna(), NO_PHASE).astype(str)
    results["experiment"] = results["experiment"].astype(str)
    return results


def load_run(path: Path) -> LoadedRun:
    """Read a run folder's stored results; a missing or unreadable file is a clear error."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path}: run folder does not exist")
    for name in (run_folder.RESULTS_CSV, run_folder.RESULTS_JSON, run_folder.DATA_JSON, run_folder.CONFIG_YAML):
        if not (path / name).is_file():
            raise ReportError(f"{path}: {name} is missing; is this a folder written by `python -m bench run`?")
    try:
        results = pd.read_csv(path / run_folder.RESULTS_CSV)
        meta = json.loads((path / run_folder.RESULTS_JSON).read_text())
        data = json.loads((path / run_folder.DATA_JSON).read_text())
        config = yaml.safe_load((path / run_folder.CONFIG_YAML).read_text())
    except (ValueError, yaml.YAMLError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ReportError(f"{path}: cannot read its stored results ({exc})") from None
    return LoadedRun(path, _normalise_results(path, results), meta, data, config or {})


def _check_data(first: LoadedRun, other: LoadedRun) -> None:
    for key in COMPARABLE_KEYS:
        if first.data.get(key) != other.data.get(key):
            raise ReportError(
                f"cannot merge {first.path} and {other.path}: data {key} differs "
                f"({first.data.get(key)!r} vs {other.data.get(key)!r}); their numbers are not comparable"
            )
    for split in ("val", "test"):
        a, b = first.data["splits"].get(split), other.data["splits"].get(split)
        if a and b and (a.get("samples"), a.get("scenes")) != (b.get("samples"), b.get("scenes")):
            raise ReportError(
                f"cannot merge {first.path} and {other.path}: their {split} splits differ "
                f"({a.get('samples')} vs {b.get('samples')} samples); their numbers are not comparable"
            )
    if first.config.get("data", {}).get("synthetic") != other.config.get("data", {}).get("synthetic") \
            and first.data.get("source") == "synthetic":
        raise ReportError(f"cannot merge {first.path} and {other.path}: they used different synthetic datasets")
    a, b = scoring_of(first.meta, first.config), scoring_of(other.meta, other.config)
    if a != b:
        raise ReportError(f"cannot merge {first.path} and {other.path}: they were scored differently (SSIM "
                          f"{a.ssim_kind} vs {b.ssim_kind}; {a.rounding()} vs {b.rounding()}); rescore one of them")


def check_comparable(runs: list[LoadedRun]) -> None:
    """Refuse to merge runs whose numbers were measured on different data or scored differently."""
    paths = [r.path.resolve() for r in runs]
    if len(set(paths)) != len(paths):
        raise ReportError("the same run folder is given twice: " + ", ".join(str(p) for p in paths if paths.count(p) > 1))
    for other in runs[1:]:
        _check_data(runs[0], other)
    seen: dict[tuple, Path] = {}
    for run in runs:
        for key in run.results[["experiment", "seed", "split"]].itertuples(index=False):
            if tuple(key) in seen and seen[tuple(key)] != run.path:
                raise ReportError(f"experiment {key[0]!r} seed {key[1]} appears in both {seen[tuple(key)]} and {run.path}")
            seen[tuple(key)] = run.path


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
    inputs = TableInputs(rows, per_image, settings, timing)
    scoring = scoring_of(runs[0].meta, runs[0].config)
    tables = [build_table(name, inputs) for name in TABLE_NAMES]
    for table in tables:
        table.caption = caption(table, per_image, settings, scoring.caption())
        if any(c.kind == TIME for c in table.columns):
            table.notes += phase_notes(timing, table.phase_of)
    report = Report(runs, results, tables, provenance(runs), settings=settings, scoring=scoring, timing=timing)
    report.warnings = honesty_warnings(results) + warnings + missing + timing.warnings
    return report


def provenance(runs: list[LoadedRun]) -> list[tuple[str, str]]:
    """The provenance block: what the numbers are and where they came from."""
    rows: list[tuple[str, str]] = []
    for run in runs:
        meta, data, cfg = run.meta, run.data, run.config
        git = meta.get("git", {})
        commit = git.get("commit") or "unknown"
        dirty = {True: " (uncommitted changes)", False: "", None: ""}[git.get("dirty")]
        soft = meta.get("software", {})
        mach = meta.get("machine", {})
        train = meta.get("train", {})
        res = run.results
        prefix = f"{run.path.name}: " if len(runs) > 1 else ""
        rows += [
            (prefix + "results written", str(meta.get("written", "unknown"))),
            (prefix + "code", f"git {commit[:12]}{dirty}"),
            (prefix + "config hash", str(meta.get("config_hash", "unknown"))),
            (prefix + "data", f"{data.get('source')} ({'built-in synthetic VIDIT-format scenes' if data.get('source') == 'synthetic' else 'VIDIT on disk'}), "
                              f"{data.get('input')} → {data.get('target')}, {data.get('size')}×{data.get('size')} px"),
            (prefix + "training", f"{_steps_text(res)}; batch {train.get('batch_size')}, lr {train.get('lr')}; "
                                  f"seeds {', '.join(map(str, cfg.get('seeds', [])))}"),
            (prefix + "device", f"{mach.get('device_name', '?')} ({mach.get('device', '?')}), {mach.get('cpu_threads', '?')} CPU threads"),
            (prefix + "software", ", ".join(f"{k} {v}" for k, v in soft.items())),
            (prefix + "validation during training", _validation_text(cfg.get("train", {}), data)),
            (prefix + "weights scored", _scored_weights_text(res)),
            (prefix + "backbone weights", "; ".join(sorted(set(map(str, res["weights"].dropna()))))),
            (prefix + "perceptual loss", "; ".join(sorted(set(map(str, res["perceptual_loss"].dropna()))))),
            (prefix + "LPIPS", str(meta.get("lpips", "n/a"))),
            (prefix + "timing", str(meta.get("timing", ""))),
        ]
    return rows


def _validation_text(train: dict, data: dict) -> str:
    """``train.val_every`` in words: how often, on how many held-out training scenes, which metric picks best.pt."""
    every = train.get("val_every") or 0
    held = (data.get("splits") or {}).get("holdout") or {}
    if not every:
        return "none (train.val_every is 0)"
    return (f"every {every} steps and at the last, PSNR/SSIM on {held.get('scenes', '?')} training scenes held out of "
            f"training (never the reported splits); best.pt kept by held-out {train.get('best_metric', 'psnr')}")


def _scored_weights_text(results: pd.DataFrame) -> str:
    """Which weights the tables' rows were scored with (``eval_weights`` of results.csv), by experiment."""
    texts = {"last": "last (model.pt, end of training)", "best": "best (best.pt, best held-out score)",
             "untrained": "untrained (nothing to train)"}
    groups: dict[str, list[str]] = {}
    for exp, kind in results.drop_duplicates("experiment")[["experiment", "eval_weights"]].itertuples(index=False):
        groups.setdefault(texts.get(str(kind), str(kind)), []).append(str(exp))
    return "; ".join(f"{text}: {', '.join(exps)}" for text, exps in groups.items())


def _steps_text(results: pd.DataFrame) -> str:
    trained = sorted(set(int(s) for s in results["steps"].dropna() if s > 0))
    untrained = sorted(set(results.loc[results["steps"].fillna(0) == 0, "experiment"]))
    text = f"{', '.join(map(str, trained))} training steps" if trained else "no training"
    return text + (f" (not trained: {', '.join(untrained)})" if untrained else "")


def honesty_warnings(results: pd.DataFrame) -> list[str]:
    """Statements the page must show next to the numbers they qualify."""
    out = []
    if results["lpips"].isna().all():
        reason = str(results["lpips_weights"].dropna().iloc[0]) if results["lpips_weights"].notna().any() else "unknown"
        out.append(f"LPIPS and MPS are n/a: {reason}. They are never computed with a random AlexNet.")
    random_backbones = sorted(set(results.loc[results["weights"].astype(str).str.contains("random init"), "experiment"]))
    if random_backbones:
        out.append("Backbones without ImageNet weights (random initialisation): " + ", ".join(random_backbones) + ".")
    failed = sorted(set(results.loc[results["status"] == "failed", "experiment"]))
    if failed:
        out.append("Failed experiments (no numbers): " + ", ".join(failed) + ".")
    unfinished = results[~results["status"].isin(["done", "failed"])]
    if len(unfinished):
        seen = unfinished.drop_duplicates(["experiment", "seed"])
        out.append("Units that did not finish (no numbers; `bench status` and the message column say why): " + ", ".join(
            f"{r.experiment} seed {r.seed} ({r.status})" for r in seen.itertuples()) + ".")
    if (results["data_source"] == "synthetic").all():
        out.append("All numbers are on the built-in synthetic data, not on VIDIT; the paper's rows are on VIDIT at 1024².")
    return out


# --------------------------------------------------------------------------- figures


def visual_comparison(report: Report, out_dir: Path, load_scenes: SceneLoader | None, scenes: int = 3) -> list[dict]:
    """Figure 6 style PNGs for the first validation scenes; returns entries for the template.

    ``load_scenes(config, data_root)`` gives the validation samples of the first run
    (``rgb``/``target``: (3,H,W) float in [0,1], ``depth``: (1,H,W), ``scene_id``); the
    caller supplies it, so the reporter stays independent of the config schema.
    Without it, no figure is drawn.
    """
    if load_scenes is None:
        return []
    run = report.runs[0]
    try:
        val = load_scenes(run.config, Path(run.data["root"]))
    except BenchError as exc:
        log.warning("visual comparison skipped: %s", exc)
        return []
    entries = []
    order = list(dict.fromkeys(report.results["experiment"]))
    for i in range(min(scenes, len(val))):
        sample = val[i]
        scene = sample["scene_id"]
        preds = []
        for exp in order:
            rows = report.results[(report.results.experiment == exp) & (report.results.split == "val")]
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


def plots(report: Report) -> list[dict]:
    """Inline SVG plots: PSNR vs time per image, and training-loss curves."""
    val = report.results[(report.results.split == "val") & (report.results.status == "done")]
    points = [(exp, float(g["time_per_image_s"].mean()), float(g["psnr"].mean()))
              for exp, g in val.groupby("experiment", sort=False)]
    scatter = figures.scatter_svg(points, "PSNR (validation) against time per image", "time per image (s, log scale)", "PSNR (dB)")
    loss_curves, held_out_curves = [], []
    for exp in dict.fromkeys(report.results["experiment"]):
        frame = _training_log(report.results[report.results.experiment == exp], exp)
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
    meta = {"provenance": dict(report.provenance), "warnings": report.warnings, "runs": [str(r.path) for r in report.runs],
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
    report.figures = visual_comparison(report, out_dir, load_scenes)
    report.plots = plots(report)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html", "j2"]))
    page = env.get_template("report.html.j2").render(
        report=report, tables=[{"t": t, "blocks": blocks(t, report.phase_labels)} for t in report.tables],
        paper_note=PAPER_NOTE, tables_dir=run_folder.TABLES_DIR, conventions=_conventions(report),
        how_to_read=how_to_read(report.settings), phases=[p.describe() for p in report.timing.phases.values()],
    )
    atomic_write_text(out_dir / run_folder.REPORT_HTML, page)
    return out_dir / run_folder.REPORT_HTML
