"""relight-bench: train, evaluate and compare RGB-D fusion networks on depth-guided image relighting.

The public plugin API is re-exported here, so ``from bench import register_model``
keeps working wherever the registry lives (``models.registry``).  The names are
resolved on first use, so ``python -m bench --help`` does not import the adapters.

Layers, bottom to top (docs/architecture.md): ``relight_base`` < ``datasets``,
``models`` < ``reports`` < ``bench``; inside ``bench``: ``bench.speedups`` < ``bench.harness`` <
``bench.perf``, ``bench.launch`` < ``bench.cli``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Capabilities": "models.capabilities",
    "Guide": "models.capabilities",
    "register_model": "models.registry",
    "create_model": "models.registry",
    "list_models": "models.registry",
    "load_plugins": "models.registry",
    "count_parameters": "models.registry",
    "prepare_for_inference": "bench.speedups.fast_inference",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
