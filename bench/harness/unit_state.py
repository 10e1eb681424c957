"""Each experiment x seed ("unit") records its state in ``<experiment>/seed<k>/unit.json``.

States: ``pending`` (submitted, not started), ``running``, ``done``, ``failed`` (NaN loss, out of memory, a
bug: the message says which), ``cancelled`` (stopped by SIGTERM/Ctrl-C or ``scancel``) and ``killed``
(its process or job ended without a word: SIGKILL, node failure, time limit without requeue).  Not only
finished units write one: a unit that never finishes still leaves a record saying why, with its job id and
log path.  ``result.json`` stays the proof of a finished unit; ``unit.json`` says where every other one is.
A record also says when it was last ``updated`` and, from the moment the unit became running, when it ``started``
(both ISO 8601 with the UTC offset, whole seconds; what :mod:`bench.harness.run_progress` measures).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from relight_base import run_folder
from relight_base.atomic import atomic_write_text

PENDING, RUNNING, DONE, FAILED, CANCELLED, KILLED = "pending", "running", "done", "failed", "cancelled", "killed"
NOT_RUN = "not run"  # no record at all
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # ``updated`` and ``started``


class UnitStopped(KeyboardInterrupt):
    """Raised in a unit's process by the SIGTERM handler of a launcher: the unit is recorded as cancelled."""


def state_path(unit_dir: Path) -> Path:
    return Path(unit_dir) / run_folder.UNIT_JSON


def read_state(unit_dir: Path) -> dict[str, Any]:
    """The unit's record; ``{"state": "not run"}`` when it has none (or an unreadable one)."""
    try:
        record = json.loads(state_path(unit_dir).read_text())
    except (FileNotFoundError, ValueError, OSError):
        return {"state": NOT_RUN}
    return record if isinstance(record, dict) and "state" in record else {"state": NOT_RUN}


def write_state(unit_dir: Path, state: str, **info: Any) -> dict[str, Any]:
    """Replace the unit's record (atomically) with ``state`` and ``info`` (job, host, pid, log, message, rows)."""
    record = {"state": state, "updated": timestamp(), **info}
    Path(unit_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(state_path(unit_dir), json.dumps(record, default=float) + "\n")
    return record


def update_state(unit_dir: Path, state: str, **info: Any) -> dict[str, Any]:
    """Like :func:`write_state`, keeping the earlier record's job, host, log and ``started`` unless given anew.

    A unit becoming running starts anew: its ``started`` is now (unless given).
    """
    earlier = read_state(unit_dir)
    kept = {k: earlier[k] for k in ("job", "host", "pid", "log", "started") if k in earlier}
    if state == RUNNING:
        kept["started"] = timestamp()
    return write_state(unit_dir, state, **{**kept, **info})


def timestamp() -> str:
    """Now, as a record writes it (:data:`STAMP_FORMAT`)."""
    return time.strftime(STAMP_FORMAT)
