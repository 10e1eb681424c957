"""A run's protocol: the settings that decide its verdicts, fixed in ``protocol.yaml`` when the run started.

``bench run`` writes ``protocol.yaml`` once, at the first start of a run folder, and never overwrites it
(:mod:`bench.harness.protocol`).  A later rerun of the same folder with other scoring settings (say
``eval.weights: best`` instead of ``last``) rescores the trained weights and rewrites ``config.yaml``; each
such rescoring is appended to the ``rescorings`` list of ``results.json``.  This module is the reader's side,
shared with the writer so both compare alike:

* :func:`load_protocol`: a folder's ``protocol.yaml`` (None for a folder written before it existed);
* :func:`protocol_changes`: how the scoring of the stored ``config.yaml`` (the one the numbers have) differs
  from the protocol, as :class:`Change` records; :func:`describe_changes` words them for a report;
* :func:`rescorings_of`: the ``rescorings`` records of ``results.json``, read defensively.

The protocol's keys are dotted config keys (:data:`SCORING_KEYS`, every ``report.*`` key of
:class:`~reports.settings.ReportConfig`) plus ``experiments``, the experiment names in order.  A list of
experiments that keeps some of the protocol's in their order (``bench run --only``) is no change: it selects
rows, it does not score them otherwise.  Any other difference is one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relight_base import run_folder
from relight_base.errors import ConfigError
from relight_base.typed_config import read_yaml_file
from reports.errors import ReportError
from reports.settings import ReportConfig

PROTOCOL_FORMAT = 1  # of protocol.yaml: its "format" key
KEYS = "keys"  # protocol.yaml's mapping of dotted key -> value
EXPERIMENTS = "experiments"  # the protocol key of the experiment names, in order
REPORT_PREFIX = "report."
RESCORINGS = "rescorings"  # results.json's list of rescoring records
# Dotted config keys that decide which weights are scored, how, on what, and with how many seeds
# (bench.harness.protocol.protocol_of says why each is here).
SCORING_KEYS = ("eval.weights", "eval.splits", "eval.ssim", "eval.quantize", "eval.autocast", "weights.lpips",
                "train.best_metric", "train.val_every", "train.holdout", "seeds")
ARROW = "→"


@dataclass(frozen=True)
class Change:
    """One protocol key whose value now differs from the one fixed when the run started."""

    key: str
    protocol: Any
    now: Any

    def words(self) -> str:
        """``eval.weights last → best``."""
        return f"{self.key} {value_words(self.protocol)} {ARROW} {value_words(self.now)}"

    def as_record(self) -> dict[str, Any]:
        """The plain form ``results.json`` stores: ``{"key", "protocol", "now"}``."""
        return {"key": self.key, "protocol": self.protocol, "now": self.now}


def value_words(value: Any) -> str:
    """A protocol value as a report prints it: ``null``, ``true``, ``[val, test]``, ``0.95``, ``best``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_words(v) for v in value) + "]"
    return str(value)


def report_keys() -> tuple[str, ...]:
    """``report.<field>`` for every field of :class:`ReportConfig`, in its order."""
    return tuple(REPORT_PREFIX + f.name for f in dataclasses.fields(ReportConfig))


def report_defaults() -> dict[str, Any]:
    """Each ``report.*`` key's default: what a run without that key compares with."""
    return {REPORT_PREFIX + k: v for k, v in dataclasses.asdict(ReportConfig()).items()}


def protocol_keys() -> tuple[str, ...]:
    """Every key a protocol holds, in the order ``protocol.yaml`` lists them."""
    return (*SCORING_KEYS, EXPERIMENTS, *report_keys())


def keys_of_config(config: dict) -> dict[str, Any]:
    """The protocol keys' values in a config as plain data (``config.yaml`` loaded, or ``to_dict`` of one).

    A ``report.*`` key missing there takes its :class:`ReportConfig` default; any other missing key is left
    out (an older config that never had it: nothing to compare).
    """
    found: dict[str, Any] = {}
    for key in protocol_keys():
        value = _dotted(config, key)
        if value is not _MISSING:
            found[key] = value
        elif key.startswith(REPORT_PREFIX):
            found[key] = report_defaults()[key]
    return found


