"""Renaming the keys of an official checkpoint to an adapter's module names, by a table of regex rules.

Each adapter that can load its authors' released weights keeps its own table next
to the network; this module applies one.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping, Union

import torch

# a replacement is a ``re.sub`` template (``r"branch\1."``) or a function of the match
Replacement = Union[str, Callable[[re.Match[str]], str]]
RenameRule = tuple[Union[str, re.Pattern[str]], Replacement]


def rename_keys(
    state_dict: Mapping[str, torch.Tensor], rules: Mapping[str, Replacement] | Iterable[RenameRule]
) -> dict[str, torch.Tensor]:
    """A copy of ``state_dict`` with every key renamed; the tensors themselves are not copied.

    A key first loses a leading ``module.`` (the prefix ``nn.DataParallel`` adds), then
    every rule is applied in table order, each to the result of the previous ones
    (``pattern.sub(replacement, key)``; a rule that does not match leaves the key as it is).
    ``rules`` is a mapping {pattern: replacement} or a sequence of (pattern, replacement) pairs.
    """
    pairs = rules.items() if isinstance(rules, Mapping) else rules
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in pairs]
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = key.removeprefix("module.")
        for pattern, replacement in compiled:
            new = pattern.sub(replacement, new)
        renamed[new] = value
    return renamed
