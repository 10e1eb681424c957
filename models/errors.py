"""The model layer's error type."""

from __future__ import annotations

from relight_base.errors import BenchError


class RegistryError(BenchError):
    """An unknown model name, a failing plugin import or bad model arguments."""
