"""Checks several per-model test files share, for properties only some adapters have (so not in the contract)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_pads_to_32_and_crops(model: torch.nn.Module) -> None:
    """An adapter that pads its input (replicate) to a multiple of 32 and crops back: a 40x24 input gives the crop of
    what the same input padded by hand to 64x32 gives."""
    model.eval()
    torch.manual_seed(2)
    rgb, depth = torch.rand(1, 3, 40, 24), torch.rand(1, 1, 40, 24)
    with torch.no_grad():
        out = model(rgb, depth)
        padded = model(F.pad(rgb, (0, 8, 0, 24), mode="replicate"), F.pad(depth, (0, 8, 0, 24), mode="replicate"))
    assert padded.shape == (1, 3, 64, 32)
    torch.testing.assert_close(out, padded[..., :40, :24])
