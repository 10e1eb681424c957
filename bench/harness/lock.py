"""Many writers, one run folder: one lock per experiment x seed, and a short lock for the shared files.

A lock is a file created with ``open(O_CREAT | O_EXCL)`` (atomic on local file systems, NFS v3+ and Lustre,
where ``flock`` may not be honoured) holding its owner (:mod:`bench.harness.lock_owner`: host, pid, Slurm job,
boot id, process start time, creation time, a random token).  The kernel does not free such a file when its
owner dies, so a lock found in place is taken over when its owner is judged gone:

* its Slurm job is another one that Slurm no longer queues or runs (``squeue`` says the id is unknown or the
  job is in no active state), or it is *this* job in an earlier life (requeued) on another host;
* it was taken on this host in an earlier boot, or by a process that no longer exists (pid gone, or the pid
  now names a process started at another time: reused); without ``/proc``, by the pid alone;
* its file is unreadable (not an owner record) and older than :data:`GUARD_STALE_S`;
* for the shared-files lock only: it is older than :data:`SHARED_STALE_S` (a holder writes for seconds).

An owner that cannot be checked (another host without a Slurm job, or ``squeue`` gives no answer) is never
judged gone.  Taking over: while holding ``<lock>.takeover`` (a second ``O_EXCL`` file), re-read the lock and
remove it only if its token is still the one judged gone; then try ``O_EXCL`` again like everyone else.
Releasing also holds ``.takeover`` and removes the lock only if its token is still this process's.

What is guaranteed: at most one process holds a lock at a time, provided (1) ``O_EXCL`` is atomic on the run
folder's file system across all hosts using it, and host names are unique among them; (2) an owner judged
gone is gone: true of every rule above except the age of a shared-files lock, whose holder, if still alive
after :data:`SHARED_STALE_S`, overlaps with the next holder (its release then leaves the next holder's file);
(3) no process stalls for more than :data:`GUARD_STALE_S` while holding ``.takeover`` (it holds it for one
read and one unlink): an older ``.takeover`` counts as left by a dead process and is cleared (under
``<lock>.takeover.break``, again ``O_EXCL``), as is a ``.break`` file that old; (4) the hosts' clocks (and
the file server's, for unreadable files, judged by modification time) agree to within seconds, since the age
rules compare them.  Nothing else is promised: a lock whose holder cannot be checked stays until a person
deletes it, and a holder is not told when its lock is taken over.  :class:`UnitLock` fails at once
with :class:`RunFolderBusy` naming the holder; :class:`SharedFilesLock` waits (the shared files are rebuilt in
well under a second).
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
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from bench.harness.lock_owner import current_owner, describe_owner, local_process_gone, read_record, slurm_job_id
from relight_base.errors import BenchError
from relight_base.run_folder import SHARED_LOCK_FILE, UNIT_LOCK_FILE

__all__ = ["ACTIVE_SLURM_STATES", "OwnedLock", "RunFolderBusy", "SharedFilesLock", "UnitLock", "current_owner",
           "describe_owner", "owner_gone", "slurm_job_active", "slurm_job_id"]

log = logging.getLogger(__name__)

SHARED_STALE_S = 600.0  # a shared-files lock older than this is taken over whoever holds it
SHARED_WAIT_S = 900.0  # how long a writer waits for the shared files before it gives up
GUARD_STALE_S = 60.0  # a .takeover / .break file, or an unreadable lock file, older than this is left by the dead
ACTIVE_SLURM_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                       "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}


class RunFolderBusy(BenchError):
    """Another process holds the experiment x seed (or the shared files) this process wants to write."""


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
    """Whether the process that wrote ``owner`` (a well-formed record) is known to be gone, or is this very job
    in an earlier life (requeued)."""
    job = slurm_job_id()
    if owner.get("job") and owner["job"] != job:
        return slurm_job_active(owner["job"]) is False
    if owner["host"] != socket.gethostname():
        # this job in an earlier life on another node (requeued): gone; a stranger elsewhere: cannot tell
        return bool(owner.get("job"))
    return local_process_gone(owner)  # a requeued job's earlier process, or a sibling of the same allocation


def _create_record(path: Path) -> str | None:
    """Create ``path`` exclusively (``O_EXCL``) holding this process's owner record; its token, or None if taken."""
    token = secrets.token_hex(8)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({**current_owner(), "token": token}, handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:  # a disk full, say: leave no empty lock for others to wait out
        path.unlink(missing_ok=True)
        raise
    return token


def _age_s(path: Path, owner: dict | None) -> float | None:
    """How old the lock file ``path`` is: by its record's ``created``, or if unreadable by its modification time."""
    if owner:
        return time.time() - owner["created"]
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return None


def _older_than(path: Path, limit_s: float) -> bool:
    age = _age_s(path, read_record(path)[0])
    return age is not None and age > limit_s


def _unlink_if_token(path: Path, token: str) -> None:
    owner, _ = read_record(path)
    if owner and owner.get("token") == token:
        path.unlink(missing_ok=True)


def _take_guard(guard: Path) -> str | None:
    """Hold the guard file ``guard`` (``O_EXCL``): its token, or None while another process holds it.  A guard
    older than :data:`GUARD_STALE_S` is removed first, by whichever process holds ``<guard>.break``."""
    token = _create_record(guard)
    if token is not None or not _older_than(guard, GUARD_STALE_S):
        return token
    breaker = guard.with_name(f"{guard.name}.break")
    if _create_record(breaker) is None:
        if not _older_than(breaker, GUARD_STALE_S):
            return None
        breaker.unlink(missing_ok=True)  # a process died while clearing: clear its file too
        if _create_record(breaker) is None:
            return None
    try:
        if _older_than(guard, GUARD_STALE_S):  # still the stale one: only .break's holder removes a guard
            log.warning("removing %s, left by a process that died while taking over or releasing the lock", guard)
            guard.unlink(missing_ok=True)
    finally:
        breaker.unlink(missing_ok=True)
    return _create_record(guard)  # several clearers race through O_EXCL again: one wins


class OwnedLock:
    """A lock file created atomically, holding its owner (see the module docstring)."""

    what = "lock"

    def __init__(self, path: Path, *, stale_after_s: float | None = None, wait_s: float = 0.0):
        self.path = Path(path)
        self.guard = self.path.with_name(f"{self.path.name}.takeover")
        self.stale_after_s = stale_after_s
        self.wait_s = wait_s
        self._token: str | None = None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            if self._try_create():
                return
            owner, seen = read_record(self.path)
            if owner is None:  # released this instant: try again
                continue
            if self._is_stale(owner):
                if self._take_over(seen, owner):
                    continue
                owner = read_record(self.guard)[0] or owner  # the process taking it over, which will hold it
            if time.monotonic() >= deadline:
                raise RunFolderBusy(self._busy_message(owner))
            time.sleep(0.05)

    def release(self) -> None:
        """Remove the lock file if it is still this process's (a taker-over may have replaced it)."""
        if self._token is None:
            return
        token, self._token = self._token, None
        if self._under_guard(lambda: _unlink_if_token(self.path, token), wait_s=GUARD_STALE_S + 10) is None:
            log.warning("%s %s: could not take %s to release it; left in place", self.what, self.path, self.guard)

    def live_holder(self) -> dict | None:
        """The lock's owner if it may still be alive (see the module docstring); None when free or stale.
        ``{}`` for a lock file that is being written or unreadable, but recent."""
        owner, _ = read_record(self.path)
        if owner is None or self._is_stale(owner):
            return None
        return owner

    def _try_create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        token = _create_record(self.path)
        if token is not None:
            self._token = token
        return token is not None

    def _is_stale(self, owner: dict) -> bool:
        age = _age_s(self.path, owner)
        if not owner:  # being written this instant, or garbage: judge by the file's age
            return age is not None and age > GUARD_STALE_S
        if self.stale_after_s is not None and age is not None and age > self.stale_after_s:
            return True
        return owner_gone(owner)

    def _under_guard(self, action: Callable[[], bool | None], wait_s: float) -> tuple[bool | None] | None:
        """``(action(),)`` run while holding ``<lock>.takeover``, or None if it stayed held for ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while (token := _take_guard(self.guard)) is None:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        try:
            return (action(),)
        finally:
            _unlink_if_token(self.guard, token)

    def _take_over(self, seen: tuple | None, owner: dict) -> bool:
        """Remove the lock file judged gone, if it is still the one ``seen`` identifies: True when the caller
        should try again at once (removed, or released or replaced meanwhile), False when another process is
        taking it over or it cannot be removed."""
        if seen is None:
            return False
        done = self._under_guard(lambda: self._remove_if_same(seen, owner), wait_s=0)
        return bool(done and done[0])

    def _remove_if_same(self, seen: tuple, owner: dict) -> bool:
        current, now = read_record(self.path)
        if current is None or now != seen:  # released, or taken over and re-taken since it was judged
            return True
        try:
            self.path.unlink()
        except FileNotFoundError:
            return True
        except OSError as exc:
            log.warning("%s %s: cannot remove it (%s)", self.what, self.path, exc)
            return False
        log.warning("%s %s: its holder (%s) is gone; taking it over", self.what, self.path, describe_owner(owner))
        return True

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
