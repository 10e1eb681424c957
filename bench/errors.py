"""User-facing error types.

Every mistake a user can make (a bad config key, a missing data folder, a corrupt
PNG, an unknown model name) is raised as a :class:`BenchError`.  The CLI turns
these into a one-paragraph message and exit status 2; anything else is a bug.
"""

from __future__ import annotations


class BenchError(Exception):
    """An error caused by user input, with a message a person can act on."""


class ConfigError(BenchError):
    """The YAML config or a ``--set`` override is malformed."""


class RegistryError(BenchError):
    """An unknown model name, a failing plugin import or bad model arguments."""


class DataError(BenchError):
    """A dataset folder, image or depth file is missing or malformed."""


class OutputError(BenchError):
    """The output location cannot be written."""
