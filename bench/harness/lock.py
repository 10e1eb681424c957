"""Many writers, one run folder: one lock per experiment x seed, and a short lock for the shared files.

A lock is a file created atomically (``open(O_CREAT | O_EXCL)``, which is atomic on local file systems and
on NFS v3+ and Lustre, where ``flock`` may not be honoured) holding its owner: host, pid, Slurm job id (if
any) and start time.  Since the kernel does not free such a lock when its owner dies, a lock found in place
is taken over when its owner is known to be gone:

* its Slurm job is no longer queued or running (``squeue``), or it is *this* job (a requeued Slurm job
  keeps its id and takes back the lock of its earlier life);
* it was taken on this host by a process that no longer exists;
* for the shared-files lock only: it is older than :data:`SHARED_STALE_S` (a holder writes for seconds).

Take-over renames the stale file away first (atomic too), so two processes that both find the same stale
lock cannot both win.  :class:`UnitLock` fails at once with :class:`RunFolderBusy` naming the holder;
:class:`SharedFilesLock` waits (the shared files are rebuilt in well under a second).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from relight_base.errors import BenchError
from relight_base.run_folder import SHARED_LOCK_FILE, UNIT_LOCK_FILE

log = logging.getLogger(__name__)

SHARED_STALE_S = 600.0  # a shared-files lock older than this is taken over whoever holds it
SHARED_WAIT_S = 900.0  # how long a writer waits for the shared files before it gives up
ACTIVE_SLURM_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                       "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}


class RunFolderBusy(BenchError):
    """Another process holds the experiment x seed (or the shared files) this process wants to write."""


def slurm_job_id() -> str | None:
    """This process's Slurm job as ``squeue`` names it (``<array job>_<task>`` for an array element), or None."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def current_owner() -> dict:
    """Who this process is, as a lock file records it."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "job": slurm_job_id(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "created": time.time()}


def describe_owner(owner: dict) -> str:
    """``"Slurm job 12_3 (pid 77 on node1, since ...)"`` or ``"pid 77 on node1, since ..."``."""
    where = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, since {owner.get('since', '?')}"
    return f"Slurm job {owner['job']} ({where})" if owner.get("job") else where


def slurm_job_active(job: str) -> bool | None:
    """Whether Slurm still has ``job`` queued or running; None when ``squeue`` cannot tell."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # "Invalid job id specified": long gone
        return False if "Invalid job id" in out.stderr else None
    return any(state.strip() in ACTIVE_SLURM_STATES for state in out.stdout.split())


def owner_gone(owner: dict) -> bool:
    """Whether the process that wrote ``owner`` is known to be gone (or is this very job, requeued)."""
    me = current_owner()
    if owner.get("job") and owner["job"] != me["job"]:
        return slurm_job_active(owner["job"]) is False
    if owner.get("host") != me["host"]:
        # this job in an earlier life on another node (requeued): gone; a stranger elsewhere: cannot tell
        return bool(owner.get("job"))
    pid = int(owner.get("pid") or 0)
    try:
        os.kill(pid, 0)  # this host: a requeued job's earlier process, or a sibling of the same allocation
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


class OwnedLock:
    """A lock file created atomically, holding its owner (see the module docstring)."""

    what = "lock"

    def __init__(self, path: Path, *, stale_after_s: float | None = None, wait_s: float = 0.0):
        self.path = Path(path)
        self.stale_after_s = stale_after_s
        self.wait_s = wait_s
        self._token: str | None = None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            if self._try_create():
                return
            owner = self._read_owner()
            if owner is not None and self._is_stale(owner):
                self._take_over(owner)
                continue
            if time.monotonic() >= deadline:
                raise RunFolderBusy(self._busy_message(owner))
            time.sleep(0.05)

    def release(self) -> None:
        """Remove the lock file if it is still this process's (a taker-over may have replaced it)."""
        if self._token is None:
            return
        owner = self._read_owner()
        if owner is not None and owner.get("token") == self._token:
            self.path.unlink(missing_ok=True)
        self._token = None

    def live_holder(self) -> dict | None:
        """The lock's owner if it may still be alive (see the module docstring); None when free or stale."""
        owner = self._read_owner()
        if owner is None or self._is_stale(owner):
            return None
        return owner

    def _try_create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump({**current_owner(), "token": token}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        self._token = token
        return True

    def _read_owner(self) -> dict | None:
        """The owner recorded in the lock file; ``{}`` while it is being written or unreadable; None if gone."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {}

    def _is_stale(self, owner: dict) -> bool:
        created = owner.get("created") if owner else None
        if created is None:  # being written this instant, or garbage: judge by the file's age
            try:
                created = self.path.stat().st_mtime
            except FileNotFoundError:
                return False
            return time.time() - created > 60
        if self.stale_after_s is not None and time.time() - float(created) > self.stale_after_s:
            return True
        return owner_gone(owner)

    def _take_over(self, owner: dict) -> None:
        aside = self.path.with_name(f"{self.path.name}.stale-{secrets.token_hex(4)}")
        try:
            os.rename(self.path, aside)  # only one of several takers-over finds the file to rename
        except FileNotFoundError:
            return
        aside.unlink(missing_ok=True)
        log.warning("%s %s: its holder (%s) is gone; taking it over", self.what, self.path, describe_owner(owner))

    def _busy_message(self, owner: dict | None) -> str:
        return f"{self.what} {self.path} is held by {describe_owner(owner or {})}"

    def __enter__(self) -> "OwnedLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


class UnitLock(OwnedLock):
    """One experiment x seed's folder, held while one process trains or scores it (fails at once when busy)."""

    what = "experiment folder lock"

    def __init__(self, unit_dir: Path):
        super().__init__(Path(unit_dir) / UNIT_LOCK_FILE)

    def _busy_message(self, owner: dict | None) -> str:
        return (f"{self.path.parent} is in use by another `bench run` or job ({describe_owner(owner or {})}); wait "
                f"for it to finish (`python -m bench status` shows it), or use another --out or name. If that "
                f"holder is dead on a host this one cannot check, delete {self.path}")


class SharedFilesLock(OwnedLock):
    """The run folder's shared files (config, data summary, results, timing, report): held for seconds, waited for."""

    what = "shared-files lock"

    def __init__(self, run_dir: Path, wait_s: float = SHARED_WAIT_S):
        super().__init__(Path(run_dir) / SHARED_LOCK_FILE, stale_after_s=SHARED_STALE_S, wait_s=wait_s)
