"""What the harness does with an adapter's optional declarations (see :mod:`models.registry`).

* tag ``global_residual``: the experiment must not set ``residual: true`` (the input would be added twice);
* ``set_guide``: fill the adapter's fixed guide from a training scene under ``data.target`` before training;
* ``auxiliary_terms(target)``: extra loss terms of the last training forward, added with ``loss.adapter_terms``.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from relight_base.errors import ConfigError
from bench.harness.config import BenchConfig, ExperimentConfig
from models.registry import GLOBAL_RESIDUAL, get_entry

log = logging.getLogger(__name__)

DEFAULT_GUIDE_SCENE = "Image014"  # DeepBlueAI's Track 1 guide, used when it is a training scene


def check_residual_switch(index: int, exp: ExperimentConfig) -> None:
    """A ``residual: true`` experiment of a model that adds its input back itself is a config error."""
    if exp.residual and GLOBAL_RESIDUAL in get_entry(exp.model).tags:
        raise ConfigError(
            f"experiments[{index}] ({exp.name}): model {exp.model!r} already adds its input back (a global residual "
            "of its own), so residual: true would add the input twice; set residual: false for it")


def model_tags(name: str) -> str:
    """The registry tags of model ``name``, comma-separated (a results column)."""
    return ",".join(get_entry(name).tags)


def adapter_of(model: nn.Module) -> nn.Module:
    """The adapter inside the harness's wrappers (DDP's ``module``, :class:`RelightingModel`'s ``adapter``)."""
    model = getattr(model, "module", model)
    return getattr(model, "adapter", model)


def uses_adapter_terms(cfg: BenchConfig, model: nn.Module) -> bool:
    """Whether training adds the adapter's auxiliary terms (``loss.adapter_terms`` on, and the adapter has some)."""
    return bool(cfg.loss.adapter_terms) and callable(getattr(adapter_of(model), "auxiliary_terms", None))


def adapter_terms(model: nn.Module, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The adapter's auxiliary terms of its last training forward against ``target: (B,3,H,W)`` in [0,1]."""
    terms = getattr(adapter_of(model), "auxiliary_terms", None)
    return dict(terms(target)) if callable(terms) else {}


def set_guide(model: nn.Module, train_pairs, cfg: BenchConfig, exp: ExperimentConfig) -> str | None:
    """Fill an adapter's guide from the baseline pair of a training scene: its target image and its depth.

    The scene is ``model_args.guide_scene``, else :data:`DEFAULT_GUIDE_SCENE` when it is a training scene, else
    the first training scene (sorted).  Returns what was set (for the results), or None for adapters without one.
    """
    adapter = adapter_of(model)
    if not callable(getattr(adapter, "set_guide", None)):
        return None
    scenes = sorted({p.scene_id for p in train_pairs.pairs if p.origin == "baseline"})
    wanted = exp.model_args.get("guide_scene")
    if wanted is not None and wanted not in scenes:
        raise ConfigError(f"experiments ({exp.name}): model_args.guide_scene {wanted!r} is not a training scene of "
                          f"this run (held-out scenes are not); training scenes: {', '.join(scenes)}")
    scene = wanted or (DEFAULT_GUIDE_SCENE if DEFAULT_GUIDE_SCENE in scenes else scenes[0])
    index = next(i for i, p in enumerate(train_pairs.pairs) if p.scene_id == scene and p.origin == "baseline")
    sample = train_pairs[index]
    adapter.set_guide(sample["target"], sample["depth"], cfg.data.input, cfg.data.target)
    described = f"guide: training scene {scene} under {cfg.data.target} (its target image and depth)"
    info = list(getattr(adapter, "pretrained_info", None) or [])
    adapter.pretrained_info = [*info, described]
    log.info("experiment %s: %s", exp.name, described)
    return described
