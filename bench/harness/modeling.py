"""From an experiment's config to a trainable model: the adapter plus the residual-learning switch."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from bench.harness.config import ExperimentConfig, WeightsConfig
from models.registry import create_model, get_entry


class RelightingModel(nn.Module):
    """An adapter with the harness's residual switch (paper, Table 1 row 3).

    ``forward(rgb, depth)``: rgb ``(B,3,H,W)`` in [0,1], depth ``(B,1,H,W)``; returns ``(B,3,H,W)``:
    ``relu(rgb + adapter(rgb, depth))`` with ``residual=True`` (as the official MBNet code),
    otherwise ``adapter(rgb, depth)`` itself.
    """

    def __init__(self, adapter: nn.Module, residual: bool = False):
        super().__init__()
        self.adapter = adapter
        self.residual = residual

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        out = self.adapter(rgb, depth)
        return torch.relu(rgb + out) if self.residual else out


def accepts(factory: Any, name: str) -> bool:
    """Whether a model factory takes keyword argument ``name``."""
    params = inspect.signature(factory).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def build_model(exp: ExperimentConfig, weights: WeightsConfig) -> RelightingModel:
    """Create the experiment's adapter (passing ``pretrained`` to factories that take it) and wrap it."""
    kwargs = dict(exp.model_args)
    if "pretrained" not in kwargs and accepts(get_entry(exp.model).factory, "pretrained"):
        kwargs["pretrained"] = weights.backbone
    adapter = create_model(exp.model, **kwargs)
    return RelightingModel(adapter, residual=exp.residual)


def backbone_weights(model: nn.Module) -> str:
    """What pretrained weights the adapter loaded, as adapters report it in ``pretrained_info``."""
    adapter = model.adapter if isinstance(model, RelightingModel) else model
    info = getattr(adapter, "pretrained_info", None)
    if not info:
        return "none (no pretrained backbone)"
    return "; ".join(info) if isinstance(info, (list, tuple)) else str(info)


def has_trainable_parameters(model: nn.Module) -> bool:
    return any(p.requires_grad for p in model.parameters())
