"""Converting YAML data to typed dataclasses, field by field, collecting every problem instead of stopping.

Each schema field's type picks a converter (:data:`CONVERTERS`); its metadata (:func:`relight_base.typed_config.meta`)
adds the checks ``minimum``, ``positive`` and ``nonnegative``.  A value that does not convert records a problem
naming its key and line and becomes None, so one pass reports every mistake in a file.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Callable, Literal, Union

from relight_base.typed_config.messages import (Problems, default_of, describe, dotted, show, unknown_key)

def convert(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict | None = None) -> Any:
    """Convert ``value`` to ``hint``; on failure record the problem and return None.

    ``meta`` is the schema field's metadata (the checks of :func:`meta`).
    """
    if dataclasses.is_dataclass(hint):
        return convert_dataclass(value, hint, path, problems)
    converter = CONVERTERS.get(typing.get_origin(hint) or hint)
    if converter is None:
        raise TypeError(f"unsupported schema type {hint!r} at {dotted(path)}")  # a bug in the schema, not user input
    return converter(value, hint, path, problems, meta or {})


def _convert_union(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict) -> Any:
    """The first option of ``Union[...]``/``Optional[...]`` that ``value`` converts to without a problem."""
    options = typing.get_args(hint)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        trial = problems.fresh()
        result = convert(value, option, path, trial, meta)
        if not trial.found:
            return result
    problems.expected(path, " or ".join(describe(o) for o in options), value)
    return None


def _convert_literal(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict) -> Any:
    choices = typing.get_args(hint)
    if value in choices:
        return value
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    hint_text = f"; did you mean {close[0]!r}?" if close else ""
    problems.add(path, f"{dotted(path)}: expected one of {', '.join(map(repr, choices))}, got {show(value)}{hint_text}")
    return None


def _convert_list(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict) -> Any:
    (item_type,) = typing.get_args(hint)
    if not isinstance(value, list):
        problems.expected(path, describe(hint), value)
        return None
    return [convert(v, item_type, path + (i,), problems) for i, v in enumerate(value)]


def _convert_dict(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict) -> Any:
    if not isinstance(value, dict):
        problems.expected(path, "a mapping", value)
        return None
    return dict(value)


def _convert_any(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict) -> Any:
    return value


def _convert_bool(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict) -> Any:
    if isinstance(value, bool):
        return value
    problems.expected(path, "true or false", value)
    return None


def _convert_int(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict) -> Any:
    """An integer (not a boolean), at least ``meta["minimum"]`` when the schema sets one."""
    at_least = f" >= {meta['minimum']}" if "minimum" in meta else ""
    if not isinstance(value, int) or isinstance(value, bool):
        problems.expected(path, "an integer" + at_least, value)
        return None
    if "minimum" in meta and value < meta["minimum"]:
        problems.expected(path, "an integer" + at_least, value)
        return None
    return value


def _convert_float(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict) -> Any:
    """A number as float, checked against ``meta["positive"]``/``meta["nonnegative"]`` when the schema sets them."""
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string; accept what float() reads
        try:
            value = float(value)
        except ValueError:
            pass
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        problems.expected(path, "a number", value)
        return None
    if meta.get("positive") and not value > 0:
        problems.expected(path, "a number > 0", value)
        return None
    if meta.get("nonnegative") and value < 0:
        problems.expected(path, "a number >= 0", value)
        return None
    return float(value)


def _convert_str(value: Any, hint: Any, path: tuple, problems: Problems, meta: dict) -> Any:
    if isinstance(value, str):
        return value
    problems.expected(path, "a string", value)
    return None


# typing origin (or the plain type) -> its converter; dataclasses are converted field by field
CONVERTERS: dict[Any, Callable[[Any, Any, tuple, Problems, dict], Any]] = {
    Union: _convert_union,
    types.UnionType: _convert_union,
    Literal: _convert_literal,
    list: _convert_list,
    dict: _convert_dict,
    Any: _convert_any,
    bool: _convert_bool,
    int: _convert_int,
    float: _convert_float,
    str: _convert_str,
}


def convert_dataclass(value: Any, cls: type, path: tuple, problems: Problems) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.add(path, f"{dotted(path) or 'top level'}: expected a mapping of keys, got {show(value)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    before = len(problems.found)
    for key in value:
        if key not in fields:
            problems.add(path + (key,), unknown_key(path, key, list(fields)))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = convert(value[name], hints[name], path + (name,), problems, dict(f.metadata))
        elif default_of(f) is dataclasses.MISSING:
            problems.add(path, f"{dotted(path + (name,))}: required key is missing ({f.metadata.get('help', '')})")
    if len(problems.found) > before:
        return None
    return cls(**kwargs)

