"""One ``bench run`` per run folder: an advisory lock that a dead process cannot leave stuck.

The lock is ``fcntl.flock`` on ``<run folder>/.lock``: the kernel releases it when the holding process
exits, however it exits (SIGKILL included), so there is never a stale lock to clean up.  The file
holds the holder's pid, host and start time for the message a second process prints.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from relight_base.errors import BenchError
from relight_base.run_folder import LOCK_FILE

try:
    import fcntl
except ImportError:  # not POSIX: no locking (documented)
    fcntl = None  # type: ignore[assignment]


class RunFolderBusy(BenchError):
    """Another process is running in the same run folder."""


class RunLock:
    """``with RunLock(run_dir): ...`` holds the run folder for this process."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunFolderBusy(
                f"run folder {self.path.parent} is in use by another `bench run` ({holder}); wait for it to "
                "finish, or use another --out or name"
            ) from None
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on {info['host']}, since {info['since']}"
    except (ValueError, KeyError, OSError):
        return "holder unknown"
