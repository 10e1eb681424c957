"""From an experiment's config to a trainable model: the adapter, its capabilities and the residual switch."""

from __future__ import annotations

import logging

import torch
from torch import nn

from bench.harness.config import BenchConfig, ExperimentConfig, WeightsConfig
from bench.speedups.fast_inference import prepare_for_inference
from models.capabilities import Capabilities
from models.registry import adapter_capabilities, create_model, get_entry

log = logging.getLogger(__name__)

NO_PRETRAINED = "none (no pretrained backbone)"


class RelightingModel(nn.Module):
    """An adapter with the harness's residual switch (paper, Table 1 row 3) and its declared capabilities.

    ``forward(rgb, depth)``: rgb ``(B,3,H,W)`` in [0,1], depth ``(B,1,H,W)``; returns ``(B,3,H,W)``:
    ``relu(rgb + adapter(rgb, depth))`` with ``residual=True`` (as the official MBNet code),
    otherwise ``adapter(rgb, depth)`` itself.  ``capabilities`` is the adapter's declaration
    (:class:`models.capabilities.Capabilities`); ``notes`` what the harness set in it besides its weights
    (a guide image), for the ``weights`` column.
    """

    def __init__(self, adapter: nn.Module, residual: bool = False, capabilities: Capabilities | None = None):
        super().__init__()
        self.adapter = adapter
        self.residual = residual
        self.capabilities = capabilities or Capabilities()
        self.notes: list[str] = []

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        out = self.adapter(rgb, depth)
        return torch.relu(rgb + out) if self.residual else out


def build_model(exp: ExperimentConfig, weights: WeightsConfig) -> RelightingModel:
    """Create the experiment's adapter (passing ``weights.backbone`` as ``pretrained`` to adapters that declare
    it), check it against its declared capabilities, and wrap it."""
    kwargs = dict(exp.model_args)
    if "pretrained" not in kwargs and get_entry(exp.model).capabilities.pretrained:
        kwargs["pretrained"] = weights.backbone
    adapter = create_model(exp.model, **kwargs)
    return RelightingModel(adapter, residual=exp.residual, capabilities=adapter_capabilities(exp.model, adapter))


def backbone_weights(model: RelightingModel) -> str:
    """What pretrained weights the adapter loaded (its ``pretrained_info``) and what the harness set in it."""
    info = model.adapter.pretrained_info if model.capabilities.pretrained else None
    loaded = [str(info)] if isinstance(info, str) else list(info or [])
    return "; ".join((loaded or [NO_PRETRAINED]) + model.notes)


def inference_model(model: RelightingModel, **options) -> nn.Module:
    """``bench.prepare_for_inference`` of ``model`` with the BatchNorm pairs its adapter declares foldable.

    ``options``: ``autocast`` and ``compile`` (see :func:`inference_options`).
    """
    return prepare_for_inference(model, fold_pairs=model.capabilities.fold_pairs, **options)


def has_trainable_parameters(model: nn.Module) -> bool:
    return any(p.requires_grad for p in model.parameters())


def inference_options(cfg: BenchConfig, device: torch.device) -> dict:
    """``prepare_for_inference`` switches from ``eval.autocast`` / ``eval.compile`` (autocast only on CUDA)."""
    autocast = cfg.eval.autocast
    if autocast != "off" and device.type != "cuda":
        log.warning("eval.autocast=%s is for CUDA; evaluating in float32 on %s", autocast, device)
        autocast = "off"
    return {"autocast": autocast, "compile": cfg.eval.compile}
