"""The run's protocol, fixed before the run: ``protocol.yaml`` written once, later rescorings recorded.

Everything that decides a verdict (:func:`protocol_of`) is written to ``<run>/protocol.yaml`` when a run folder
is first started and never overwritten.  A later start of the same folder whose settings differ there (a
rescoring, typically ``eval.weights: best`` after the run) appends one record to the ``rescorings`` list of
``results.json``; :func:`~bench.harness.shared_results.write_results` carries that list forward whenever it
rewrites the file.  The comparison is :func:`reports.protocol.compare_keys`, the one the reporter uses.

:func:`fix_protocol` runs inside :func:`~bench.harness.prepare.write_run_header`, under the shared-files lock
that also covers every rewrite of ``results.json``, so concurrent unit processes (the launchers) read and
write these files one at a time.  Launchers: the launching command writes the header once; a unit process
only when the folder has no ``config.yaml`` yet, with the snapshot of the same config, so neither records a
rescoring by itself.  ``--only`` keeps some experiments of the config in their order: that selects rows and
is no change of the protocol (see :func:`reports.protocol.compare_keys`); adding experiments the protocol
does not list, or reordering them, is one.

A run folder written before protocols existed has a ``config.yaml`` but no ``protocol.yaml``: its protocol is
fixed from that ``config.yaml`` (the earliest record of its settings; keys it lacks take their defaults, which
reproduce the behaviour before those keys existed), so a rescoring started by this version is still recorded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from relight_base import run_folder
from relight_base.atomic import atomic_write_text
from relight_base.errors import BenchError, ConfigError
from relight_base.results import SCHEMA_VERSION
from relight_base.typed_config import read_yaml_file
from bench.harness.config import BenchConfig, config_hash, to_dict
from bench.harness.provenance import now
from reports.errors import ReportError
from reports.protocol import (EXPERIMENTS, KEYS, PROTOCOL_FORMAT, RESCORINGS, Change, compare_keys, keys_of_config,
                              load_protocol)

log = logging.getLogger(__name__)

MAX_RESULTS_JSON_BYTES = 16 << 20  # results.json read back for its rescorings (ours are a few KiB)
AT_START = "the run's first start"
FROM_OLDER_CONFIG = "config.yaml of an earlier start (this run folder predates protocol.yaml)"


class ProtocolError(BenchError):
    """A run folder's ``protocol.yaml`` cannot be read, so a rerun cannot tell whether it rescores."""


def protocol_of(cfg: BenchConfig) -> dict[str, Any]:
    """The settings that decide a verdict, as plain data: dotted key -> value (:func:`reports.protocol.protocol_keys`).

    Which weights are scored (``eval.weights``; ``train.val_every``, ``train.holdout`` and ``train.best_metric``
    decide what ``best.pt`` is), how (``eval.ssim``, ``eval.quantize``, and two more keys of the scoring
    fingerprint that move the numbers: ``eval.autocast``, evaluating in reduced precision, and
    ``weights.lpips``, which LPIPS weights give LPIPS and MPS), on what (``eval.splits``), with how many seeds
    (``seeds``), which rows (``experiments``, their names in order) and how the report compares them (every
    ``report.*`` key).  Left out: the scoring fingerprint's ``eval.compile`` and ``eval.save_predictions``
    (how fast, what is written: not which numbers), timing settings (the tables' times, not a verdict), and
    what trains the weights (data, schedule, loss: a change there trains again, the result rows record it).
    """
    return keys_of_config(to_dict(cfg))


def fix_protocol(run_dir: Path, cfg: BenchConfig) -> list[Change]:
    """Write ``protocol.yaml`` if the folder has none; record how ``cfg`` departs from the protocol.

    Call it under :class:`~bench.harness.lock.SharedFilesLock`, before ``config.yaml`` is rewritten (a folder
    with a ``config.yaml`` but no protocol predates protocols: its protocol is taken from that file, and this
    start may already differ from it).  Returns the changes against the protocol (empty when there are none).
    """
    run_dir = Path(run_dir)
    if not (run_dir / run_folder.PROTOCOL_YAML).exists():
        _write_protocol(run_dir, cfg)
    try:
        stored = load_protocol(run_dir)
    except ReportError as exc:
        raise ProtocolError(f"{exc}. It is never rewritten: restore it, or move it away to fix this run's "
                            f"current settings as its protocol") from None
    changes = compare_keys(stored[KEYS], protocol_of(cfg))
    if changes:
        log.warning("%s: scoring differs from %s (%s): the report will say it was rescored after the run",
                    run_dir, run_folder.PROTOCOL_YAML, "; ".join(c.words() for c in changes))
    record_rescoring(run_dir, changes)
    return changes


