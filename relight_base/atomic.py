"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

All files the harness writes go through these helpers: the data goes to a
temporary file in the destination folder (``.<name>.<random>.tmp``), is flushed and
fsynced, and is then renamed over the destination with :func:`os.replace` (atomic on
POSIX and Windows within one file system).  A full disk (or quota, or a read-only
file system) while writing is an :class:`OutputError` naming the file; the old file
is left as it was.  A process killed while writing leaves its temporary file behind:
:func:`remove_orphans` deletes those of a folder its caller holds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator

from relight_base.errors import OutputError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it to ``path``.

    If the body raises, the temporary file is removed and ``path`` is untouched.
    ``mode`` is ``"w"`` (text) or ``"wb"`` (binary).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}. Choose a writable output folder.") from exc
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp creates 0600; a published report must be readable
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if exc.errno in OUT_OF_SPACE:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}; free some space (or choose another --out) "
                              f"and run the same command again: finished work is kept") from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


OUT_OF_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}  # errors of the disk, not of the program
_TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{6,}\.tmp")  # what atomic_open names its temporary files


def remove_orphans(folder: str | os.PathLike, *, recursive: bool = False) -> int:
    """Delete the temporary files :func:`atomic_open` left in ``folder`` (its sub-folders too with ``recursive``)
    when a process was killed mid-write.  Returns how many.  Call it only while holding the lock of everything
    written there (a live writer's temporary file would be deleted under it)."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    found = folder.rglob("*.tmp") if recursive else folder.glob("*.tmp")
    removed = 0
    for path in found:
        if _TEMPORARY.fullmatch(path.name) and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(folder: str | os.PathLike) -> None:
    """Persist a rename by fsyncing its folder (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check that files can be written in it.

    Raises :class:`OutputError` naming the folder when it cannot be written.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"output folder {path} is not writable ({exc.strerror or exc}); pass --out with a folder you can write to"
        ) from None
    return path


def ensure_private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` readable and writable by this user only (0700), or check an existing one: it must belong to
    this user (a folder someone else made could hold files this process then trusts); its mode is narrowed to 0700.

    For folders whose files are loaded as code (submitit's pickled jobs).  Raises :class:`OutputError` naming it.
    """
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise OutputError(f"{path} belongs to another user (uid {info.st_uid}); its files would be loaded as code, "
                              "so it is not used: remove it, or choose another --out")
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)
    except OSError as exc:
        raise OutputError(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


def refuse_world_writable(path: str | os.PathLike) -> None:
    """An :class:`OutputError` when ``path`` (an existing folder) is writable by every user without the sticky bit:
    anyone could then replace the files this process reads back (checkpoints, results).  A group-writable folder
    (shared cluster storage) and a sticky one (``/tmp``) are fine."""
    info = Path(path).stat()
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        raise OutputError(f"{path} is writable by every user of this machine (mode {stat.S_IMODE(info.st_mode):o}, no "
                          "sticky bit), so others could plant files a run reads back; remove the world-write permission "
                          "(chmod o-w) or choose another --out")
