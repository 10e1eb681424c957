"""What the harness does with an adapter's declared capabilities (:class:`models.capabilities.Capabilities`).

* tag ``global_residual``: the experiment must not set ``residual: true`` (the input would be added twice);
* ``guide``: fill the adapter's fixed guide from a training scene under ``data.target`` before training;
* ``auxiliary_terms``: extra loss terms of the last training forward, added with ``loss.adapter_terms``.

Everything is read from the registry entry or from :attr:`RelightingModel.capabilities`, never by looking for
methods on the module.
"""

from __future__ import annotations

import logging

import torch

from relight_base.errors import ConfigError
from bench.harness.config import BenchConfig, ExperimentConfig
from bench.harness.modeling import RelightingModel
from models.registry import get_entry

log = logging.getLogger(__name__)


def check_residual_switch(index: int, exp: ExperimentConfig) -> None:
    """A ``residual: true`` experiment of a model that adds its input back itself is a config error."""
    if exp.residual and get_entry(exp.model).capabilities.adds_input_back:
        raise ConfigError(
            f"experiments[{index}] ({exp.name}): model {exp.model!r} already adds its input back (a global residual "
            "of its own), so residual: true would add the input twice; set residual: false for it")


def model_tags(name: str) -> str:
    """The registry tags of model ``name``, comma-separated (a results column)."""
    return ",".join(get_entry(name).tags)


def uses_adapter_terms(cfg: BenchConfig, model: RelightingModel) -> bool:
    """Whether training adds the adapter's auxiliary terms (``loss.adapter_terms`` on, and the adapter has some)."""
    return bool(cfg.loss.adapter_terms) and model.capabilities.auxiliary_terms


def adapter_terms(model: RelightingModel, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The adapter's auxiliary terms of its last training forward against ``target: (B,3,H,W)`` in [0,1]."""
    return dict(model.adapter.auxiliary_terms(target)) if model.capabilities.auxiliary_terms else {}


def set_guide(model: RelightingModel, train_pairs, cfg: BenchConfig, exp: ExperimentConfig) -> str | None:
    """Fill an adapter's guide from the baseline pair of a training scene: its target image and its depth.

    The scene is ``model_args.guide_scene``, else the adapter's declared default scene when it is a training
    scene, else the first training scene (sorted).  Returns what was set (also added to ``model.notes``, for the
    ``weights`` column), or None for adapters without a guide.
    """
    guide = model.capabilities.guide
    if guide is None:
        return None
    scenes = sorted({p.scene_id for p in train_pairs.pairs if p.origin == "baseline"})
    wanted = exp.model_args.get("guide_scene")
    if wanted is not None and wanted not in scenes:
        raise ConfigError(f"experiments ({exp.name}): model_args.guide_scene {wanted!r} is not a training scene of "
                          f"this run (held-out scenes are not); training scenes: {', '.join(scenes)}")
    scene = wanted or (guide.default_scene if guide.default_scene in scenes else scenes[0])
    index = next(i for i, p in enumerate(train_pairs.pairs) if p.scene_id == scene and p.origin == "baseline")
    sample = train_pairs[index]
    model.adapter.set_guide(sample["target"], sample["depth"], cfg.data.input, cfg.data.target)
    described = f"guide: training scene {scene} under {cfg.data.target} (its target image and depth)"
    model.notes.append(described)
    log.info("experiment %s: %s", exp.name, described)
    return described
