"""Who holds a lock file (:mod:`bench.harness.lock`): the owner record, reading it back, and telling on this host
whether its process still lives.

An owner record is a JSON object: ``host``, ``pid``, ``job`` (Slurm job id or null), ``since`` (local time, for
people), ``created`` (``time.time()``), ``token`` (random, names this one lock file), and on Linux ``boot_id``
(``/proc/sys/kernel/random/boot_id``) and ``start_ticks`` (field 22 of ``/proc/<pid>/stat``: the process's
start in clock ticks since boot).  A pid alone does not name a process for long: after a reboot, or once the
process has ended, the kernel hands the same number to another one; pid + boot id + start time does.

A file whose text is not such a record (not JSON, not an object, a required field missing or of the wrong type)
reads as ``{}``: "being written this instant, or garbage", which the lock judges by the file's age.
"""

from __future__ import annotations

import functools
import json
import math
import os
import socket
import time
from pathlib import Path

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
REQUIRED = {"host": str, "pid": int, "created": (int, float)}
OPTIONAL = {"job": str, "since": str, "token": str, "boot_id": str, "start_ticks": int}


def slurm_job_id() -> str | None:
    """This process's Slurm job as ``squeue`` names it (``<array job>_<task>`` for an array element), or None."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


@functools.lru_cache(maxsize=1)
def boot_id() -> str | None:
    """This machine's boot id (new at every boot), or None where ``/proc`` does not give one."""
    try:
        return BOOT_ID_FILE.read_text().strip() or None
    except OSError:
        return None


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22); None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])  # after "pid (comm)": field 3 is index 0
    except (OSError, ValueError, IndexError):
        return None


def current_owner() -> dict:
    """Who this process is, as a lock file records it (the lock adds its ``token``)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "job": slurm_job_id(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "created": time.time(), "boot_id": boot_id(),
            "start_ticks": process_start_ticks(pid)}


def describe_owner(owner: dict) -> str:
    """``"Slurm job 12_3 (pid 77 on node1, since ...)"`` or ``"pid 77 on node1, since ..."``."""
    where = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, since {owner.get('since', '?')}"
    return f"Slurm job {owner['job']} ({where})" if owner.get("job") else where


def _is(value: object, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def parse_owner(raw: bytes | str) -> dict:
    """The owner record in a lock file's contents; ``{}`` when they are not one (see the module docstring)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, empty (being written), nested absurdly deep
        return {}
    if not isinstance(data, dict):
        return {}
    if not all(_is(data.get(key), kind) for key, kind in REQUIRED.items()):
        return {}
    if not all(data.get(key) is None or _is(data[key], kind) for key, kind in OPTIONAL.items()):
        return {}
    try:
        finite = math.isfinite(data["created"])
    except OverflowError:  # an integer too large for a float
        finite = False
    return data if finite and data["pid"] > 0 else {}


def read_record(path: Path) -> tuple[dict | None, tuple | None]:
    """The owner recorded in ``path`` (``{}`` if unreadable, None if there is no such file) and what identifies
    that very file: its token, or for a file without one its inode, modification time and size (None when it
    could not be read at all, which matches nothing)."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            raw = handle.read()
    except FileNotFoundError:
        return None, None
    except OSError:
        return {}, None
    owner = parse_owner(raw)
    if owner.get("token"):
        return owner, ("token", owner["token"])
    return owner, ("file", info.st_ino, info.st_mtime_ns, info.st_size)


def local_process_gone(owner: dict) -> bool:
    """Whether the process ``owner`` names on this host is gone: the machine rebooted since (another boot id),
    no process has its pid, or the pid now names a process that started at another time (reused).  Where
    ``/proc`` gives no boot id or start time, the pid alone decides."""
    recorded_boot, this_boot = owner.get("boot_id"), boot_id()
    if recorded_boot and this_boot and recorded_boot != this_boot:
        return True
    pid = owner["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        pass
    except (OverflowError, ValueError, OSError):
        return False
    recorded_start, start = owner.get("start_ticks"), process_start_ticks(pid)
    return recorded_start is not None and start is not None and recorded_start != start
