"""``--set dotted.key=value``: one override applied to the raw YAML data, its key checked against the schema."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import yaml

from relight_base.errors import ConfigError
from relight_base.typed_config.messages import allows_none, strip_optional, unknown, unknown_key


def apply_override(raw: dict, item: str, schema: type) -> None:
    """Apply one ``dotted.key=value`` to the raw YAML data, checking the key against ``schema`` (a dataclass).

    The value is YAML typed by the schema (raw text for string keys); list entries are named by index or by
    their ``name`` (``experiments.mbnet.residual``).
    """
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, for example --set train.steps=10")
    key, _, text = item.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"--set {item!r}: {key!r} is not a dotted key such as data.size")
    node: Any = raw
    hint: Any = schema
    walked: list[str] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        hint = strip_optional(hint)
        if dataclasses.is_dataclass(hint):
            names = [f.name for f in dataclasses.fields(hint)]
            if part not in names:
                raise ConfigError(f"--set {item!r}: " + unknown_key(tuple(walked), part, names))
            child_hint = typing.get_type_hints(hint)[part]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(walked)} is not a mapping in the config")
            if last:
                node[part] = _parse_value(text, child_hint)
                return
            if node.get(part) is None:
                node[part] = [] if typing.get_origin(strip_optional(child_hint)) is list else {}
            node, hint = node[part], child_hint
        elif typing.get_origin(hint) is list:
            if not isinstance(node, list):
                raise ConfigError(f"--set {item!r}: {'.'.join(walked)} is not a list in the config")
            index = _list_index(node, part, item, ".".join(walked))
            item_hint = typing.get_args(hint)[0]
            if last:
                node[index] = _parse_value(text, item_hint)
                return
            node, hint = node[index], item_hint
        elif typing.get_origin(hint) is dict:
            if last:
                node[part] = yaml.safe_load(text) if text.strip() else None
                return
            node = node.setdefault(part, {})
            hint = dict[str, Any]
        else:
            raise ConfigError(f"--set {item!r}: {'.'.join(walked)} has no sub-keys")
        walked.append(part)


def _list_index(node: list, part: str, item: str, where: str) -> int:
    if part.isdigit():
        index = int(part)
        if index >= len(node):
            raise ConfigError(f"--set {item!r}: {where} has {len(node)} entries, no index {index}")
        return index
    names = [e.get("name") for e in node if isinstance(e, dict)]
    if part in names:
        return names.index(part)
    raise ConfigError(f"--set {item!r}: " + unknown(f"entry of {where}", part, [n for n in names if n]))


def _parse_value(text: str, hint: Any) -> Any:
    """A ``--set`` value: raw text for string keys, YAML for everything else."""
    if strip_optional(hint) is str:
        return None if text.strip() in ("null", "~") and allows_none(hint) else text
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set value {text!r} is not valid YAML: {exc}") from None


