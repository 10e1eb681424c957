"""Reading a config's YAML: safe loading, duplicate keys refused, and the line of every key for messages.

A config is data, and reading one must stay cheap whoever wrote it: the text is capped at
:data:`MAX_CONFIG_BYTES`, and YAML anchors and aliases (``&name`` / ``*name``) are refused before anything is
built, so a small file cannot expand into an exponential structure (an "alias bomb": nested aliases that grow a
few hundred bytes into millions of entries for every walk over the data).  None of the project's configs need
them.  With no aliases the document is a tree, and indexing its key lines is linear in its size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from relight_base.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: the largest config read (ours are a few KiB)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a common, silent YAML mistake)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def check_size(size: int, source: str) -> None:
    """A :class:`ConfigError` naming ``source`` when a config of ``size`` bytes is over :data:`MAX_CONFIG_BYTES`."""
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: {size} bytes is too large for a config (at most {MAX_CONFIG_BYTES} bytes)")


def _refuse_aliases(text: str, source: str) -> None:
    """A :class:`ConfigError` at the line of the first anchor or alias in ``text`` (checked on parse events,
    before any node is built)."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            mark = event.start_mark
            raise ConfigError(f"{source}:{mark.line + 1}:{mark.column + 1}: YAML anchors and aliases (&name, *name) "
                              "are not accepted in a config; write the value out where it is used")


def read_yaml(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML, returning the data and a map from key path to 1-based line number.

    Refuses text over :data:`MAX_CONFIG_BYTES`, anchors and aliases, duplicate keys and syntax errors, each with a
    :class:`ConfigError` naming ``source`` (and the line where there is one).
    """
    check_size(len(text.encode("utf-8", errors="replace")), source)
    try:
        _refuse_aliases(text, source)
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or str(exc)
        context = f" ({exc.context})" if exc.context else ""
        raise ConfigError(f"{where}: YAML syntax error: {problem}{context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML syntax error: {exc}") from None
    lines: dict[tuple, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def read_yaml_data(text: str, source: str) -> Any:
    """The data of a YAML document read as :func:`read_yaml` reads a config (size cap, no aliases, no duplicates),
    for YAML files a run folder stores (its ``config.yaml``) that are read as plain data."""
    return read_yaml(text, source)[0]


def read_yaml_file(path: Path) -> Any:
    """The data of the YAML file at ``path``, read as :func:`read_yaml_data` reads text: its size checked before
    it is read, UTF-8, no aliases, no duplicate keys.

    Raises:
        ConfigError: naming ``path``, for an oversized file, a file that cannot be read (missing, unreadable, not
            UTF-8) or one that is not YAML.
    """
    path = Path(path)
    try:
        check_size(path.stat().st_size, str(path))
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    return read_yaml_data(text, str(path))


def _index_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = path + (key_node.value,)
            lines[sub] = key_node.start_mark.line + 1
            _index_lines(value_node, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), lines)

