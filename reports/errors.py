"""The reporter's one error: run folders (or extra score files) that cannot be reported."""

from __future__ import annotations

from relight_base.errors import BenchError


class ReportError(BenchError):
    """Run folders that cannot be reported (missing files, not comparable) or a malformed ``--extra`` file."""
