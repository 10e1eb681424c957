"""Typed configs from YAML: dataclasses as the schema, every problem reported with its file, line and key.

Generic: nothing here knows a relight-bench key.  A schema is a tree of dataclasses whose fields carry
:func:`meta` (a help line and the checks ``minimum``, ``positive``, ``nonnegative``); :func:`load` reads YAML
text into it, applying ``--set`` overrides first, and raises one :class:`~relight_base.errors.ConfigError`
listing every problem found.  Schemas live with their owners: the benchmark's in ``bench.harness.config``,
the report's section in ``reports.settings``.

* :mod:`~relight_base.typed_config.yaml_source`: safe YAML, duplicate keys refused, the line of every key;
* :mod:`~relight_base.typed_config.convert`: the conversion, field by field;
* :mod:`~relight_base.typed_config.overrides`: ``--set dotted.key=value``;
* :mod:`~relight_base.typed_config.messages`: the words of every problem.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any, Callable, TypeVar

import yaml

from relight_base.errors import ConfigError
from relight_base.typed_config.convert import convert
from relight_base.typed_config.messages import Problems, default_of, kind_of, unknown
from relight_base.typed_config.overrides import apply_override
from relight_base.typed_config.yaml_source import (MAX_CONFIG_BYTES, check_size, read_yaml, read_yaml_data,
                                                   read_yaml_file)

__all__ = ["MAX_CONFIG_BYTES", "Problems", "apply_override", "check_size", "config_hash", "load", "meta",
           "read_yaml", "read_yaml_data", "read_yaml_file", "schema_help", "to_dict", "to_yaml", "unknown"]

T = TypeVar("T")


def meta(help: str, *, minimum: int | None = None, positive: bool = False,
         nonnegative: bool = False) -> dict[str, Any]:
    """A schema field's metadata: its ``help`` line (``config --keys``, missing-key messages) and the checks
    the converter applies: ``minimum`` for integers, ``positive`` / ``nonnegative`` for numbers."""
    checks: dict[str, Any] = {"help": help}
    if minimum is not None:
        checks["minimum"] = minimum
    if positive:
        checks["positive"] = True
    if nonnegative:
        checks["nonnegative"] = True
    return checks


def load(text: str, schema: type[T], source: str, overrides: typing.Iterable[str] = (),
         check: Callable[[T, Problems], None] | None = None) -> T:
    """YAML ``text`` as an instance of ``schema``, after ``overrides``; ``check`` adds problems spanning keys.

    Raises :class:`ConfigError` naming ``source`` and listing every problem (file, line, key, what was expected).
    """
    raw, lines = read_yaml(text, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        keys = ", ".join(f.name for f in dataclasses.fields(schema)[:4])
        raise ConfigError(f"{source}: the top level must be a mapping of keys ({keys}, ...), found {kind_of(raw)}")
    for item in overrides:
        apply_override(raw, item, schema)
    problems = Problems(source, lines)
    value = convert(raw, schema, (), problems)
    if not problems.found and check is not None:
        check(value, problems)
    if problems.found:
        count = len(problems.found)
        raise ConfigError(f"{source} has {count} problem{'s' if count > 1 else ''}:\n  " + "\n  ".join(problems.found))
    return value


def to_dict(cfg: Any) -> Any:
    """Plain-data (YAML/JSON-ready) form of a config object."""
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML, keys in schema order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)


def config_hash(cfg: Any) -> str:
    """A short stable hash of a config object (or any part of one)."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def schema_help(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, default, help)`` for every key of the schema ``cls``, for docs and ``--help``."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            rows.extend(schema_help(hint, key + "."))
            continue
        if typing.get_origin(hint) is list and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            rows.extend(schema_help(typing.get_args(hint)[0], key + "[]."))
            continue
        default = default_of(f)
        rows.append((key, "required" if default is dataclasses.MISSING else repr(default), f.metadata.get("help", "")))
    return rows
