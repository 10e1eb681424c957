"""The ``identity`` reference adapter: returns the input image unchanged.

It has no parameters and is not trained; its scores show how far the target is
from the input (the "do nothing" baseline) and it is the registry's test vehicle.
"""

from __future__ import annotations

import torch
from torch import nn

from models.capabilities import Capabilities
from models.registry import register_model


class IdentityAdapter(nn.Module):
    """``forward(rgb, depth) -> rgb``."""

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """rgb: (B,3,H,W) float in [0,1]; depth: (B,1,H,W) float. Returns rgb itself."""
        return rgb


@register_model("identity", capabilities=Capabilities())
def identity() -> nn.Module:
    """Reference row: output = input image (no parameters, no training)."""
    return IdentityAdapter()
