"""What an adapter may declare beyond ``forward(rgb, depth)``, in one typed place.

An adapter declares its capabilities where it registers::

    @register_model("dfusenet", capabilities=Capabilities(
        tags=(RELIGHTING,), auxiliary_terms=True, guide=Guide(default_scene="Image014")))

and the harness, the perf suite and ``bench models`` read :class:`Capabilities` from the registry entry; none
of them looks for methods or attributes on the module.  What each field promises:

* ``tags``: :data:`RELIGHTING` (a network built for relighting: its rows join Table 4) and
  :data:`GLOBAL_RESIDUAL` (it adds its input back itself, so the harness's ``residual: true`` is refused); the
  names are part of the results contract (:mod:`relight_base.results`), whose ``model_tags`` column carries them;
* ``auxiliary_terms``: the module has ``auxiliary_terms(target) -> dict[str, Tensor]``, the extra loss terms of
  its last training forward (added only with ``loss.adapter_terms: true``);
* ``guide``: the module has ``set_guide(rgb, depth, input_condition, guide_condition)``, a fixed guide image the
  harness fills from a training scene before training (:class:`Guide` names the scene it prefers);
* ``pretrained``: the factory takes ``pretrained`` (``weights.backbone``) and the module lists what it loaded
  in ``pretrained_info: list[str]``;
* ``fold_pairs``: ``{submodule class: ((conv, bn), ...)}``, attribute pairs whose BatchNorm directly follows
  its convolution, so ``bench.prepare_for_inference`` may fold it;
* ``time_breakdown``: ``{child-name prefix: label}``, how ``bench perf`` groups the module's children.

:func:`check_adapter` checks a built module against its declaration (the registry's contract tests run it for
every model), so a declaration cannot promise a method the module lacks, nor miss one it has.

Adapters registered without ``capabilities=`` (plugins written before it existed) still work:
:func:`capabilities_of` infers their declaration once from the module they build, with a warning saying
how to declare it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Mapping

from torch import nn

from relight_base.results import GLOBAL_RESIDUAL, MODEL_TAGS, RELIGHTING
from models.errors import RegistryError

log = logging.getLogger(__name__)

KNOWN_TAGS = MODEL_TAGS
AUXILIARY_TERMS_METHOD, GUIDE_METHOD, PRETRAINED_ATTRIBUTE = "auxiliary_terms", "set_guide", "pretrained_info"
FoldPairs = Mapping[type, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Guide:
    """A fixed guide image the harness fills before training (DFuseNet's one-to-one Track 1 model).

    ``default_scene`` is used when it is a training scene of the run (else the first training scene, sorted);
    an experiment's ``model_args: {guide_scene: ...}`` overrides both.
    """

    default_scene: str | None = None


@dataclass(frozen=True)
class Capabilities:
    """An adapter's declaration (see the module docstring); the default declares nothing beyond ``forward``."""

    tags: tuple[str, ...] = ()
    auxiliary_terms: bool = False
    guide: Guide | None = None
    pretrained: bool = False
    fold_pairs: FoldPairs = field(default_factory=dict)
    time_breakdown: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [t for t in self.tags if t not in KNOWN_TAGS]
        if unknown:
            raise RegistryError(f"unknown tags {unknown}; known: {', '.join(KNOWN_TAGS)}")
        object.__setattr__(self, "tags", tuple(self.tags))

    @property
    def is_relighting(self) -> bool:
        return RELIGHTING in self.tags

    @property
    def adds_input_back(self) -> bool:
        return GLOBAL_RESIDUAL in self.tags

    def describe(self) -> str:
        """One short line for ``bench models``: what is declared besides the tags (``-`` for nothing)."""
        parts = []
        if self.auxiliary_terms:
            parts.append("auxiliary loss terms")
        if self.guide is not None:
            parts.append(f"guide ({self.guide.default_scene or 'first training scene'})")
        if self.pretrained:
            parts.append("pretrained backbone")
        if self.fold_pairs:
            parts.append("BatchNorm fold pairs")
        if self.time_breakdown:
            parts.append("time breakdown")
        return ", ".join(parts) or "-"


def check_adapter(name: str, declared: Capabilities, adapter: nn.Module) -> None:
    """Raise :class:`RegistryError` when ``adapter`` (built by model ``name``) and its declaration disagree."""
    problems = []
    for flag, attribute in ((declared.auxiliary_terms, AUXILIARY_TERMS_METHOD),
                            (declared.guide is not None, GUIDE_METHOD)):
        has = callable(getattr(adapter, attribute, None))
        if flag and not has:
            problems.append(f"declares {attribute} but the module has no {attribute}() method")
        if has and not flag:
            problems.append(f"has a {attribute}() method but does not declare it")
    info = getattr(adapter, PRETRAINED_ATTRIBUTE, None)
    if declared.pretrained and not isinstance(info, list):
        problems.append(f"declares pretrained but the module has no {PRETRAINED_ATTRIBUTE} list")
    if info is not None and not declared.pretrained:
        problems.append(f"has {PRETRAINED_ATTRIBUTE} but does not declare pretrained (it would never be reported)")
    children = {child_name for child_name, _ in adapter.named_children()}
    for prefix in declared.time_breakdown:
        if not any(child.startswith(prefix) for child in children):
            problems.append(f"time_breakdown prefix {prefix!r} matches no child module")
    classes = {type(module) for module in adapter.modules()}
    for cls, pairs in declared.fold_pairs.items():
        if cls not in classes:
            problems.append(f"fold_pairs names {cls.__name__}, which the module does not contain")
    if problems:
        raise RegistryError(f"model {name!r}: its capabilities declaration and its module disagree: "
                            + "; ".join(problems) + " (see models/capabilities.py)")


def infer_capabilities(adapter: nn.Module, provisional: Capabilities) -> Capabilities:
    """The declaration of an adapter registered without one, read off the module it built.

    Only for adapters registered before ``capabilities=`` existed, whose methods and attributes were their
    declaration.  ``provisional`` holds what the registration said: the tags, and whether the factory takes
    ``pretrained``.
    """
    fold_pairs = {type(module): tuple(type(module).fold_pairs) for module in adapter.modules()
                  if getattr(type(module), "fold_pairs", None)}
    return replace(
        provisional,
        auxiliary_terms=callable(getattr(adapter, AUXILIARY_TERMS_METHOD, None)),
        guide=Guide() if callable(getattr(adapter, GUIDE_METHOD, None)) else None,
        pretrained=getattr(adapter, PRETRAINED_ATTRIBUTE, None) is not None,
        fold_pairs=fold_pairs,
        time_breakdown=dict(getattr(adapter, "time_breakdown", None) or {}),
    )


_INFERRED_WARNED: set[str] = set()


def capabilities_of(name: str, declared: Capabilities, adapter: nn.Module, *, explicit: bool) -> Capabilities:
    """The capabilities of model ``name``'s built ``adapter``.

    ``explicit``: the model was registered with ``capabilities=`` (``declared``); it is checked against the
    module.  Otherwise ``declared`` is provisional (its tags) and the rest is inferred from the module, with a
    warning (once per model) when the module provides more than ``forward`` and ``pretrained_info``.
    """
    if explicit:
        check_adapter(name, declared, adapter)
        return declared
    inferred = infer_capabilities(adapter, declared)
    extra = replace(inferred, pretrained=False, tags=()) != Capabilities()
    if extra and name not in _INFERRED_WARNED:
        _INFERRED_WARNED.add(name)
        log.warning("model %s: registered without capabilities=; using what its module provides (%s). Declare it "
                    "with register_model(..., capabilities=Capabilities(...)) (docs/adding_a_model.md)",
                    name, inferred.describe())
    return inferred
