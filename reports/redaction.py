"""Local paths taken out of the files ``bench publish`` shares, keeping every file valid and readable.

Three rules, applied in order:

* keys that hold local paths are replaced whole by :data:`REDACTED`: ``data.root``, ``launcher.slurm.setup``
  (each job's shell lines) and ``weights.backbone/perceptual/lpips`` (when a file path) of config.yaml,
  ``keys: weights.lpips`` of protocol.yaml, ``data.root`` of results.json and ``root`` of data.json (null,
  booleans, ``auto`` and empty values stay);
* the run folder's own path becomes ``raw`` (its published copy), and the other known local paths (the data
  roots, the publish folder) become :data:`REDACTED`, wherever they appear in a text;
* then anything that looks like an absolute path (``/a/b``, ``~/a``, ``C:\\a``) becomes :data:`REDACTED`.

JSON and YAML files are read, redacted value by value and written again (the same data, still readable by
:func:`reports.loading.load_run`; a YAML file keeps its leading comment block); other text files (CSV, Markdown, HTML, LaTeX) are redacted as text, which
never spans a CSV delimiter or quote.  A file without anything to redact is copied byte for byte.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from relight_base import run_folder
from relight_base.typed_config import read_yaml_data
from reports.errors import ReportError
from reports.loading import LoadedRun

REDACTED = "<redacted: local path>"
RUN_FOLDER_NAME = "raw"  # what the run folder's own path becomes: where its published copy lies
PATH_KEYS = {
    run_folder.CONFIG_YAML: (("data", "root"), ("launcher", "slurm", "setup"), ("weights", "backbone"),
                             ("weights", "perceptual"), ("weights", "lpips")),
    run_folder.RESULTS_JSON: (("data", "root"),),
    run_folder.DATA_JSON: (("root",),),
    "protocol.yaml": (("keys", "weights.lpips"),),  # the protocol's dotted keys (reports.protocol)
}
NOT_A_PATH = (None, True, False, "", "auto", [])
TEXT_SUFFIXES = (".html", ".json", ".csv", ".md", ".tex", ".yaml", ".txt", ".svg")

_PART = r"[^/\\\s\"'`,;()<>\[\]{}|*]"  # one character of a path component (never a delimiter, quote or space)
ABSOLUTE_PATH = re.compile(
    rf"(?<![\w.:/<>\\~-])/{_PART}+(?:/{_PART}*)+"   # /a/b (one component alone, /s, is too often not a path)
    rf"|(?<![\w.:/<>\\-])~[\w.-]*(?:/{_PART}+)+"     # ~/a, ~user/a
    rf"|(?<![\w])[A-Za-z]:[\\/]{_PART}+(?:[\\/]{_PART}*)*"  # C:\a, C:/a
)


def text_suffix(name: str) -> bool:
    """Whether a file called ``name`` is a text file the redaction reads."""
    return Path(name).suffix in TEXT_SUFFIXES


@dataclass(frozen=True)
class Redactor:
    """Replaces local paths in texts: ``literals`` (path, replacement), longest first, then absolute paths."""

    literals: tuple[tuple[str, str], ...]

    @classmethod
    def for_run(cls, run: LoadedRun, extra: Iterable[Path] = ()) -> Redactor:
        """The redactor of a run: its own path -> ``raw``; its data roots and ``extra`` paths -> REDACTED."""
        run_paths = {str(run.path.absolute()), str(run.path.resolve())}
        roots = [run.data.get("root"), (run.meta.get("data") or {}).get("root"),
                 (run.config.get("data") or {}).get("root"), *map(str, extra)]
        others = {text for text in map(_absolute, roots) if text and text not in run_paths}
        pairs = [(p, RUN_FOLDER_NAME) for p in run_paths] + [(p, REDACTED) for p in others]
        return cls(tuple(sorted(pairs, key=lambda pair: -len(pair[0]))))

    def scrub(self, text: str, escape: bool = False) -> tuple[str, int]:
        """``text`` with every local path replaced, and how many were; ``escape``: the marker HTML-escaped."""
        marker = html.escape(REDACTED) if escape else REDACTED
        count = 0
        for path, replacement in self.literals:
            pattern = rf"(?<![\w./-]){re.escape(path)}(?![\w.-])"
            text, n = re.subn(pattern, marker if replacement == REDACTED else replacement, text)
            count += n
        text, n = ABSOLUTE_PATH.subn(marker, text)
        return text, count + n

    def check_clean(self, folder: Path) -> None:
        """A :class:`ReportError` when a text file under ``folder`` still names a known local path (a bug guard)."""
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or not text_suffix(path.name) and path.suffix != ".py":
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for literal, _ in self.literals:
                if literal in text:
                    raise ReportError(f"{path.relative_to(folder)} still names the local path {literal} after "
                                      "redaction; nothing was published (please report this)")


def _absolute(value: Any) -> str | None:
    """``value`` as an absolute path string (``~`` expanded) with at least two parts, or None."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        return None
    path = Path(str(value)).expanduser()
    return str(path) if path.is_absolute() and len(path.parts) > 1 else None


def redact_tree(value: Any, redactor: Redactor, keys: Iterable[tuple], notes: list[str], where: tuple = ()) -> Any:
    """``value`` (parsed JSON or YAML) with the path ``keys`` replaced whole and paths in every string redacted;
    ``notes`` gets the dotted key of each value changed."""
    keys = tuple(keys)
    if where in keys and not any(value is v or (type(value) is type(v) and value == v) for v in NOT_A_PATH):
        notes.append(".".join(map(str, where)))
        return [REDACTED] if isinstance(value, list) else REDACTED
    if isinstance(value, dict):
        return {k: redact_tree(v, redactor, keys, notes, where + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v, redactor, keys, notes, where + (i,)) for i, v in enumerate(value)]
    if isinstance(value, str):
        text, count = redactor.scrub(value)
        if count:
            notes.append(".".join(map(str, where)) or "the value")
        return text
    return value


def _header_lines(text: str) -> int:
    """How many lines the comment block at the top of a YAML text has (kept when the YAML is written again)."""
    lines = text.splitlines()
    return next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))


def redact_file(name: str, text: str, redactor: Redactor, source: str) -> tuple[str, list[str]]:
    """The text to publish of a run-folder file called ``name`` (read from ``source``), and what was redacted."""
    notes: list[str] = []
    keys = PATH_KEYS.get(name, ())
    if name.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ReportError(f"{source}: not valid JSON ({exc}); expected the file `python -m bench run` "
                              "writes") from None
        redacted = redact_tree(data, redactor, keys, notes)
        return (json.dumps(redacted, indent=2) + "\n" if notes else text), notes
    if name.endswith(".yaml"):
        redacted = redact_tree(read_yaml_data(text, source), redactor, keys, notes)
        header = "".join(line for line in text.splitlines(keepends=True)[:_header_lines(text)])
        dumped = yaml.safe_dump(redacted, sort_keys=False, default_flow_style=False, allow_unicode=True)
        return (header + dumped if notes else text), notes
    scrubbed, count = redactor.scrub(text)
    return scrubbed, [f"{count} local path(s) in the text"] if count else []
