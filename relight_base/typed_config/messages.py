"""The words of every config problem: where it is (file and line), which key, what was found, what was expected."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

def unknown(what: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {what} {name!r}{hint} (known: {', '.join(known) or 'none'})"


def unknown_key(path: tuple, key: Any, known: list[str]) -> str:
    name = dotted(path + (key,))
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"; did you mean {dotted(path + (close[0],))!r}?" if close else ""
    return f"{name}: unknown key{hint} (allowed here: {', '.join(known)})"


def where(source: str, lines: dict, path: tuple) -> str:
    probe = tuple(path)
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe)
    return f"{source}:{line}: " if line else f"{source}: "


def dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def show(value: Any) -> str:
    return f"{value!r} ({kind_of(value)})"


def kind_of(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def describe(hint: Any) -> str:
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    origin = typing.get_origin(hint)
    if origin is list:
        item = describe(typing.get_args(hint)[0])
        return "a list of mappings" if item == "a mapping" else f"a list of {item}"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(hint, "a mapping" if origin is dict else str(hint))


def strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def allows_none(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType) and type(None) in typing.get_args(hint)


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


@dataclass
class Problems:
    """The problems found in one config, each naming the file, the line, the dotted key and what is wrong."""

    source: str  # the file name (or "<config>") messages start with
    lines: dict[tuple, int]  # key path -> 1-based line in the YAML text
    found: list[str] = field(default_factory=list)

    def add(self, path: tuple, text: str) -> None:
        """Record ``text`` (which names the key itself) at the line of ``path``."""
        self.found.append(f"{where(self.source, self.lines, path)}{text}")

    def expected(self, path: tuple, expected: str, value: Any) -> None:
        """Record that the value at ``path`` is not ``expected``."""
        self.add(path, f"{dotted(path)}: expected {expected}, got {show(value)}")

    def fresh(self) -> Problems:
        """An empty list for the same text: a trial conversion whose problems may be dropped."""
        return Problems(self.source, self.lines)

