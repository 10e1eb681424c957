"""``bench publish``: a run published with its evidence, so that a reader can recompute every number.

``publish(run_dir, dest)`` writes into ``dest``::

    report.html, tables/, figures/   the report, rendered from the run folder as `bench report` renders it
    raw/                             the run folder's readable evidence, laid out as in the run folder:
        results.csv, results.json, data.json, config.yaml, protocol.yaml (if any), timing.csv, timing.json
        <experiment>/seed<k>/        experiment.yaml, train_log.csv, metrics_val.csv, metrics_test.csv
        README.md                    what each file is, what was redacted and what was left out
    recompute.py                     standalone (numpy, pandas, scipy): recomputes tables/*.csv from raw/ alone
    published.json                   marks the folder as a publish: source run, config hash, time, files

so ``python -m bench report DEST/raw --out X`` renders the same tables again and ``python DEST/recompute.py``
checks them.  Only files whose names the run folder layout defines are copied, never through a symbolic link.
Left out: weights and checkpoints, predictions, result.json, unit.json and unit.log (host names, process ids,
logs), locks, launch/ and submission.zip.

Local paths are redacted (:mod:`reports.redaction`): the config's ``data.root``, ``launcher.slurm.setup`` and
``weights.*`` file paths, ``data.root`` of results.json, ``root`` of data.json, and every absolute path in any
published text become ``<redacted: local path>``; the run folder's own path becomes ``raw``.  Everything is built
in a hidden folder next to ``dest`` and renamed into place at the end: ``dest`` holds the previous publish or the
new one, never half of one.  ``dest`` must lie outside the run folder and be new, empty or a previous publish.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from relight_base import results as contract
from relight_base import run_folder
from relight_base.atomic import (
    atomic_write_text,
    current_umask,
    ensure_output_dir,
    fsync_dir,
)
from reports.errors import ReportError
from reports.loading import LoadedRun, load_run
from reports.redaction import REDACTED, Redactor, redact_file, text_suffix
from reports.render import render_report
from reports.visuals import SceneLoader

__all__ = ["MARKER", "RAW_DIR", "RECOMPUTE", "REDACTED", "publish"]

log = logging.getLogger(__name__)

RAW_DIR = "raw"
MARKER = "published.json"
RECOMPUTE = "recompute.py"
README = "README.md"
PUBLISHED_BY = "relight-bench publish"
RECOMPUTE_SOURCE = Path(__file__).with_name("recompute_published.py")
PROTOCOL_YAML = run_folder.PROTOCOL_YAML
METRICS_FILES = tuple(run_folder.metrics_csv(Path(), split).name for split in contract.SPLITS)
RUN_FILES = (run_folder.RESULTS_CSV, run_folder.RESULTS_JSON, run_folder.DATA_JSON, run_folder.CONFIG_YAML,
             PROTOCOL_YAML, run_folder.TUNED_YAML, run_folder.TIMING_CSV, run_folder.TIMING_JSON)
UNIT_FILES = (run_folder.EXPERIMENT_YAML, run_folder.TRAIN_LOG_CSV, *METRICS_FILES)

FILE_NOTES = {
    run_folder.RESULTS_CSV: "one row per experiment x seed x split: status, the seed's mean PSNR/SSIM/LPIPS/MPS over "
                            "the split's images, parameters, GFLOPs, times, the weights used",
    run_folder.RESULTS_JSON: "companion of results.csv: schema version, metric conventions, software, machine",
    run_folder.DATA_JSON: "where the data came from and what each split holds",
    run_folder.CONFIG_YAML: "the run's resolved config (defaults filled in, overrides applied)",
    PROTOCOL_YAML: "what decides the verdicts (weights scored, splits, seeds, reference rows, thresholds), fixed "
                   "when the run first started and never overwritten; later rescorings are listed in results.json",
    run_folder.TUNED_YAML: "the bench tune result the run was made with (bench run --tuned): chosen values, every "
                           "trial, the budget; absent when the run was not tuned",
    run_folder.TIMING_CSV: "the timing phase's raw rounds: one row per (round, model), seconds",
    run_folder.TIMING_JSON: "the timing phase: device, threads, input size, rounds, warm-up, order",
    run_folder.EXPERIMENT_YAML: "<experiment>/seed<k>/: the experiment's resolved settings",
    run_folder.TRAIN_LOG_CSV: "<experiment>/seed<k>/: loss terms and learning rate per training step",
    "metrics_<split>.csv": "<experiment>/seed<k>/: per-image scene_id, psnr, ssim, lpips, mps on val / test",
}
LEFT_OUT = ("model.pt, best.pt and checkpoints/ (weights)", "predictions/ (predicted images)",
            "result.json (a unit's rows of results.csv with internal fingerprints)",
            "unit.json and unit.log (host name, process id and log of the process that ran a unit)",
            ".unit.lock, .shared.lock (locks)", "launch/ (launcher job files)", "submission.zip",
            "anything else in the run folder, and any symbolic link")


def publish(run_dir: Path, dest: Path, load_scenes: SceneLoader | None = None) -> Path:
    """Publish the run folder ``run_dir`` with its evidence into ``dest``; returns ``dest/report.html``.

    ``load_scenes`` supplies the validation images of the report's visual comparison (see
    :func:`reports.render.render_report`).  A :class:`ReportError` names what is wrong with ``run_dir`` or ``dest``.
    """
    given, run_dir, dest = Path(run_dir).absolute(), Path(run_dir).resolve(), Path(dest).absolute()
    run = load_run(run_dir)
    check_destination(run_dir, dest)
    parent = ensure_output_dir(dest.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.publishing-", dir=parent))
    try:
        redactor = Redactor.for_run(run, extra=(given, staging, dest, dest.resolve()))
        files, notes = write_raw(run, staging / RAW_DIR, redactor)
        render_report([run_dir], staging, load_scenes=load_scenes)
        report_notes = scrub_report(staging, redactor)
        atomic_write_text(staging / RECOMPUTE, RECOMPUTE_SOURCE.read_text(encoding="utf-8"))
        atomic_write_text(staging / RAW_DIR / README, raw_readme(files, notes, len(report_notes)))
        record = marker(run, files, notes + report_notes)
        atomic_write_text(staging / MARKER, json.dumps(record, indent=2) + "\n")
        redactor.check_clean(staging)
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp made it private; a publish is meant to be read
        move_into_place(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("published %s into %s (%d raw files)", run_dir, dest, len(files))
    return dest / run_folder.REPORT_HTML


# --------------------------------------------------------------------------- the destination


def check_destination(run_dir: Path, dest: Path) -> None:
    """Refuse a ``dest`` in (or holding) the run folder, a file, or a non-empty folder that is not a publish."""
    target = dest.resolve()
    if target == run_dir or run_dir in target.parents:
        raise ReportError(f"{dest}: the publish folder must lie outside the run folder {run_dir} (a publish is a "
                          f"copy to share); choose another folder, e.g. {run_dir.parent / (run_dir.name + '-published')}")
    if target in run_dir.parents:
        raise ReportError(f"{dest}: holds the run folder {run_dir}; publishing there would replace it. Choose a new "
                          "or empty folder outside the run folder")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise ReportError(f"{dest}: exists and is not a folder; expected a new or empty folder, or a previous publish")
    if any(dest.iterdir()) and not is_publish(dest):
        raise ReportError(f"{dest}: the folder is not empty and holds no previous publish (no {MARKER} written by "
                          "`python -m bench publish`); its files are never overwritten: choose a new or empty folder")


def is_publish(folder: Path) -> bool:
    """Whether ``folder`` holds a publish: a plain ``published.json`` of this command."""
    path = folder / MARKER
    if path.is_symlink() or not path.is_file():
        return False
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("published_by") == PUBLISHED_BY


def move_into_place(staging: Path, dest: Path) -> None:
    """Rename the finished ``staging`` folder to ``dest``; a previous publish there is moved aside, then deleted."""
    aside = None
    if dest.is_dir() and not dest.is_symlink() and any(dest.iterdir()):
        aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.previous-", dir=staging.parent))
        os.replace(dest, aside / dest.name)
    elif dest.is_dir() and not dest.is_symlink():
        dest.rmdir()
    try:
        os.replace(staging, dest)
    except OSError:
        if aside is not None:
            os.replace(aside / dest.name, dest)
        raise
    fsync_dir(dest.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


# --------------------------------------------------------------------------- raw/


def evidence_names(run: LoadedRun) -> list[Path]:
    """The run-folder files to publish (relative paths), as the layout names them: the run's own, then each unit's."""
    names = [Path(name) for name in RUN_FILES]
    units = dict.fromkeys(zip(run.results["experiment"].astype(str), run.results["seed"].astype(int)))
    for experiment, seed in units:
        unit = run_folder.experiment_dir(Path(), experiment, seed)
        names += [unit / name for name in UNIT_FILES]
    return names


def read_evidence(run_dir: Path, relative: Path) -> str | None:
    """The text of ``run_dir/relative``; None when it is absent, reached through a link or not a plain file."""
    path = run_dir
    try:
        for part in relative.parts:
            path = path / part
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                log.warning("%s: not published: a symbolic link", path)
                return None
        if not stat.S_ISREG(info.st_mode):
            log.warning("%s: not published: not a plain file", path)
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not UTF-8 text; expected the text file `python -m bench run` writes "
                          "there") from None


def write_raw(run: LoadedRun, raw: Path, redactor: Redactor) -> tuple[list[str], list[str]]:
    """Copy the run's evidence into ``raw``, redacted; returns the files written and what was redacted in them."""
    files, notes = [], []
    for relative in evidence_names(run):
        text = read_evidence(run.path, relative)
        if text is None:
            continue
        published, redacted = redact_file(relative.name, text, redactor, str(run.path / relative))
        atomic_write_text(raw / relative, published)
        files.append(relative.as_posix())
        notes += [f"{relative.as_posix()}: {what}" for what in redacted]
    return files, notes


