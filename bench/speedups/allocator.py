"""Keep freed CPU memory in the process while models train and are timed, so page faults do not cost the kernel.

PyTorch on CPU allocates with the C library's ``malloc``.  glibc serves large blocks with ``mmap`` and hands
them back to the kernel on ``free``, so each forward pass of a big model (oneDNN's weight reorders and
scratch buffers run to hundreds of MB per MBNet pass) faults every page in again: measured on the 2-core
machine, MBNet at 128 px spent about half of a 0.35 s forward in the kernel (1.5 M minor page faults in
20 passes), and the time per pass varied with whatever else the machine did.  With glibc's mmap and trim
thresholds raised to 1 GiB the same passes took 0.17 s with no page fault, and an MBNet training step at 64 px, batch 3, 0.88 s instead
of 1.45 s (``docs/performance.md``).  The timing phase and the training loop run inside it.

:func:`steady_allocator` raises both thresholds for a block (glibc only, through ``mallopt``; elsewhere it
does nothing and says so), then sets them back to glibc's initial 128 KiB and returns the freed memory to
the kernel (``malloc_trim``).  CUDA memory is untouched (PyTorch's caching allocator already keeps it).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sys
from typing import Iterator

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1   # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
STEADY_BYTES = 1 << 30  # blocks up to 1 GiB come from (and go back to) the heap, not mmap
GLIBC_INITIAL_BYTES = 128 * 1024


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _set_thresholds(libc: ctypes.CDLL, nbytes: int) -> bool:
    """Set glibc's mmap and trim thresholds to ``nbytes``; True when both were accepted."""
    return bool(libc.mallopt(M_MMAP_THRESHOLD, nbytes)) and bool(libc.mallopt(M_TRIM_THRESHOLD, nbytes))


_depth = 0  # steady_allocator blocks open now; only the outermost sets and restores the thresholds


@contextlib.contextmanager
def steady_allocator() -> Iterator[str]:
    """Raise glibc's mmap/trim thresholds to 1 GiB for the block; yield a description of what was done.

    Blocks may nest: an inner one changes nothing and leaves the restoring to the outermost.
    """
    global _depth
    libc = _glibc()
    if libc is None:
        log.debug("the C library's allocator is left as it is (not glibc)")
        yield "system allocator unchanged (not glibc)"
        return
    if _depth == 0 and not _set_thresholds(libc, STEADY_BYTES):
        log.debug("the C library's allocator is left as it is (mallopt refused)")
        yield "system allocator unchanged (not glibc)"
        return
    _depth += 1
    try:
        yield "glibc malloc mmap and trim thresholds raised to 1 GiB during the phase (no page faults per pass)"
    finally:
        _depth -= 1
        if _depth == 0:
            _set_thresholds(libc, GLIBC_INITIAL_BYTES)
            libc.malloc_trim(0)