def _dotted(config: Any, key: str) -> Any:
    if key == EXPERIMENTS:
        experiments = config.get(EXPERIMENTS) if isinstance(config, dict) else None
        if not isinstance(experiments, list):
            return _MISSING
        return [e.get("name") if isinstance(e, dict) else e for e in experiments]
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def compare_keys(fixed: dict, now: dict) -> list[Change]:
    """The keys of ``fixed`` (a protocol's ``keys``) whose value in ``now`` differs, in protocol order.

    Keys missing from ``now`` are not compared; a ``report.*`` key missing from either side takes its default;
    ``experiments`` changes only when ``now`` is not a selection of the protocol's, in its order.
    """
    defaults = report_defaults()
    fixed, now = {**defaults, **fixed}, {**defaults, **now}
    known = protocol_keys()
    changes = []
    for key in [k for k in known if k in fixed] + [k for k in fixed if k not in known]:
        value = fixed[key]
        if key not in now or now[key] == value:
            continue
        if key == EXPERIMENTS and _is_selection(now[key], value):
            continue
        changes.append(Change(key, value, now[key]))
    return changes


def _is_selection(names: Any, of: Any) -> bool:
    """Whether ``names`` are some of ``of``, in the same order (``--only``)."""
    if not isinstance(names, list) or not isinstance(of, list):
        return False
    rest = iter(of)
    return all(any(name == other for other in rest) for name in names)


def load_protocol(run_dir: Path) -> dict | None:
    """``<run_dir>/protocol.yaml`` as a dict (``format``, ``written``, ``config_hash``, ``keys``), or None when
    the folder has none (written before protocols existed).

    Raises:
        ReportError: naming the file, when it is oversized, not YAML, or not the mapping ``bench run`` writes.
    """
    path = Path(run_dir) / run_folder.PROTOCOL_YAML
    if not path.exists():
        return None
    try:
        data = read_yaml_file(path)
    except ConfigError as exc:
        raise ReportError(f"{exc}; expected the protocol.yaml `python -m bench run` writes") from None
    if not isinstance(data, dict) or not isinstance(data.get(KEYS), dict) \
            or not all(isinstance(k, str) for k in data[KEYS]):
        found = type(data.get(KEYS) if isinstance(data, dict) else data).__name__
        raise ReportError(f"{path}: expected a mapping with '{KEYS}:' (dotted config key -> value) as "
                          f"`python -m bench run` writes it; found {found}")
    return data


def protocol_changes(protocol: dict, config: dict) -> list[Change]:
    """How the scoring of ``config`` (the stored ``config.yaml``: the scoring the numbers have) differs from
    ``protocol`` (as :func:`load_protocol` returns it); empty when it does not."""
    return compare_keys(protocol.get(KEYS) or {}, keys_of_config(config or {}))


def describe_changes(changes: list[Change]) -> str:
    """``rescored after the run: eval.weights last → best; report.confidence 0.95 → 0.9``; empty for none."""
    if not changes:
        return ""
    return "rescored after the run: " + "; ".join(change.words() for change in changes)


def rescorings_of(meta: dict) -> list[dict]:
    """The rescoring records of ``results.json`` (``meta``), oldest first, never raising.

    Each is ``{"at": str, "changes": [Change, ...], "text": str, "ok": bool}``: ``text`` is one line for a
    report (``2025-01-31T10:00:00+0000: eval.weights last → best``; an empty ``changes`` is a return to the
    protocol's scoring).  A malformed record is kept as ``ok`` False whose ``text`` says what was wrong and that
    it is ignored; no list (an older run, or none yet) gives none.
    """
    records = meta.get(RESCORINGS) if isinstance(meta, dict) else None
    if records is None:
        return []
    if not isinstance(records, list):
        return [_ignored(f"results.json: '{RESCORINGS}' is a {type(records).__name__}, not a list")]
    return [_record(index, record) for index, record in enumerate(records, start=1)]


def _record(index: int, record: Any) -> dict:
    where = f"results.json: rescoring record {index}"
    if not isinstance(record, dict) or not isinstance(record.get("at"), str) \
            or not isinstance(record.get("changes"), list):
        return _ignored(f"{where} is not {{'at': time, 'changes': [...]}}")
    changes = []
    for item in record["changes"]:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) \
                or "protocol" not in item or "now" not in item:
            return _ignored(f"{where} has a change that is not {{'key', 'protocol', 'now'}}")
        changes.append(Change(item["key"], item["protocol"], item["now"]))
    words = "; ".join(c.words() for c in changes) or "scored by the protocol again"
    return {"at": record["at"], "changes": changes, "text": f"{record['at']}: {words}", "ok": True}


def _ignored(problem: str) -> dict:
    return {"at": "", "changes": [], "text": f"{problem}; ignored", "ok": False}


_MISSING = object()
