"""The error base every layer raises its user-facing errors from.

Every mistake a user can make (a bad config key, a missing data folder, a corrupt
PNG, an unknown model name) is raised as a subclass of :class:`BenchError`.  The
CLI catches this one base and turns it into a one-paragraph message with exit
status 2; anything else is a bug.  Each layer owns its own subclasses:
``datasets.errors.DataError``, ``models.errors.RegistryError``, and the two
below, which every layer may raise.
"""

from __future__ import annotations


class BenchError(Exception):
    """An error caused by user input, with a message a person can act on."""


class ConfigError(BenchError):
    """A setting (a YAML key, a ``--set`` override, a factory or loader argument) is malformed."""


class OutputError(BenchError):
    """The output location cannot be written."""
