"""Is a unit's process or job still alive, and if not, how did it end?  (local pids, Slurm's sacct/squeue)"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess

from bench.harness.lock import ACTIVE_SLURM_STATES

log = logging.getLogger(__name__)

# final states in which a unit that ended without recording it counts as cancelled (any other: killed)
CANCELLED_STATES = {"CANCELLED", "DEADLINE", "PREEMPTED", "REVOKED"}
ACTIVE_STATES = ACTIVE_SLURM_STATES  # queued or running: one list, the locks' (bench.harness.lock)


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    """Slurm's state of each job (``"12_3"`` array elements included): sacct first, squeue for what it misses.

    A job neither knows is left out.  ``CANCELLED by 0`` is shortened to ``CANCELLED``.
    """
    ids = sorted({j for j in job_ids if j})
    if not ids:
        return {}
    states = _ask(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(_array_parents(ids))], "|")
    missing = [j for j in ids if j not in states]
    if missing:
        states.update(_ask(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(_array_parents(missing))], "|"))
    return {j: states[j] for j in ids if j in states}


def _array_parents(ids: list[str]) -> list[str]:
    """Query whole arrays (``12``) for their elements (``12_3``): sacct and squeue then list every element."""
    return sorted({j.split("_")[0] for j in ids})


def _ask(command: list[str], sep: str) -> dict[str, str]:
    if shutil.which(command[0]) is None:
        return {}
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", command[0], exc)
        return {}
    states = {}
    for line in out.stdout.splitlines():
        if sep in line:
            job, state = line.split(sep, 1)
            for one in expand_array_id(job.strip()):
                states[one] = state.strip().split()[0] if state.strip() else ""
    return states


def expand_array_id(job: str) -> list[str]:
    """``"12_[0-2,5%4]"`` (how sacct lists pending array elements) -> ``["12_0", "12_1", "12_2", "12_5"]``."""
    match = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job)
    if not match:
        return [job]
    out = []
    for part in match.group(2).split(","):
        first, _, last = part.partition("-")
        out.extend(f"{match.group(1)}_{i}" for i in range(int(first), int(last or first) + 1))
    return out


def local_process_alive(host: str | None, pid: int | None) -> bool | None:
    """Whether process ``pid`` on ``host`` is alive; None when it ran on another host (cannot tell)."""
    if not pid:
        return False
    if host and host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
