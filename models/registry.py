"""The model registry: adapters register a factory under a name; the harness builds them by name.

An adapter is an ``nn.Module`` whose ``forward(rgb, depth)`` takes
``rgb: (B,3,H,W) float in [0,1]`` and ``depth: (B,1,H,W) float`` and returns
``(B,3,H,W)``: the relit image, or the residual map when the experiment sets
``residual: true`` (the harness then outputs ``relu(rgb + map)``).

A factory is registered with one decorator::

    @register_model("mynet")
    def mynet(width: int = 64) -> nn.Module:
        \"\"\"One-line description shown by `python -m bench models`.\"\"\"
        return MyNet(width)

Built-in adapters (modules of the ``models`` package) import the decorator from
here; code outside this repository uses the public re-export,
``from bench import register_model``.  A decorator runs when its module is
imported: ``models/__init__.py`` imports every built-in adapter module from an
explicit list (no folder scanning), and importing this module runs it first, so
the built-ins are registered before any lookup.  Adapters outside the package are
imported by :func:`load_plugins` (the ``plugins:`` config key).

``tags`` say what kind of network an adapter is, for the harness and the report:

* ``relighting``: a network built for relighting (MBNet, IAN, DFuseNet); its rows join Table 4;
* ``global_residual``: the network adds its input back itself, so the harness's ``residual: true`` (which would
  add it a second time) is refused for it.

Adapters may also declare, as methods of the module the factory returns:

* ``auxiliary_terms(target) -> dict[str, Tensor]``: extra loss terms from its last training forward (deep
  supervision, auxiliary heads), added to the harness's loss only with ``loss.adapter_terms: true``;
* ``set_guide(rgb, depth, input_condition, guide_condition)``: a fixed guide image the harness fills from a
  training scene under the target lighting (``model_args: {guide_scene: ...}`` chooses it).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn

from models.errors import RegistryError

log = logging.getLogger(__name__)

ModelFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered adapter factory."""

    name: str
    factory: ModelFactory
    description: str
    module: str
    tags: tuple[str, ...] = ()


_REGISTRY: dict[str, ModelEntry] = {}
RELIGHTING, GLOBAL_RESIDUAL = "relighting", "global_residual"
KNOWN_TAGS = (RELIGHTING, GLOBAL_RESIDUAL)


def register_model(name: str | None = None, *, description: str | None = None,
                   tags: tuple[str, ...] | list[str] = ()) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory`` under ``name`` (default: the function's name).

    The description defaults to the first line of the factory's docstring; ``tags`` are among
    :data:`KNOWN_TAGS` (see the module docstring).  Registering a different factory under a taken name is an error.
    """
    unknown = [t for t in tags if t not in KNOWN_TAGS]
    if unknown:
        raise RegistryError(f"register_model({name!r}): unknown tags {unknown}; known: {', '.join(KNOWN_TAGS)}")

    def decorate(factory: ModelFactory) -> ModelFactory:
        key = name or factory.__name__
        doc = description or (inspect.getdoc(factory) or "").strip().splitlines()[:1]
        text = doc if isinstance(doc, str) else (doc[0] if doc else "")
        entry = ModelEntry(key, factory, text, factory.__module__, tuple(tags))
        old = _REGISTRY.get(key)
        if old is not None and (old.module, old.factory.__qualname__) != (entry.module, factory.__qualname__):
            raise RegistryError(
                f"model name {key!r} is already registered by {old.module}.{old.factory.__qualname__}; "
                f"choose another name for {entry.module}.{factory.__qualname__}"
            )
        _REGISTRY[key] = entry
        return factory

    return decorate


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; unknown names list the known ones and the closest matches."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise RegistryError(
            f"unknown model {name!r}.{hint} Registered models: {', '.join(known)}. "
            "Models defined outside this repository must be listed under `plugins:` in the config."
        ) from None


def check_model_args(name: str, kwargs: dict[str, Any]) -> None:
    """Raise :class:`RegistryError` if the factory of ``name`` cannot take ``kwargs``."""
    entry = get_entry(name)
    signature = inspect.signature(entry.factory)
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        accepted = [p for p in signature.parameters if p not in ("self",)]
        raise RegistryError(
            f"model {name!r} does not accept arguments {sorted(kwargs)}: {exc}. "
            f"Accepted: {', '.join(accepted) or 'none'}"
        ) from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the plain, trainable adapter registered as ``name`` with factory arguments ``kwargs``."""
    check_model_args(name, kwargs)
    model = get_entry(name).factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise RegistryError(f"the factory of model {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def count_parameters(model_or_name: nn.Module | str, **kwargs: Any) -> int:
    """Number of parameters; a model name is built on the meta device (no memory, no init cost)."""
    if isinstance(model_or_name, str):
        with torch.device("meta"):
            model = create_model(model_or_name, **kwargs)
    else:
        model = model_or_name
    return sum(p.numel() for p in model.parameters())


def load_plugins(modules: Iterable[str]) -> list[str]:
    """Import user modules by name so their ``@register_model`` decorators run.

    Returns the modules imported.  A module that fails to import is reported
    with its error (never skipped silently).
    """
    loaded = []
    for module in modules:
        if not isinstance(module, str) or not module.replace(".", "").replace("_", "").isalnum():
            raise RegistryError(f"plugins: {module!r} is not a Python module name such as my_models.unet")
        before = set(_REGISTRY)
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                raise RegistryError(
                    f"plugins: cannot import {module!r}: no module named {exc.name!r}. "
                    "Check the name and that its folder is on PYTHONPATH (the current directory is)."
                ) from None
            raise RegistryError(_plugin_failure(module, exc)) from None
        except Exception as exc:  # a plugin's own bug: report it, with where it happened
            raise RegistryError(_plugin_failure(module, exc)) from None
        added = sorted(set(_REGISTRY) - before)
        log.info("plugin %s imported; it registered %s", module, ", ".join(added) or "no new models")
        loaded.append(module)
    return loaded


def _plugin_failure(module: str, exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"plugins: importing {module!r} failed with {type(exc).__name__}: {exc}{where}"