def _write_protocol(run_dir: Path, cfg: BenchConfig) -> None:
    keys, source, hashed = protocol_of(cfg), AT_START, config_hash(cfg)
    older = _older_config(run_dir)
    if older is not None:
        defaults = protocol_of(BenchConfig())  # a key an older config lacks had its default's behaviour
        keys = {**{k: v for k, v in defaults.items() if k != EXPERIMENTS}, **keys_of_config(older)}
        source, hashed = FROM_OLDER_CONFIG, config_hash(older)
    document = {"format": PROTOCOL_FORMAT, "written": now(), "config_hash": hashed, "fixed_from": source,
                KEYS: keys}
    header = (f"# {run_folder.PROTOCOL_YAML}: what decides this run's verdicts, written by `python -m bench run` "
              f"at {source}\n# and never overwritten.  A later run of this folder with other settings here is a "
              f"rescoring:\n# results.json lists each under '{RESCORINGS}', and the report says so.\n")
    atomic_write_text(run_dir / run_folder.PROTOCOL_YAML,
                      header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    log.info("%s: protocol fixed in %s (from %s)", run_dir, run_folder.PROTOCOL_YAML, source)


def _older_config(run_dir: Path) -> dict | None:
    """The ``config.yaml`` an earlier start left (a folder of a version without protocols), or None."""
    path = run_dir / run_folder.CONFIG_YAML
    if not path.is_file():
        return None
    try:
        data = read_yaml_file(path)
    except ConfigError as exc:
        log.warning("%s: cannot read it (%s); the protocol is fixed from this run's settings", path, exc)
        return None
    return data if isinstance(data, dict) else None


def record_rescoring(run_dir: Path, changes: list[Change]) -> None:
    """Append ``{"at", "changes"}`` to ``results.json``'s rescorings unless the last record says the same.

    No changes and no earlier record: nothing.  No changes after a record with some: an empty record (scored
    by the protocol again).  The same changes as the last record (the same rescoring command rerun): nothing.
    A folder without ``results.json`` gets one holding only its schema version and the list.
    """
    run_dir = Path(run_dir)
    meta = _results_meta(run_dir)
    records = _rescorings_in(meta, run_dir)
    plain = json.loads(json.dumps([c.as_record() for c in changes], default=str))
    last = records[-1].get("changes") if records and isinstance(records[-1], dict) else []
    if plain == last:
        return
    records.append({"at": now(), "changes": plain})
    meta = meta if meta is not None else {"schema_version": SCHEMA_VERSION}
    meta[RESCORINGS] = records
    atomic_write_text(run_dir / run_folder.RESULTS_JSON, json.dumps(meta, indent=2, default=str) + "\n")


def stored_rescorings(run_dir: Path) -> list:
    """The ``rescorings`` list of ``<run_dir>/results.json``; empty when the file is missing, unreadable or has
    none (a list that is not one is dropped, with a warning).  Read under the shared-files lock."""
    run_dir = Path(run_dir)
    return _rescorings_in(_results_meta(run_dir), run_dir)


def _rescorings_in(meta: dict | None, run_dir: Path) -> list:
    records = (meta or {}).get(RESCORINGS, [])
    if not isinstance(records, list):
        log.warning("%s: '%s' is not a list; it is dropped", run_dir / run_folder.RESULTS_JSON, RESCORINGS)
        return []
    return records


def _results_meta(run_dir: Path) -> dict | None:
    """``results.json`` as a dict, or None when it is missing or unreadable (it is rebuilt then)."""
    path = run_dir / run_folder.RESULTS_JSON
    try:
        if path.stat().st_size > MAX_RESULTS_JSON_BYTES:
            raise ValueError(f"over {MAX_RESULTS_JSON_BYTES} bytes")
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read it (%s); its rescoring records are lost", path, exc)
        return None
    return meta if isinstance(meta, dict) else None
