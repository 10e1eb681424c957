"""The dataset layer's error type."""

from __future__ import annotations

from relight_base.errors import BenchError


class DataError(BenchError):
    """A dataset folder, image or depth file is missing or malformed."""