def scrub_report(folder: Path, redactor: Redactor) -> list[str]:
    """Redact local paths in the rendered report's text files (report.html, tables/); returns what was redacted."""
    notes = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if relative.parts[0] == RAW_DIR or not path.is_file() or not text_suffix(path.name):
            continue
        text = path.read_text(encoding="utf-8")
        scrubbed, count = redactor.scrub(text, escape=path.suffix in (".html", ".md"))
        if count:
            atomic_write_text(path, scrubbed)
            notes.append(f"{relative.as_posix()}: {count} local path(s) in the text")
    return notes


def raw_readme(files: Sequence[str], notes: Sequence[str], report_files: int) -> str:
    """``raw/README.md``: what each file is, what was redacted (``report_files``: report files redacted too) and
    what was left out."""
    intro = ("The run folder's evidence, laid out as in the run folder: `python -m bench report raw --out X` renders "
             "the tables again, and `python recompute.py` (next to this folder) recomputes them from these files.")
    lines = ["# Raw files of a published relight-bench run", "", intro, "", "## Files", ""]
    for name, note in FILE_NOTES.items():
        pattern = name.replace("<split>", "*")
        if any(Path(f).match(pattern) for f in files):
            lines.append(f"- `{name}`: {note}")
    lines += ["", f"{len(files)} files in all.", "", "## Redacted", "",
              f"Local paths are replaced by `{REDACTED}` (the run folder's own path by `raw`):", ""]
    lines += [f"- {note}" for note in notes] or ["- nothing: no local path was found"]
    if report_files:
        lines += ["", (f"The report beside this folder (report.html, tables/) was redacted the same way in "
                       f"{report_files} file(s); ../{MARKER} lists them.")]
    lines += ["", "## Left out", ""] + [f"- {item}" for item in LEFT_OUT]
    return "\n".join(lines) + "\n"


def marker(run: LoadedRun, files: Sequence[str], notes: Sequence[str]) -> dict:
    """``published.json``: which run (by name and config hash), when, and what the publish holds."""
    return {"published_by": PUBLISHED_BY, "source": run.path.name, "config_hash": run.meta.get("config_hash"),
            "results_written": run.meta.get("written"), "published": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "raw_files": list(files), "redacted": list(notes), "left_out": list(LEFT_OUT)}
