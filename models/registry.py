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

Beyond ``forward``, an adapter declares what else it offers (tags, auxiliary loss terms, a guide image,
pretrained-weight info, BatchNorm fold pairs, a time breakdown) in one typed place, the ``capabilities=`` of
its registration (:class:`models.capabilities.Capabilities`); the harness reads the declaration from the
entry, never by looking for methods on the module.
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

from models.capabilities import GLOBAL_RESIDUAL, KNOWN_TAGS, RELIGHTING, Capabilities, capabilities_of
from models.errors import RegistryError

log = logging.getLogger(__name__)

ModelFactory = Callable[..., nn.Module]


__all__ = ["GLOBAL_RESIDUAL", "KNOWN_TAGS", "RELIGHTING", "Capabilities", "ModelEntry", "adapter_capabilities",
           "check_model_args", "count_parameters", "create_model", "factory_accepts", "get_entry", "list_models",
           "load_plugins", "register_model"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered adapter factory and its capabilities.

    ``explicit``: registered with ``capabilities=``; otherwise ``capabilities`` holds only what the registration
    said (its tags, whether the factory takes ``pretrained``) and the rest is read off the built module
    (:func:`adapter_capabilities`).
    """

    name: str
    factory: ModelFactory
    description: str
    module: str
    capabilities: Capabilities = Capabilities()
    explicit: bool = True

    @property
    def tags(self) -> tuple[str, ...]:
        return self.capabilities.tags


_REGISTRY: dict[str, ModelEntry] = {}


def factory_accepts(factory: Any, name: str) -> bool:
    """Whether a model factory takes keyword argument ``name``."""
    params = inspect.signature(factory).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _declaration(name: str | None, factory: ModelFactory, tags: tuple[str, ...] | list[str],
                 capabilities: Capabilities | None) -> tuple[Capabilities, bool]:
    """The entry's capabilities and whether they were declared (``capabilities=``) or are provisional (tags only)."""
    try:
        if capabilities is None:
            return Capabilities(tags=tuple(tags), pretrained=factory_accepts(factory, "pretrained")), False
    except RegistryError as exc:
        raise RegistryError(f"register_model({name!r}): {exc}") from None
    if tags and tuple(tags) != capabilities.tags:
        raise RegistryError(f"register_model({name!r}): give the tags once, in capabilities=Capabilities(tags=...)")
    if capabilities.pretrained and not factory_accepts(factory, "pretrained"):
        raise RegistryError(f"register_model({name!r}): capabilities declare pretrained, but the factory takes no "
                            "`pretrained` argument")
    return capabilities, True


def register_model(name: str | None = None, *, description: str | None = None,
                   tags: tuple[str, ...] | list[str] = (),
                   capabilities: Capabilities | None = None) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory`` under ``name`` (default: the function's name).

    The description defaults to the first line of the factory's docstring.  ``capabilities`` declares what the
    adapter offers beyond ``forward`` (:mod:`models.capabilities`); ``tags`` alone (among :data:`KNOWN_TAGS`)
    is the short form for an adapter that declares nothing else.  Registering a different factory under a
    taken name is an error.
    """

    def decorate(factory: ModelFactory) -> ModelFactory:
        key = name or factory.__name__
        doc = description or (inspect.getdoc(factory) or "").strip().splitlines()[:1]
        text = doc if isinstance(doc, str) else (doc[0] if doc else "")
        declared, explicit = _declaration(key, factory, tags, capabilities)
        entry = ModelEntry(key, factory, text, factory.__module__, declared, explicit)
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


def adapter_capabilities(name: str, adapter: nn.Module) -> Capabilities:
    """The capabilities of ``adapter``, built by model ``name``: its declaration, checked against the module
    (a :class:`RegistryError` when they disagree); for a model registered without one, inferred from the module."""
    entry = get_entry(name)
    return capabilities_of(name, entry.capabilities, adapter, explicit=entry.explicit)


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
